//! The webhooks Lambda: wiring only.

use std::sync::Arc;

use bastion_core::SystemClock;
use bastion_http::config::ProcessEnv;
use bastion_http::{Edge, EdgeConfig};
use bastion_store::Stores;
use bastion_store::dynamodb::DynamoStore;
use bastion_webhooks::outbound::http_client;
use bastion_webhooks::{ChatEngineNotWired, WebhooksConfig, WebhooksState, router};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .without_time()
        .init();
    let env = ProcessEnv;
    let edge_config = EdgeConfig::from_env(&env)?;
    let config = WebhooksConfig::from_env(&env)?;
    let stores = Stores::from_adapter(Arc::new(DynamoStore::from_env().await?));
    let edge = Edge::new(edge_config, stores, Arc::new(SystemClock));
    // Placeholder until the chat engine is merged: replies fail (503) so platforms retry.
    let state = WebhooksState::new(edge, config, Arc::new(ChatEngineNotWired), http_client()?);
    lambda_http::run(router(state)).await
}
