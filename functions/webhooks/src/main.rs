//! The webhooks Lambda: wiring only. Channel replies come from the chat engine, so this
//! function needs the chat configuration too (`LLM_BASE_URL` is required, as in chat).

use std::sync::Arc;

use bastion_chat::{ChatSetup, RuntimeMode};
use bastion_core::SystemClock;
use bastion_http::secrets::Runtime;
use bastion_http::{Edge, EdgeConfig};
use bastion_store::Stores;
use bastion_store::dynamodb::DynamoStore;
use bastion_webhooks::outbound::http_client;
use bastion_webhooks::{WebhooksConfig, WebhooksState, router};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bastion_http::logging::init_lambda();
    let clock = Arc::new(SystemClock);
    let runtime = Runtime::init(clock.clone()).await?;
    let env = runtime.env();
    let edge_config = EdgeConfig::from_env(env.as_ref())?;
    let config = WebhooksConfig::from_env(env.as_ref())?;
    let chat = ChatSetup::from_env(env.as_ref(), RuntimeMode::Lambda)?;
    let store = DynamoStore::from_sdk(&runtime.sdk, env.as_ref())?;
    let stores = Stores::from_adapter(Arc::new(store));
    let engine = chat.into_engine(stores.clone(), clock.clone());
    let edge = Edge::new(edge_config, stores, clock).with_secrets(runtime.secrets.clone());
    let state = WebhooksState::new(edge, config, Arc::new(engine), http_client()?);
    let rotated = state.clone();
    runtime.on_refresh(move |env| rotated.rotate(env));
    lambda_http::run(router(state)).await
}
