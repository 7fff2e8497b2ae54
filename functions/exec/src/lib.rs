//! The exec function: run allowlisted commands under every isolation layer the kernel offers,
//! in a fresh directory holding the caller's durable workspace, and manage that workspace's
//! files (S3 in Lambda, a directory locally); one run or file change per user at a time,
//! across instances, under a lease in the table. A deleted account's workspace is purged
//! (`purge`): from the table's stream in Lambda, through the auth router's port locally.
//!
//! The agent's tools run here too (`tools`): the chat function's direct invoke, or
//! `ExecState::run_tool` in-process, runs each through the same code as its route.
//!
//! `router(state)` is the whole Lambda (routes plus the shared edge); `routes(state)` is the
//! bare routes so `bastion-local` can merge every function under one edge.

mod audit;
pub mod config;
mod files;
#[cfg(feature = "in-process-tools")]
pub mod in_process;
mod lease;
mod materialise;
pub mod openapi;
pub mod purge;
mod run;
mod sandboxes;
pub mod tools;
mod wire;
pub mod workspace;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::routing::{get, post};
use bastion_core::Scope;
use bastion_http::{ApiError, Authenticated, Edge, ErrorKind, with_edge};
use bastion_sandbox::{
    ChildLimits, CommandPolicy, Layers, NEEDS_LANDLOCK, REQUIRED_LAYERS, Runner,
};

pub use config::ExecConfig;
use sandboxes::Sandboxes;
use workspace::WorkspaceStore;

/// Everything the exec handlers need; cheap to clone.
#[derive(Clone)]
pub struct ExecState {
    pub edge: Edge,
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    config: ExecConfig,
    runner: Runner,
    sandboxes: Sandboxes,
    workspaces: Arc<dyn WorkspaceStore>,
}

impl FromRef<ExecState> for Edge {
    fn from_ref(state: &ExecState) -> Edge {
        state.edge.clone()
    }
}

/// A required isolation layer the kernel does not give us.
#[derive(Debug, thiserror::Error)]
#[error("exec isolation layer {0} is required but not available on this host")]
pub struct MissingLayer(pub String);

impl ExecState {
    /// Probes the isolation layers (once per process), logs any that are missing, and refuses
    /// to start without seccomp, no_new_privs and rlimits (always) or any layer
    /// `EXEC_REQUIRE_LAYERS` adds. Landlock is applied wherever the kernel has it.
    /// `workspaces` holds users' files durably (S3 in Lambda, a directory locally).
    pub fn new(
        edge: Edge,
        config: ExecConfig,
        workspaces: Arc<dyn WorkspaceStore>,
    ) -> Result<Self, MissingLayer> {
        let layers = probe_once(&config.sandbox_root);
        for missing in layers.missing() {
            tracing::warn!(
                layer = missing,
                "exec isolation layer not available on this host"
            );
        }
        require(&layers, &config.require_layers)?;
        for (command, reason) in unavailable(&config.commands.names(), &layers) {
            tracing::warn!(
                command,
                reason,
                "allowed exec command cannot run on this host"
            );
        }
        tracing::info!(layers = ?layers.named(), commands = ?config.commands.names(), "exec sandbox ready");
        let sandboxes = Sandboxes::new(
            config.sandbox_root.clone(),
            secrecy::SecretBox::new(Box::new(
                secrecy::ExposeSecret::expose_secret(&config.sandbox_key).clone(),
            )),
            layers.openat2,
        );
        Ok(Self {
            edge,
            inner: Arc::new(Inner {
                runner: Runner::new(layers, ChildLimits::default())
                    .with_program_dir(config.commands.programs_dir()),
                config,
                sandboxes,
                workspaces,
            }),
        })
    }

    fn commands(&self) -> &CommandPolicy {
        &self.inner.config.commands
    }
}

/// Refuses to start when a layer exec always needs, or one `EXEC_REQUIRE_LAYERS` names, is
/// missing.
fn require(layers: &Layers, required: &[String]) -> Result<(), MissingLayer> {
    if let Some(l) = layers.missing_required().first() {
        return Err(MissingLayer((*l).to_owned()));
    }
    match required
        .iter()
        .find(|l| layers.missing().contains(&l.as_str()))
    {
        Some(l) => Err(MissingLayer(l.clone())),
        None => Ok(()),
    }
}

/// The allowed commands that cannot run under `layers`, with the reason.
fn unavailable(commands: &[&'static str], layers: &Layers) -> Vec<(&'static str, &'static str)> {
    if layers.landlock_abi.is_some() {
        return Vec::new();
    }
    NEEDS_LANDLOCK
        .iter()
        .filter(|(c, _)| commands.contains(c))
        .copied()
        .collect()
}

/// Every layer start-up insists on: the fixed ones and the configured ones.
fn required_layers(configured: &[String]) -> Vec<String> {
    let mut all: Vec<String> = REQUIRED_LAYERS.iter().map(|l| (*l).to_owned()).collect();
    all.extend(
        configured
            .iter()
            .filter(|l| !all.contains(l))
            .cloned()
            .collect::<Vec<_>>(),
    );
    all
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

#[utoipa::path(get, path = "/exec/health", tag = "exec", operation_id = "exec_health",
    security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "`status`, the sandbox layers in force (`layers`, `landlock_abi`, `running_as_root`, `missing`, `required`) the allowed `commands`, and `unavailable`: allowed commands this host cannot run, each with its `reason` (python3 without Landlock).", body = Object),
        (status = 403, description = "`insufficient_scope`: the API key lacks the `read` scope.")))]
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
        "required": required_layers(&state.inner.config.require_layers),
        "commands": state.commands().names(),
        "unavailable": unavailable(&state.commands().names(), layers)
            .into_iter()
            .map(|(command, reason)| serde_json::json!({"command": command, "reason": reason}))
            .collect::<Vec<_>>(),
    })))
}

/// The one place the exec blocking work meets the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ApiError::new(ErrorKind::Internal, "internal error")
            .with_log(format!("exec blocking task failed: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_layers() -> Layers {
        Layers {
            landlock_abi: Some(6),
            seccomp: true,
            no_new_privs: true,
            rlimits: true,
            openat2: true,
            parent_undumpable: true,
            child_subreaper: true,
            running_as_root: false,
        }
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_required_layer_the_host_lacks_stops_start_up_and_others_do_not() {
        let layers = Layers {
            landlock_abi: None,
            ..all_layers()
        };
        assert_eq!(
            require(&layers, &names(&["seccomp", "landlock"]))
                .unwrap_err()
                .to_string(),
            "exec isolation layer landlock is required but not available on this host"
        );
        assert!(require(&layers, &names(&["seccomp", "openat2"])).is_ok());
        assert!(
            require(&layers, &[]).is_ok(),
            "Landlock is used where present"
        );
        assert_eq!(layers.missing(), vec!["landlock"]);
    }

    #[test]
    fn python3_is_reported_unavailable_only_where_landlock_is_missing_and_it_is_allowed() {
        let without = Layers {
            landlock_abi: None,
            ..all_layers()
        };
        assert_eq!(
            unavailable(&["cat", "python3"], &without),
            vec![(
                "python3",
                "needs Landlock, which this host does not offer: without it the launcher refuses \
                 to run"
            )]
        );
        assert_eq!(unavailable(&["cat"], &without), vec![]);
        assert_eq!(unavailable(&["cat", "python3"], &all_layers()), vec![]);
    }

    #[test]
    fn start_up_refuses_without_seccomp_no_new_privs_or_rlimits_whatever_the_configuration() {
        let cases = [
            (
                Layers {
                    seccomp: false,
                    ..all_layers()
                },
                "seccomp",
            ),
            (
                Layers {
                    no_new_privs: false,
                    ..all_layers()
                },
                "no_new_privs",
            ),
            (
                Layers {
                    rlimits: false,
                    ..all_layers()
                },
                "rlimits",
            ),
        ];
        for (layers, missing) in cases {
            assert_eq!(
                require(&layers, &[]).unwrap_err().to_string(),
                format!(
                    "exec isolation layer {missing} is required but not available on this host"
                )
            );
        }
        assert!(require(&all_layers(), &[]).is_ok());
        assert_eq!(
            required_layers(&names(&["landlock", "seccomp"])),
            names(&["seccomp", "no_new_privs", "rlimits", "landlock"])
        );
    }
}
