//! The request pipeline wrapped around every function's router: request id, client IP, the
//! default per-IP limit, CORS, security headers, the error envelope and one access-log line.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, FromRequestParts, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bastion_core::{Clock, RequestId};
use bastion_store::Stores;
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};

use crate::client::client_ip;
use crate::config::EdgeConfig;
use crate::cors;
use crate::error::{ApiError, ErrorKind, envelope};
use crate::limit_headers::write_headers;
use crate::limits::LimitTable;
use crate::rate_limit::{Limits, RateLimitSlot, RateLimiter};
use crate::secrets::SecretConfig;

/// What the edge needs at request time; every function's state holds one.
#[derive(Clone)]
pub struct Edge {
    pub config: Arc<EdgeConfig>,
    pub stores: Stores,
    pub clock: Arc<dyn Clock>,
    pub limiter: RateLimiter,
    /// In Lambda, the secret overlay: each request starts its refresh when it is due.
    pub secrets: Option<Arc<SecretConfig>>,
}

impl Edge {
    pub fn new(config: EdgeConfig, stores: Stores, clock: Arc<dyn Clock>) -> Self {
        let limiter = RateLimiter::new(stores.counters.clone(), clock.clone(), config.rate_limits);
        Self {
            config: Arc::new(config),
            stores,
            clock,
            limiter,
            secrets: None,
        }
    }

    /// Lets requests trigger the secret refresh (see [`SecretConfig::poke`]).
    pub fn with_secrets(mut self, secrets: Option<Arc<SecretConfig>>) -> Self {
        self.secrets = secrets;
        self
    }
}

/// A handler's [`Limits`], on the slot the pipeline put in the request.
impl<S> FromRequestParts<S> for Limits
where
    Edge: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let slot = parts
            .extensions
            .get::<RateLimitSlot>()
            .cloned()
            .unwrap_or_default();
        Ok(Limits::new(Edge::from_ref(state).limiter, slot))
    }
}

const SECURITY_HEADERS: [(&str, &str); 6] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    (
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    ),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
];

/// Wraps `router` in the pipeline; unknown paths answer the 404 envelope.
pub fn with_edge(router: Router, edge: Edge) -> Router {
    router
        .fallback(|| async { ApiError::not_found() })
        .layer(axum::middleware::from_fn_with_state(edge, pipeline))
}

async fn pipeline(State(edge): State<Edge>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    if let Some(secrets) = &edge.secrets {
        secrets.poke();
    }
    let request_id = RequestId::generate();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let origin =
        cors::allowed_origin(req.headers(), &edge.config.allowed_origins).map(str::to_owned);
    let preflight = cors::is_preflight(&method, req.headers());

    let (mut parts, body) = req.into_parts();
    let slot = RateLimitSlot::default();
    let mut res = if preflight {
        // A preflight carries no credentials and touches no data, so it costs no store request.
        StatusCode::NO_CONTENT.into_response()
    } else if crate::body::declares_too_large(&parts.headers) {
        crate::body::too_large().into_response()
    } else {
        match client_ip(&parts) {
            None => ApiError::new(ErrorKind::Unavailable, "client address unavailable")
                .with_log("no client IP in request context or socket address")
                .into_response(),
            Some(ip) => {
                let limit = LimitTable::ip_limit_for(&path);
                let limit = edge.limiter.enforce(&slot, limit, &ip.0).await;
                match limit {
                    Err(e) => e.into_response(),
                    Ok(_) => {
                        parts.extensions.insert(ip);
                        parts.extensions.insert(request_id.clone());
                        parts.extensions.insert(slot.clone());
                        next.run(Request::from_parts(parts, body)).await
                    }
                }
            }
        }
    };

    finish(&mut res, &request_id, &slot, origin.as_deref(), preflight);
    let status = res.status().as_u16();
    let latency_us = started.elapsed().as_micros();
    let route = route.as_deref().unwrap_or("-");
    if let Some(err) = res.extensions().get::<ApiError>() {
        if res.status().is_server_error() {
            tracing::error!(%request_id, %method, %path, route, status, latency_us, code = %err.code(), cause = err.cause().unwrap_or(""), "request failed");
        } else {
            tracing::info!(%request_id, %method, %path, route, status, latency_us, code = %err.code(), "request refused");
        }
    } else {
        tracing::info!(%request_id, %method, %path, route, status, latency_us, "request served");
    }
    res
}

/// The headers and body of an answer given outside the router (an event the Lambda entry
/// refuses before routing): the same envelope and security headers as every response.
pub(crate) fn outside_router(err: &ApiError, request_id: &RequestId) -> (http::HeaderMap, String) {
    let mut res = err.clone().into_response();
    finish(&mut res, request_id, &RateLimitSlot::default(), None, false);
    (res.headers().clone(), envelope(err, request_id.as_str()))
}

/// Envelope, rate-limit headers, CORS and security headers, applied to every response.
fn finish(
    res: &mut Response,
    request_id: &RequestId,
    slot: &RateLimitSlot,
    origin: Option<&str>,
    preflight: bool,
) {
    let status = res.status();
    if status.is_client_error() || status.is_server_error() {
        let err = match res.extensions().get::<ApiError>() {
            Some(e) => e.clone(),
            None => {
                let kind = ErrorKind::from_status(status);
                let e = ApiError::new(kind, framework_message(kind));
                res.extensions_mut().insert(e.clone());
                e
            }
        };
        *res.body_mut() = Body::from(envelope(&err, request_id.as_str()));
        let headers = res.headers_mut();
        headers.remove(header::CONTENT_LENGTH);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    let headers = res.headers_mut();
    if !headers.contains_key("ratelimit-limit")
        && let Some(d) = slot.get()
    {
        write_headers(headers, &d);
    }
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if let Ok(v) = HeaderValue::from_str(request_id.as_str()) {
        headers.insert("x-request-id", v);
    }
    cors::apply(headers, origin, preflight);
}

fn framework_message(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "no such resource",
        ErrorKind::MethodNotAllowed => "method not allowed on this resource",
        ErrorKind::InvalidRequest => "the request is malformed",
        _ => "request failed",
    }
}
