//! The chat Lambda: wiring only. The echo provider is refused here: `LLM_BASE_URL` is required.

use std::sync::Arc;

use bastion_chat::{ChatSetup, RuntimeMode};
use bastion_chat_fn::{ChatState, router};
use bastion_core::SystemClock;
use bastion_http::Env;
use bastion_http::config::ProcessEnv;
use bastion_http::{Edge, EdgeConfig};
use bastion_store::Stores;
use bastion_store::dynamodb::DynamoStore;
use bastion_store::kms::KmsContentKeys;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bastion_http::logging::init_lambda();
    let env = ProcessEnv;
    let edge_config = EdgeConfig::from_env(&env)?;
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
    let state = ChatState {
        edge: Edge::new(edge_config, stores, clock),
        engine,
    };
    lambda_http::run(router(state)).await
}
