//! The auth function: register, login, refresh, logout, sessions, account management, Google
//! sign-in, API keys and the admin routes.
//!
//! `router(state)` is the whole Lambda (routes plus the shared edge); `routes(state)` is the
//! bare routes so `bastion-local` can merge every function under one edge. The optional parts
//! ([`AuthExtras`]: Google sign-in, admin keys) are fields of the one [`AuthState`].

mod account;
mod admin;
pub mod admin_keys;
mod api_keys;
mod audit;
pub mod config;
mod dto;
mod email_verify;
mod google;
mod hashing;
mod login;
pub mod mail;
mod mfa;
mod mfa_verify;
pub mod openapi;
mod reauth;
mod recovery;
mod refresh;
pub mod ses;
mod sessions;
#[cfg(test)]
mod test_support;
mod tokens;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{delete, get, post, put};
use bastion_core::crypto::{JwtKeys, PasswordHasher};
use bastion_http::account_files::{AccountFiles, ByStream};
use bastion_http::config::Live;
use bastion_http::email::{EmailSender, LinkBase};
use bastion_http::{ConfigError, Edge, Env, with_edge};

pub use admin_keys::AdminKeys;
pub use config::{AuthConfig, AuthExtras, SessionPolicy};
pub use google::config::GoogleConfig;
pub use mail::Mailer;

/// Everything the auth handlers need; cheap to clone.
#[derive(Clone)]
pub struct AuthState {
    pub edge: Edge,
    /// Swapped when a refresh brings new pepper versions.
    pub hasher: Live<PasswordHasher>,
    pub sessions: SessionPolicy,
    /// Auth's token signing keys, swapped by a secret refresh. The edge's keys only verify.
    pub signer: Live<JwtKeys>,
    /// Google sign-in and the admin keys, swapped whole by a secret refresh.
    pub extras: Live<AuthExtras>,
    /// Removes a deleted account's exec workspace (a no-op in Lambda, where the stream does).
    pub account_files: Arc<dyn AccountFiles>,
    /// Where verification and reset mails go; `None` until [`AuthState::with_email`], and the
    /// routes that must mail answer 503 `email_unavailable` meanwhile.
    pub mail: Option<Mailer>,
}

impl AuthState {
    /// The one way to build the auth state (main.rs, bastion-local, tests, benches).
    pub fn new(edge: Edge, config: AuthConfig, extras: AuthExtras) -> Self {
        Self {
            edge,
            hasher: Live::new(config.hasher),
            sessions: config.sessions,
            signer: Live::new(config.signer),
            extras: Live::new(extras),
            account_files: Arc::new(ByStream),
            mail: None,
        }
    }

    /// The same state mailing through `sender`, with links starting at `links`.
    pub fn with_email(mut self, sender: Arc<dyn EmailSender>, links: LinkBase) -> Self {
        self.mail = Some(Mailer { sender, links });
        self
    }

    /// The same state with `port` removing deleted accounts' files (bastion-local, tests).
    pub fn with_account_files(mut self, port: Arc<dyn AccountFiles>) -> Self {
        self.account_files = port;
        self
    }

    /// Everything the auth function reads from `env`, on `edge`.
    pub fn from_env(edge: Edge, env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self::new(
            edge,
            AuthConfig::from_env(env)?,
            AuthExtras::from_env(env)?,
        ))
    }
}

impl FromRef<AuthState> for Edge {
    fn from_ref(state: &AuthState) -> Edge {
        state.edge.clone()
    }
}

/// The auth routes without the edge pipeline (`bastion-local` merges every function's routes
/// under one edge).
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
        .route("/auth/password/set", post(google::account::set_password))
        .route("/auth/password/forgot", post(recovery::forgot))
        .route("/auth/password/reset", post(recovery::reset))
        .route("/auth/email/verify", post(email_verify::verify))
        .route("/auth/email/verify/send", post(email_verify::send))
        .route("/auth/mfa/totp", post(mfa::enroll).delete(mfa::disable))
        .route("/auth/mfa/totp/confirm", post(mfa::confirm))
        .route("/auth/mfa/verify", post(mfa_verify::verify))
        .route("/auth/account", delete(account::delete_account))
        .route("/auth/api-keys", post(api_keys::create).get(api_keys::list))
        .route("/auth/api-keys/{id}", delete(api_keys::revoke))
        .route("/auth/google/start", get(google::flow::start))
        .route("/auth/google/callback", get(google::flow::callback))
        .route("/auth/google/exchange", post(google::flow::exchange))
        .route("/auth/google/reauth", post(google::flow::reauth))
        .route(
            "/auth/google/link",
            post(google::flow::link).delete(google::account::unlink),
        )
        .route("/admin/audit", get(admin::audit))
        .route("/admin/users/{id}", get(admin::user))
        .route("/admin/users/{id}/disable", post(admin::disable))
        .route("/admin/users/{id}/enable", post(admin::enable))
        .route(
            "/admin/users/{id}/revoke-sessions",
            post(admin::revoke_sessions),
        )
        .route("/admin/users/{id}/roles", put(admin::set_roles))
        .route("/admin/users/{id}/mfa", delete(admin::reset_mfa))
        .with_state(state)
}

/// The auth Lambda's complete router: the routes inside the shared edge.
pub fn router(state: AuthState) -> Router {
    let edge = state.edge.clone();
    with_edge(routes(state), edge)
}

#[utoipa::path(get, path = "/auth/health", tag = "auth", operation_id = "auth_health",
    responses((status = 200, description = "The function is up.", body = bastion_http::openapi::Health)))]
async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok"}))
}
