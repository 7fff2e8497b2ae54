//! The webhooks function: Telegram, Messenger and Stripe deliveries, each verified over its
//! raw bytes, processed at most once, and acted on.
//!
//! `router(state)` is the whole Lambda (routes plus the shared edge); `routes(state)` is the
//! bare routes so `bastion-local` can merge every function under one edge.

pub mod config;
mod delivery;
mod facebook;
pub mod openapi;
pub mod outbound;
pub mod reply;
mod stripe;
mod telegram;
pub mod verify;
mod wire;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRef, Request};
use axum::routing::{get, post};
use bastion_http::body::{MAX_BODY_BYTES, read_limited};
use bastion_http::config::{Live, parse_jwt};
use bastion_http::{ApiError, ConfigError, Edge, Env, with_edge};

pub use config::WebhooksConfig;
pub use delivery::DELIVERY_LEASE_SECS;
pub use reply::{Replier, ReplyError};

use outbound::{MessengerApi, TelegramApi};

/// Everything the webhook handlers need; cheap to clone.
#[derive(Clone)]
pub struct WebhooksState {
    pub edge: Edge,
    pub replier: Arc<dyn Replier>,
    /// Swapped as a whole by a secret refresh; a handler reads it once with [`Self::channels`].
    channels: Live<Channels>,
    http: reqwest::Client,
}

/// The platform configuration and the outbound clients built from it.
pub struct Channels {
    pub config: WebhooksConfig,
    telegram_api: Option<TelegramApi>,
    messenger_api: Option<MessengerApi>,
}

impl Channels {
    fn new(config: WebhooksConfig, http: &reqwest::Client) -> Self {
        let telegram_api = config.telegram.as_ref().map(|t| TelegramApi {
            client: http.clone(),
            base: t.api_base.clone(),
            token: t.bot_token.clone(),
        });
        let messenger_api = config.facebook.messaging.as_ref().map(|m| MessengerApi {
            client: http.clone(),
            base: config.facebook.graph_base.clone(),
            page_token: m.page_access_token.clone(),
        });
        Self {
            config,
            telegram_api,
            messenger_api,
        }
    }
}

impl FromRef<WebhooksState> for Edge {
    fn from_ref(state: &WebhooksState) -> Edge {
        state.edge.clone()
    }
}

impl WebhooksState {
    /// Builds the state with one shared outbound client (build it once with
    /// [`outbound::http_client`]).
    pub fn new(
        edge: Edge,
        config: WebhooksConfig,
        replier: Arc<dyn Replier>,
        http: reqwest::Client,
    ) -> Self {
        Self {
            edge,
            replier,
            channels: Live::new(Channels::new(config, &http)),
            http,
        }
    }

    /// The platform configuration in force for this request.
    pub fn channels(&self) -> Arc<Channels> {
        self.channels.load()
    }

    /// What a secret refresh re-reads: the JWT keys and every platform secret (Telegram,
    /// Messenger, the Stripe signing-secret list). All of it parses before anything is swapped.
    pub fn rotate(&self, env: &dyn Env) -> Result<(), ConfigError> {
        let jwt = parse_jwt(env)?;
        let config = WebhooksConfig::from_env(env)?;
        self.edge.config.jwt.store(jwt);
        self.channels.store(Channels::new(config, &self.http));
        Ok(())
    }
}

/// The webhook routes without the edge pipeline.
pub fn routes(state: WebhooksState) -> Router {
    Router::new()
        .route("/webhooks/health", get(health))
        .route("/webhooks/telegram", post(telegram::deliver))
        .route(
            "/webhooks/facebook",
            get(facebook::verify_subscription).post(facebook::deliver),
        )
        .route("/webhooks/stripe", post(stripe::deliver))
        .with_state(state)
}

/// The webhooks Lambda's complete router.
pub fn router(state: WebhooksState) -> Router {
    let edge = state.edge.clone();
    with_edge(routes(state), edge)
}

#[utoipa::path(get, path = "/webhooks/health", tag = "webhooks", operation_id = "webhooks_health",
    responses((status = 200, description = "The function is up.", body = bastion_http::openapi::Health)))]
async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// The exact bytes the platform sent (API Gateway's base64 bodies arrive here decoded by
/// `lambda_http`), refused beyond 1 MiB.
async fn raw_body(req: Request) -> Result<Bytes, ApiError> {
    read_limited(req.into_body(), MAX_BODY_BYTES).await
}
