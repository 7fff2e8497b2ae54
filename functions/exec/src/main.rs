//! The exec Lambda: wiring only.

use std::path::PathBuf;
use std::sync::Arc;

use bastion_core::SystemClock;
use bastion_exec::{ExecConfig, ExecState, router};
use bastion_http::config::ProcessEnv;
use bastion_http::{Edge, EdgeConfig};
use bastion_store::Stores;
use bastion_store::dynamodb::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bastion_http::logging::init_lambda();
    let env = ProcessEnv;
    let edge_config = EdgeConfig::from_env(&env)?;
    let exec_config = ExecConfig::from_env(&env, PathBuf::from("/tmp/sandbox"))?;
    let stores = Stores::from_adapter(Arc::new(DynamoStore::from_env().await?));
    let edge = Edge::new(edge_config, stores, Arc::new(SystemClock));
    let state = ExecState::new(edge, exec_config)?;
    bastion_http::lambda::serve(router(state)).await
}
