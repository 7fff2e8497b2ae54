//! Logout, logout everywhere, and listing or revoking one's own sessions.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bastion_core::SessionId;
use bastion_core::audit::{AuditKind, Outcome};
use bastion_http::{ApiError, RequestMeta, SessionOnly};

use crate::AuthState;
use crate::audit::record;
use crate::dto::{SessionView, SessionsResponse};

#[utoipa::path(
    post, path = "/auth/logout", tag = "sessions", operation_id = "logout", security(("bearer_jwt" = [])),
    responses((status = 204, description = "This session is revoked."), (status = 403, description = "`session_required`: API keys cannot reach account management."))
)]
pub async fn logout(
    State(state): State<AuthState>,
    meta: RequestMeta,
    auth: SessionOnly,
) -> Result<StatusCode, ApiError> {
    state
        .edge
        .stores
        .sessions
        .revoke_session(&auth.user_id, &auth.session_id)
        .await?;
    record(
        &state,
        &meta,
        AuditKind::Logout,
        Outcome::Success,
        Some(&auth.user_id),
        None,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post, path = "/auth/logout-all", tag = "sessions", operation_id = "logout_all", security(("bearer_jwt" = [])),
    responses((status = 204, description = "Every session of the account is revoked."), (status = 403, description = "`session_required`: API keys cannot reach account management."))
)]
pub async fn logout_all(
    State(state): State<AuthState>,
    meta: RequestMeta,
    auth: SessionOnly,
) -> Result<StatusCode, ApiError> {
    let n = state
        .edge
        .stores
        .sessions
        .revoke_all_sessions(&auth.user_id, None)
        .await?;
    let detail = format!("revoked={n}");
    record(
        &state,
        &meta,
        AuditKind::LogoutAll,
        Outcome::Success,
        Some(&auth.user_id),
        Some(&detail),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/auth/sessions", tag = "sessions", operation_id = "list_sessions", security(("bearer_jwt" = [])),
    responses((status = 200, description = "The account's live sessions.", body = SessionsResponse), (status = 403, description = "`session_required`: API keys cannot reach account management."))
)]
pub async fn list(
    State(state): State<AuthState>,
    auth: SessionOnly,
) -> Result<Json<SessionsResponse>, ApiError> {
    let now = state.edge.clock.now();
    let sessions = state
        .edge
        .stores
        .sessions
        .list_sessions(&auth.user_id, now)
        .await?;
    Ok(Json(SessionsResponse {
        sessions: sessions
            .iter()
            .map(|s| SessionView::of(s, s.id == auth.session_id))
            .collect(),
    }))
}

/// Only the caller's own sessions can be named: another user's id is 404, like a missing one.
#[utoipa::path(
    delete, path = "/auth/sessions/{id}", tag = "sessions", operation_id = "revoke_session", security(("bearer_jwt" = [])),
    params(("id" = String, Path, description = "Session id.")),
    responses((status = 204, description = "The session is revoked."), (status = 403, description = "`session_required`: API keys cannot reach account management."),
        (status = 404, description = "`not_found`: no such session of this account."))
)]
pub async fn revoke(
    State(state): State<AuthState>,
    meta: RequestMeta,
    auth: SessionOnly,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = SessionId::parse(&id).map_err(|_| ApiError::not_found())?;
    let existed = state
        .edge
        .stores
        .sessions
        .revoke_session(&auth.user_id, &id)
        .await?;
    if !existed {
        return Err(ApiError::not_found());
    }
    let detail = format!("session={id}");
    record(
        &state,
        &meta,
        AuditKind::SessionRevoked,
        Outcome::Success,
        Some(&auth.user_id),
        Some(&detail),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
