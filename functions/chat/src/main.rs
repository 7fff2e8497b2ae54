//! The chat Lambda: wiring only; its responses are streamed. The echo provider is refused
//! here: `LLM_BASE_URL` is required. A secret refresh rotates the JWT keys and the provider's
//! API keys (the fallback's too). The agent's tools run in the exec function, by Lambda Invoke.

use std::sync::Arc;

use axum::Router;
use bastion_chat::{ChatSetup, RuntimeMode};
use bastion_chat_fn::{ChatState, rotate, router};
use bastion_core::SystemClock;
use bastion_http::secrets::Runtime;
use bastion_http::{Edge, EdgeConfig};
use bastion_store::Stores;
use bastion_store::dynamodb::DynamoStore;
use bastion_store::kms::KmsContentKeys;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bastion_http::logging::init_lambda();
    // A failure below is reported to the Runtime API as an init error before exiting. Every
    // answer is a streamed response (API Gateway's chat integrations stream): the SSE turn
    // event by event, JSON answers whole.
    bastion_http::startup::start_streaming(init()).await
}

async fn init() -> Result<Router, lambda_http::Error> {
    let clock = Arc::new(SystemClock);
    let runtime = Runtime::init(clock.clone()).await?;
    let env = runtime.env();
    let edge_config = EdgeConfig::from_env(env.as_ref())?;
    let chat = ChatSetup::from_env(env.as_ref(), RuntimeMode::Lambda)?;
    let store = DynamoStore::from_sdk(&runtime.sdk, env.as_ref())?;
    let sealer = KmsContentKeys::sealer(&runtime.sdk, env.required("KMS_KEY_ID")?, clock.clone());
    let stores = Stores::from_adapter(Arc::new(store)).with_content_sealing(sealer);
    let tools =
        bastion_chat_fn::tools::runner(&runtime.sdk, env.as_ref(), &chat.config.agent.tools)?;
    let llm_keys = chat.keys();
    let mut engine = chat.into_engine(stores.clone(), clock.clone());
    if let Some(tools) = tools {
        engine = engine.with_tools(tools);
    }
    let edge = Edge::new(edge_config, stores, clock).with_secrets(runtime.secrets.clone());
    let config = edge.config.clone();
    runtime.on_refresh(move |env| rotate(&config, &llm_keys, env));
    let state = ChatState::new(edge, engine);
    Ok(router(state))
}
