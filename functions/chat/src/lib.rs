//! The chat function: the HTTP face of the chat engine (`bastion-chat`).
//!
//! `router(state)` is the whole Lambda (routes plus the shared edge); `routes(state)` is the
//! bare routes so `bastion-local` can merge every function under one edge.

mod dto;
mod error;
mod handlers;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use bastion_chat::ChatEngine;
use bastion_http::{Edge, with_edge};

pub use error::chat_error;

/// Everything the chat handlers need; cheap to clone.
#[derive(Clone)]
pub struct ChatState {
    pub edge: Edge,
    pub engine: ChatEngine,
}

impl FromRef<ChatState> for Edge {
    fn from_ref(state: &ChatState) -> Edge {
        state.edge.clone()
    }
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

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok"}))
}
