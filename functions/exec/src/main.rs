//! The exec Lambda: wiring only. Its secret document is its own and holds only
//! `SECRET_DOCUMENT_NAMES` (anything else stops start-up). A secret refresh rotates the JWT
//! verify keys; `EXEC_SANDBOX_KEY` is read once, because it names each user's workspace
//! (rotating it orphans them). Besides API Gateway's requests it handles the table's stream
//! (a deleted account's workspace is purged) and the chat function's direct invokes of a tool.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use bastion_core::SystemClock;
use bastion_exec::config::SECRET_DOCUMENT_NAMES;
use bastion_exec::purge::stream::AccountDeletions;
use bastion_exec::tools::{FirstClaim, ToolInvocations};
use bastion_exec::workspace::S3Workspaces;
use bastion_exec::{ExecConfig, ExecState, router};
use bastion_http::secrets::Runtime;
use bastion_http::side_events::Side;
use bastion_http::{Edge, EdgeConfig};
use bastion_store::Stores;
use bastion_store::dynamodb::{DynamoStore, TABLE_ENV};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bastion_http::logging::init_lambda();
    // A failure below is reported to the Runtime API as an init error before exiting.
    bastion_http::startup::start_with_side_events(init()).await
}

async fn init() -> Result<(Router, Side), lambda_http::Error> {
    let clock = Arc::new(SystemClock);
    let runtime = Runtime::init_scoped(clock.clone(), &SECRET_DOCUMENT_NAMES).await?;
    let env = runtime.env();
    let edge_config = EdgeConfig::from_env(env.as_ref())?;
    let exec_config = ExecConfig::from_env(env.as_ref(), PathBuf::from("/tmp/sandbox"))?;
    let store = DynamoStore::from_sdk(&runtime.sdk, env.as_ref())?;
    let stores = Stores::from_adapter(Arc::new(store));
    let edge = Edge::new(edge_config, stores, clock).with_secrets(runtime.secrets.clone());
    let config = edge.config.clone();
    runtime.on_refresh(move |env| config.rotate(env));
    let workspaces = Arc::new(S3Workspaces::from_sdk(&runtime.sdk, env.as_ref())?);
    let state = ExecState::new(edge, exec_config, workspaces)?;
    let deletions = AccountDeletions::new(state.clone(), env.required(TABLE_ENV)?);
    let side = FirstClaim(vec![
        Box::new(ToolInvocations::new(state.clone())),
        Box::new(deletions),
    ]);
    Ok((router(state), Some(Arc::new(side))))
}
