//! `POST /auth/refresh`: rotate the refresh token; a rotated token seen again kills the session.

use axum::Json;
use axum::extract::State;
use bastion_core::UserId;
use bastion_core::audit::{AuditKind, Outcome};
use bastion_core::crypto::token::looks_like_token;
use bastion_core::crypto::{OpaqueToken, TokenHash};
use bastion_http::{ApiError, JsonBody, Limit, Limits, RequestMeta};
use bastion_store::RotateOutcome;

use crate::AuthState;
use crate::audit::record;
use crate::dto::{RefreshRequest, TokenResponse};
use crate::tokens::token_response;

fn invalid_refresh() -> ApiError {
    ApiError::unauthorized("refresh token is invalid or expired").with_code("invalid_refresh_token")
}

fn reused() -> ApiError {
    ApiError::unauthorized("refresh token was already used; the session has been revoked")
        .with_code("refresh_token_reused")
}

#[utoipa::path(
    post, path = "/auth/refresh", tag = "auth", operation_id = "refresh",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new access token and a rotated refresh token.", body = TokenResponse),
        (status = 401, description = "`invalid_refresh_token`, `refresh_token_reused` (the whole session family is revoked)."),
    )
)]
pub async fn refresh(
    State(state): State<AuthState>,
    meta: RequestMeta,
    limits: Limits,
    JsonBody(body): JsonBody<RefreshRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    if !looks_like_token(&body.refresh_token) {
        return Err(invalid_refresh());
    }
    let stores = &state.edge.stores;
    let now = state.edge.clock.now();
    let presented = TokenHash::of(&body.refresh_token);
    let Some(lookup) = stores.sessions.find_refresh(&presented, now).await? else {
        // Unknown, or its session's absolute lifetime is over (the lookup expires with it):
        // the store cannot tell which, so no user is named.
        return refused(&state, &meta, None, "unknown_or_expired").await;
    };
    limits
        .enforce(Limit::RefreshSession, lookup.session_id.as_str())
        .await?;
    let Some(session) = stores
        .sessions
        .get_session(&lookup.user_id, &lookup.session_id, now)
        .await?
    else {
        return refused(&state, &meta, Some(&lookup.user_id), "session_gone").await;
    };
    let user = stores.users.get_user(&lookup.user_id).await?;
    let idle = now.secs() - session.last_used_at.secs() > state.sessions.idle_secs;
    let user = match user {
        Some(u) if !u.disabled && !idle => u,
        other => {
            let reason = match other {
                None => "user_gone",
                Some(u) if u.disabled => "user_disabled",
                Some(_) => "idle_expired",
            };
            stores
                .sessions
                .revoke_session(&session.user_id, &session.id)
                .await?;
            return refused(&state, &meta, Some(&session.user_id), reason).await;
        }
    };

    let next = OpaqueToken::generate();
    let outcome = if session.refresh_hash.ct_eq(&presented) {
        stores
            .sessions
            .rotate_refresh(&user.id, &session.id, &presented, &next.hash(), now)
            .await?
    } else {
        RotateOutcome::Reused
    };
    match outcome {
        RotateOutcome::Rotated => {
            record(
                &state,
                &meta,
                AuditKind::RefreshRotated,
                Outcome::Success,
                Some(&user.id),
                None,
            )
            .await?;
            Ok(Json(token_response(&state, &user, &session.id, &next)?))
        }
        RotateOutcome::Reused => {
            stores
                .sessions
                .revoke_session(&user.id, &session.id)
                .await?;
            record(
                &state,
                &meta,
                AuditKind::RefreshReuseDetected,
                Outcome::Failure,
                Some(&user.id),
                Some("session_revoked"),
            )
            .await?;
            tracing::warn!(request_id = %meta.request_id, user_id = %user.id, session_id = %session.id, "refresh token reuse: session revoked");
            Err(reused())
        }
        RotateOutcome::SessionGone => refused(&state, &meta, Some(&user.id), "session_gone").await,
    }
}

/// Audits a refused refresh with its reason, then answers the one refusal every case shares.
async fn refused<T>(
    state: &AuthState,
    meta: &RequestMeta,
    user: Option<&UserId>,
    reason: &str,
) -> Result<T, ApiError> {
    record(
        state,
        meta,
        AuditKind::RefreshRefused,
        Outcome::Failure,
        user,
        Some(reason),
    )
    .await?;
    Err(invalid_refresh())
}
