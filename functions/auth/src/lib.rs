//! The auth function: register, login, refresh, logout, sessions and account management.
//!
//! `router(state)` is the whole Lambda (routes plus the shared edge); `routes(state)` is the
//! bare routes so `bastion-local` can merge every function under one edge.

mod account;
mod audit;
pub mod config;
mod dto;
mod login;
mod refresh;
mod sessions;
mod tokens;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{delete, get, post};
use bastion_core::crypto::PasswordHasher;
use bastion_http::{Edge, with_edge};

pub use config::{AuthConfig, SessionPolicy};

/// Everything the auth handlers need; cheap to clone.
#[derive(Clone)]
pub struct AuthState {
    pub edge: Edge,
    pub hasher: Arc<PasswordHasher>,
    pub sessions: SessionPolicy,
}

impl FromRef<AuthState> for Edge {
    fn from_ref(state: &AuthState) -> Edge {
        state.edge.clone()
    }
}

/// The auth routes without the edge pipeline.
pub fn routes(state: AuthState) -> Router {
    Router::new()
        .route("/auth/health", get(health))
        .route("/auth/register", post(login::register))
        .route("/auth/login", post(login::login))
        .route("/auth/refresh", post(refresh::refresh))
        .route("/auth/logout", post(sessions::logout))
        .route("/auth/logout-all", post(sessions::logout_all))
        .route("/auth/me", get(account::me))
        .route("/auth/sessions", get(sessions::list))
        .route("/auth/sessions/{id}", delete(sessions::revoke))
        .route("/auth/password", post(account::change_password))
        .route("/auth/account", delete(account::delete_account))
        .with_state(state)
}

/// The auth Lambda's complete router.
pub fn router(state: AuthState) -> Router {
    let edge = state.edge.clone();
    with_edge(routes(state), edge)
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok"}))
}
