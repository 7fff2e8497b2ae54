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

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use bastion_chat::ChatEngine;
use bastion_chat::provider::openai::ApiKey;
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

/// What a secret refresh re-reads for the chat function: the JWT keys and `LLM_API_KEY`, both
/// parsed before either is swapped.
pub fn rotate(edge: &EdgeConfig, llm_key: &ApiKey, env: &dyn Env) -> Result<(), ConfigError> {
    let jwt = parse_jwt(env)?;
    let key = bastion_chat::config::api_key(env)?;
    edge.jwt.store(jwt);
    llm_key.store(key);
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
