//! The webhooks Lambda: wiring only. Channel replies come from the chat engine, so this
//! function needs the chat configuration too (`LLM_BASE_URL` is required, as in chat).
//! A secret refresh rotates the JWT keys, every platform secret and the provider's API keys
//! (the fallback's too).

use std::sync::Arc;

use axum::Router;
use bastion_chat::config::ProviderKeys;
use bastion_chat::{ChatSetup, RuntimeMode};
use bastion_core::SystemClock;
use bastion_http::secrets::Runtime;
use bastion_http::{Edge, EdgeConfig};
use bastion_store::Stores;
use bastion_store::dynamodb::DynamoStore;
use bastion_store::kms::KmsContentKeys;
use bastion_webhooks::outbound::http_client;
use bastion_webhooks::{WebhooksConfig, WebhooksState, router};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bastion_http::logging::init_lambda();
    // A failure below is reported to the Runtime API as an init error before exiting.
    bastion_http::startup::start(init()).await
}

async fn init() -> Result<Router, lambda_http::Error> {
    let clock = Arc::new(SystemClock);
    let runtime = Runtime::init(clock.clone()).await?;
    let env = runtime.env();
    let edge_config = EdgeConfig::from_env(env.as_ref())?;
    let config = WebhooksConfig::from_env(env.as_ref())?;
    let chat = ChatSetup::from_env(env.as_ref(), RuntimeMode::Lambda)?;
    let store = DynamoStore::from_sdk(&runtime.sdk, env.as_ref())?;
    let sealer = KmsContentKeys::sealer(&runtime.sdk, env.required("KMS_KEY_ID")?, clock.clone());
    let stores = Stores::from_adapter(Arc::new(store)).with_content_sealing(sealer);
    let llm_keys = chat.keys();
    let engine = chat.into_engine(stores.clone(), clock.clone());
    let edge = Edge::new(edge_config, stores, clock).with_secrets(runtime.secrets.clone());
    let state = WebhooksState::new(edge, config, Arc::new(engine), http_client()?);
    let rotated = state.clone();
    // Everything is parsed before anything is stored: the keys first, then the state's part.
    runtime.on_refresh(move |env| {
        let keys = ProviderKeys::read(env)?;
        rotated.rotate(env)?;
        llm_keys.store(keys);
        Ok(())
    });
    Ok(router(state))
}
