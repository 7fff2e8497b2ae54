//! What both exec benches build the same way: the auth and exec routes under one edge, with
//! throwaway keys and limits raised so the limiter never answers instead of the route.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use bastion_auth::AuthState;
use bastion_core::SystemClock;
use bastion_exec::workspace::WorkspaceStore;
use bastion_exec::{ExecConfig, ExecState};
use bastion_http::{Edge, EdgeConfig, with_edge};
use bastion_store::Stores;

/// The benches' configuration, plus `extra` settings.
pub fn env(extra: &[(&str, &str)]) -> HashMap<String, String> {
    [
        (
            "JWT_SIGNING_KEYS",
            "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ),
        (
            "JWT_VERIFY_KEYS",
            "k1:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",
        ),
        (
            "PASSWORD_PEPPER",
            "1:ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=",
        ),
        (
            "EXEC_SANDBOX_KEY",
            "ZXhlYy1zYW5kYm94LWtleS1mb3ItdGVzdHMtb25seSE=",
        ),
        ("EXEC_RUNS_PER_MINUTE", "10000"),
        ("RATE_LIMIT_DEFAULT_IP", "1000000/60"),
        ("RATE_LIMIT_DEFAULT_ACCOUNT", "1000000/60"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// The auth and exec routes under one edge on `stores`, runs under `runs`, as a fresh instance
/// would have them.
pub fn app(
    env: &HashMap<String, String>,
    stores: Stores,
    workspaces: Arc<dyn WorkspaceStore>,
    runs: &Path,
) -> Router {
    let edge = Edge::new(
        EdgeConfig::from_env(env).unwrap(),
        stores,
        Arc::new(SystemClock),
    );
    let auth_state = AuthState::from_env(edge.clone(), env).unwrap();
    let exec = ExecState::new(
        edge.clone(),
        ExecConfig::from_env(env, runs.to_path_buf()).unwrap(),
        workspaces,
    )
    .unwrap();
    with_edge(
        bastion_auth::routes(auth_state).merge(bastion_exec::routes(exec)),
        edge,
    )
}
