//! `bastion-local`: every Bastion function on one loopback port, on the embedded SQLite store.

mod openapi;
mod secrets;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bastion_auth::AuthState;
use bastion_auth::ses::EmailSetup;
use bastion_chat::{ChatSetup, RuntimeMode};
use bastion_chat_fn::ChatState;
use bastion_core::SystemClock;
use bastion_exec::in_process::InProcessTools;
use bastion_exec::purge::InProcess;
use bastion_exec::workspace::DirWorkspaces;
use bastion_exec::{ExecConfig, ExecState};
use bastion_http::config::ProcessEnv;
use bastion_http::{Edge, EdgeConfig, Env, with_edge};
use bastion_store::Stores;
use bastion_store::sqlite::SqliteStore;
use bastion_webhooks::{WebhooksConfig, WebhooksState};

use crate::secrets::LayeredEnv;

const DEFAULT_ADDR: &str = "127.0.0.1:3000";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(bastion_http::logging::env_filter())
        .init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bastion-local: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let data_dir = std::path::PathBuf::from(
        ProcessEnv
            .non_empty("BASTION_DATA_DIR")
            .unwrap_or_else(|| ".bastion".to_owned()),
    );
    create_private_dir(&data_dir)
        .map_err(|e| format!("BASTION_DATA_DIR {}: {e}", data_dir.display()))?;
    let env = LayeredEnv::load(&data_dir)?;
    let addr: SocketAddr = env
        .non_empty("BASTION_ADDR")
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned())
        .parse()
        .map_err(|_| "configuration BASTION_ADDR: must be host:port, e.g. 127.0.0.1:3000")?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "binding a non-loopback address with development secrets");
    }

    let db_path = data_dir.join("bastion.db");
    let (app, echo) = app(&env, &data_dir, &db_path, addr)?;

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, db = %db_path.display(), "bastion-local listening");
    greet(bound, &db_path, echo);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

/// Every function's routes under one edge on the SQLite store at `db_path`; `true` with it
/// when chat answers with the echo provider.
fn app(
    env: &LayeredEnv,
    data_dir: &Path,
    db_path: &Path,
    addr: SocketAddr,
) -> Result<(axum::Router, bool), Box<dyn std::error::Error>> {
    let store = Arc::new(SqliteStore::open(db_path)?);
    let clock = Arc::new(SystemClock);
    let stores = Stores::from_adapter(store)
        .with_content_sealing(secrets::content_sealer(env, clock.clone())?);
    // Mail lands in the outbox directory unless EMAIL_SENDER says otherwise; links point here.
    let link_base = format!("http://{addr}");
    let outbox = data_dir.join("outbox");
    let email = EmailSetup::from_env(env, None, Some(&outbox), clock.clone(), Some(&link_base))?;
    let edge = Edge::new(EdgeConfig::from_env(env)?, stores, clock);
    // Run directories and stored workspaces sit beside the data directory, never inside it:
    // a command that escaped its path rules would find no development secrets one level up.
    let sandbox_root = beside(data_dir, "sandbox")?;
    let workspace_dir = match env.non_empty("BASTION_WORKSPACE_DIR") {
        Some(dir) => std::path::absolute(dir)?,
        None => beside(data_dir, "workspaces")?,
    };
    let exec_config = ExecConfig::from_env(env, sandbox_root)?;
    let workspaces = Arc::new(DirWorkspaces::new(workspace_dir));
    let exec_state = ExecState::new(edge.clone(), exec_config, workspaces)?;
    // No stream here: account deletion purges the workspace directory itself, awaited.
    let auth_state = AuthState::from_env(edge.clone(), env)?
        .with_account_files(Arc::new(InProcess(exec_state.clone())))
        .with_email(email.sender, email.link_base);
    let chat = ChatSetup::from_env(env, RuntimeMode::Local)?;
    let echo = chat.provider.name() == "echo";
    // The agent's tools run in this process, in the exec state the exec routes serve.
    let engine = chat
        .into_engine(edge.stores.clone(), edge.clock.clone())
        .with_tools(Arc::new(InProcessTools(exec_state.clone())));
    let webhooks_state = WebhooksState::new(
        edge.clone(),
        WebhooksConfig::from_env(env)?,
        Arc::new(engine.clone()),
        bastion_webhooks::outbound::http_client()?,
    );
    let chat_state = ChatState::new(edge.clone(), engine);
    let app = with_edge(
        bastion_auth::routes(auth_state)
            .merge(bastion_exec::routes(exec_state))
            .merge(bastion_chat_fn::routes(chat_state))
            .merge(bastion_webhooks::routes(webhooks_state))
            .merge(openapi::routes()),
        edge,
    );
    Ok((app, echo))
}

fn greet(bound: SocketAddr, db_path: &Path, echo: bool) {
    if echo {
        println!(
            "\nChat uses the ECHO provider (LLM_BASE_URL is unset): replies only quote your message.\nSet LLM_BASE_URL, LLM_MODEL and LLM_API_KEY to talk to a real OpenAI-compatible model."
        );
    }
    println!(
        "\nBastion is running on http://{bound} (store: {})\nTry:\n  curl -s http://{bound}/auth/register -H 'content-type: application/json' \\\n    -d '{{\"email\":\"you@example.com\",\"password\":\"correct horse battery staple\"}}'\n",
        db_path.display()
    );
}

/// The data directory holds password hashes and secrets: owner-only.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// `<data dir>-<suffix>`, absolute: a sibling of the data directory.
fn beside(data_dir: &std::path::Path, suffix: &str) -> std::io::Result<std::path::PathBuf> {
    let data_dir = std::path::absolute(data_dir)?;
    let name = data_dir
        .file_name()
        .map_or_else(|| "bastion".into(), |n| n.to_string_lossy().into_owned());
    Ok(data_dir.with_file_name(format!("{name}-{suffix}")))
}
