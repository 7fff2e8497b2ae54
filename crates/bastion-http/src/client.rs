//! Who is calling, as far as the network says: the source IP from the API Gateway request
//! context (locally, the socket address) and the User-Agent. Never `X-Forwarded-For`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use http::request::Parts;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;

use crate::error::ApiError;

/// The caller's IP address as a string (validated to parse as an IP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIp(pub String);

/// The User-Agent header, cut to 256 characters for storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAgent(pub String);

const USER_AGENT_MAX: usize = 256;

/// The client IP from the trusted source, if any: the API Gateway context in Lambda, the TCP
/// peer locally.
pub fn client_ip(parts: &Parts) -> Option<ClientIp> {
    let from_gateway = parts.request_context_ref().and_then(|ctx| match ctx {
        RequestContext::ApiGatewayV1(c) => c.identity.source_ip.clone(),
        RequestContext::ApiGatewayV2(c) => c.http.source_ip.clone(),
        // Other event sources are not wired to these functions.
        #[allow(unreachable_patterns)]
        _ => None,
    });
    let raw = from_gateway.or_else(|| {
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string())
    })?;
    // An IPv4 client reached over a dual-stack socket shows up IPv4-mapped: record it as IPv4.
    raw.parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| ClientIp(ip.to_canonical().to_string()))
}

pub fn user_agent(parts: &Parts) -> UserAgent {
    let ua = parts
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    UserAgent(
        ua.chars()
            .filter(|c| !c.is_control())
            .take(USER_AGENT_MAX)
            .collect(),
    )
}

/// Request facts handlers record in sessions and audit events.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub ip: ClientIp,
    pub user_agent: UserAgent,
    pub request_id: bastion_core::RequestId,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // The pipeline inserts both before any handler runs; missing means a wiring fault.
        let ip = parts.extensions.get::<ClientIp>().cloned();
        let request_id = parts.extensions.get::<bastion_core::RequestId>().cloned();
        match (ip, request_id) {
            (Some(ip), Some(request_id)) => Ok(RequestMeta {
                ip,
                user_agent: user_agent(parts),
                request_id,
            }),
            _ => Err(ApiError::new(
                crate::error::ErrorKind::Internal,
                "internal error",
            )),
        }
    }
}
