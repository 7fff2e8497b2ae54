//! The chat function: the HTTP face of the chat engine (`bastion-chat`).
//!
//! `router(state)` is the whole Lambda (routes plus the shared edge); `routes(state)` is the
//! bare routes so `bastion-local` can merge every function under one edge.

mod audit;
mod dto;
mod error;
mod handlers;
pub mod openapi;
mod stream;
pub mod tools;
mod turn;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use bastion_chat::ChatEngine;
use bastion_chat::config::ProviderKeys;
use bastion_http::config::parse_jwt;
use bastion_http::{ConfigError, Edge, EdgeConfig, Env, with_edge};

pub use error::chat_error;

pub use stream::StreamedTurns;

/// Everything the chat handlers need; cheap to clone.
#[derive(Clone)]
pub struct ChatState {
    pub edge: Edge,
    pub engine: ChatEngine,
    /// The streamed turns whose task is still running.
    pub streamed: StreamedTurns,
}

impl ChatState {
    /// The chat function's state: the shared edge and the engine `ChatSetup::into_engine` built.
    pub fn new(edge: Edge, engine: ChatEngine) -> Self {
        Self {
            edge,
            engine,
            streamed: StreamedTurns::default(),
        }
    }
}

impl FromRef<ChatState> for Edge {
    fn from_ref(state: &ChatState) -> Edge {
        state.edge.clone()
    }
}

/// What a secret refresh re-reads for the chat function: the JWT keys, `LLM_API_KEY` and
/// `LLM_FALLBACK_API_KEY`, all parsed before any is swapped.
pub fn rotate(
    edge: &EdgeConfig,
    llm_keys: &ProviderKeys,
    env: &dyn Env,
) -> Result<(), ConfigError> {
    let jwt = parse_jwt(env)?;
    let keys = ProviderKeys::read(env)?;
    edge.jwt.store(jwt);
    llm_keys.store(keys);
    Ok(())
}

/// The chat routes without the edge pipeline.
pub fn routes(state: ChatState) -> Router {
    Router::new()
        .route("/chat", post(handlers::send))
        .route("/chat/health", get(health))
        .route("/chat/conversations", get(handlers::list))
        .route(
            "/chat/conversations/{id}",
            get(handlers::show).delete(handlers::delete),
        )
        .with_state(state)
}

/// The chat Lambda's complete router.
pub fn router(state: ChatState) -> Router {
    let edge = state.edge.clone();
    with_edge(routes(state), edge)
}

#[utoipa::path(get, path = "/chat/health", tag = "chat", operation_id = "chat_health",
    responses((status = 200, description = "The function is up.", body = bastion_http::openapi::Health)))]
async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok"}))
}

#[cfg(test)]
mod tests {
    use bastion_chat::{ChatSetup, RuntimeMode};
    use bastion_core::config::map_env;

    use super::*;

    const VERIFY: (&str, &str) = (
        "JWT_VERIFY_KEYS",
        "k1:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",
    );
    const WITH_FALLBACK: [(&str, &str); 4] = [
        ("LLM_BASE_URL", "https://primary.example.com/v1"),
        ("LLM_MODEL", "m"),
        ("LLM_FALLBACK_BASE_URL", "https://fallback.example.com/v1"),
        ("LLM_FALLBACK_MODEL", "f"),
    ];

    fn env(extra: &[(&'static str, &'static str)]) -> impl Env {
        let mut pairs = vec![VERIFY];
        pairs.extend_from_slice(&WITH_FALLBACK);
        pairs.extend_from_slice(extra);
        map_env(&pairs)
    }

    #[test]
    fn a_secret_refresh_stores_the_re_read_fallback_key_and_a_blank_one_changes_nothing() {
        let edge = EdgeConfig::from_env(&env(&[])).unwrap();
        let setup = ChatSetup::from_env(&env(&[]), RuntimeMode::Lambda).unwrap();
        let keys = setup.keys();
        let fallback = keys.fallback.clone().unwrap();
        assert!(fallback.load().is_none());
        rotate(&edge, &keys, &env(&[("LLM_FALLBACK_API_KEY", "sk-new")])).unwrap();
        assert!(fallback.load().is_some());
        assert!(keys.primary.load().is_none());
        let err = rotate(
            &edge,
            &keys,
            &env(&[("LLM_API_KEY", "sk-primary"), ("LLM_FALLBACK_API_KEY", " ")]),
        )
        .unwrap_err();
        assert_eq!(err.var, "LLM_FALLBACK_API_KEY");
        assert!(keys.primary.load().is_none());
        assert!(fallback.load().is_some());
    }
}
