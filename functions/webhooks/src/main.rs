//! The webhooks Lambda: wiring only. Channel replies come from the chat engine, so this
//! function needs the chat configuration too (`LLM_BASE_URL` is required, as in chat).

use std::sync::Arc;

use bastion_chat::{ChatSetup, RuntimeMode};
use bastion_core::SystemClock;
use bastion_http::Env;
use bastion_http::config::ProcessEnv;
use bastion_http::{Edge, EdgeConfig};
use bastion_store::Stores;
use bastion_store::dynamodb::DynamoStore;
use bastion_store::kms::KmsContentKeys;
use bastion_webhooks::outbound::http_client;
use bastion_webhooks::{WebhooksConfig, WebhooksState, router};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bastion_http::logging::init_lambda();
    let env = ProcessEnv;
    let edge_config = EdgeConfig::from_env(&env)?;
    let config = WebhooksConfig::from_env(&env)?;
    let chat = ChatSetup::from_env(&env, RuntimeMode::Lambda)?;
    let clock = Arc::new(SystemClock);
    // Integrator: use the process's one shared SdkConfig here once it exists.
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let sealer = KmsContentKeys::sealer(&sdk, env.required("KMS_KEY_ID")?, clock.clone());
    let stores =
        Stores::from_adapter(Arc::new(DynamoStore::from_env().await?)).with_content_sealing(sealer);
    let engine = chat.into_engine(stores.clone(), clock.clone());
    let edge = Edge::new(edge_config, stores, clock);
    let state = WebhooksState::new(edge, config, Arc::new(engine), http_client()?);
    lambda_http::run(router(state)).await
}
