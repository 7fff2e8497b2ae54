//! The exec function: run allowlisted commands in a per-user sandbox under every isolation
//! layer the kernel offers, and manage the sandbox's files.
//!
//! `router(state)` is the whole Lambda (routes plus the shared edge); `routes(state)` is the
//! bare routes so `bastion-local` can merge every function under one edge.

mod audit;
pub mod config;
mod files;
mod run;
mod sandboxes;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::routing::{get, post};
use bastion_core::Scope;
use bastion_http::{ApiError, Authenticated, Edge, ErrorKind, with_edge};
use bastion_sandbox::{ChildLimits, CommandPolicy, Layers, Runner};

pub use config::ExecConfig;
use sandboxes::Sandboxes;

/// Everything the exec handlers need; cheap to clone.
#[derive(Clone)]
pub struct ExecState {
    pub edge: Edge,
    inner: Arc<Inner>,
}

struct Inner {
    config: ExecConfig,
    runner: Runner,
    sandboxes: Arc<Sandboxes>,
}

impl FromRef<ExecState> for Edge {
    fn from_ref(state: &ExecState) -> Edge {
        state.edge.clone()
    }
}

/// A required isolation layer the kernel does not give us.
#[derive(Debug, thiserror::Error)]
#[error("EXEC_REQUIRE_LAYERS: layer {0} is required but not available on this host")]
pub struct MissingLayer(pub String);

impl ExecState {
    /// Probes the isolation layers (once per process), logs any that are missing, and refuses
    /// to start without the ones `EXEC_REQUIRE_LAYERS` names.
    pub fn new(edge: Edge, config: ExecConfig) -> Result<Self, MissingLayer> {
        let layers = probe_once(&config.sandbox_root);
        for missing in layers.missing() {
            tracing::warn!(
                layer = missing,
                "exec isolation layer not available on this host"
            );
        }
        require(&layers, &config.require_layers)?;
        tracing::info!(layers = ?layers.named(), commands = ?config.commands.names(), "exec sandbox ready");
        let sandboxes = Arc::new(Sandboxes::new(
            config.sandbox_root.clone(),
            secrecy::SecretBox::new(Box::new(
                secrecy::ExposeSecret::expose_secret(&config.sandbox_key).clone(),
            )),
            layers.openat2,
            config.idle,
            edge.clock.now(),
        ));
        Ok(Self {
            edge,
            inner: Arc::new(Inner {
                runner: Runner::new(layers, ChildLimits::default()),
                config,
                sandboxes,
            }),
        })
    }

    fn commands(&self) -> &CommandPolicy {
        &self.inner.config.commands
    }
}

/// Refuses to start when a layer named in `EXEC_REQUIRE_LAYERS` is missing.
fn require(layers: &Layers, required: &[String]) -> Result<(), MissingLayer> {
    match required
        .iter()
        .find(|l| layers.missing().contains(&l.as_str()))
    {
        Some(l) => Err(MissingLayer(l.clone())),
        None => Ok(()),
    }
}

/// The kernel is probed and the process made non-dumpable and a subreaper once.
fn probe_once(root: &std::path::Path) -> Layers {
    static LAYERS: std::sync::OnceLock<Layers> = std::sync::OnceLock::new();
    LAYERS
        .get_or_init(|| {
            use std::os::unix::fs::DirBuilderExt;
            let _ = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(root);
            Layers::probe(root)
        })
        .clone()
}

/// The exec routes without the edge pipeline.
pub fn routes(state: ExecState) -> Router {
    Router::new()
        .route("/exec/health", get(health))
        .route("/exec/run", post(run::run))
        .route("/exec/files", get(files::list))
        .route(
            "/exec/files/{*path}",
            get(files::get_file)
                .put(files::put_file)
                .delete(files::delete_file)
                .layer(DefaultBodyLimit::max(files::MAX_FILE_BYTES)),
        )
        .with_state(state)
}

/// The exec Lambda's complete router.
pub fn router(state: ExecState) -> Router {
    let edge = state.edge.clone();
    with_edge(routes(state), edge)
}

async fn health(
    State(state): State<ExecState>,
    auth: Authenticated,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    auth.require_scope(Scope::Read)?;
    let layers = state.inner.runner.layers();
    let mut map = serde_json::Map::new();
    for (name, on) in layers.named() {
        map.insert(name.to_owned(), serde_json::Value::Bool(on));
    }
    Ok(axum::Json(serde_json::json!({
        "status": "ok",
        "layers": map,
        "landlock_abi": layers.landlock_abi,
        "running_as_root": layers.running_as_root,
        "missing": layers.missing(),
        "commands": state.commands().names(),
    })))
}

/// The one place the exec blocking work meets the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        let mut err = ApiError::new(ErrorKind::Internal, "internal error");
        err.log = Some(format!("exec blocking task failed: {e}"));
        err
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_required_layer_the_host_lacks_stops_start_up_and_others_do_not() {
        let layers = Layers {
            landlock_abi: None,
            seccomp: true,
            openat2: true,
            parent_undumpable: true,
            child_subreaper: true,
            running_as_root: false,
        };
        let req = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            require(&layers, &req(&["seccomp", "landlock"]))
                .unwrap_err()
                .to_string(),
            "EXEC_REQUIRE_LAYERS: layer landlock is required but not available on this host"
        );
        assert!(require(&layers, &req(&["seccomp", "openat2"])).is_ok());
        assert_eq!(layers.missing(), vec!["landlock"]);
    }
}
