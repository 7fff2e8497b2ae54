//! The auth Lambda: wiring only.

use std::sync::Arc;

use bastion_auth::{AuthConfig, AuthExtras, AuthState, router_with};
use bastion_core::SystemClock;
use bastion_http::config::ProcessEnv;
use bastion_http::{Edge, EdgeConfig};
use bastion_store::Stores;
use bastion_store::dynamodb::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bastion_http::logging::init_lambda();
    let env = ProcessEnv;
    let edge_config = EdgeConfig::from_env(&env)?;
    let auth_config = AuthConfig::from_env(&env)?;
    // ADMIN_KEYS and GOOGLE_CLIENT_SECRET come from Secrets Manager through the environment.
    let extras = AuthExtras::from_env(&env)?;
    let stores = Stores::from_adapter(Arc::new(DynamoStore::from_env().await?));
    let state = AuthState {
        edge: Edge::new(edge_config, stores, Arc::new(SystemClock)),
        hasher: Arc::new(auth_config.hasher),
        sessions: auth_config.sessions,
    };
    bastion_http::lambda::serve(router_with(state, extras)).await
}
