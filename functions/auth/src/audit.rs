//! Writing audit events: awaited before the response, and a failed write fails the request.

use bastion_core::UserId;
use bastion_core::audit::{AuditKind, Outcome};
use bastion_http::{ApiError, RequestMeta};

use crate::AuthState;

pub async fn record(
    state: &AuthState,
    meta: &RequestMeta,
    kind: AuditKind,
    outcome: Outcome,
    user: Option<&UserId>,
    detail: Option<&str>,
) -> Result<(), ApiError> {
    state
        .edge
        .record_audit(meta, kind, outcome, user, detail.map(str::to_owned))
        .await
        .map_err(ApiError::from)
}

/// Audits a refusal (a failure with its reason), then answers `error`.
pub async fn refused<T>(
    state: &AuthState,
    meta: &RequestMeta,
    kind: AuditKind,
    user: Option<&UserId>,
    reason: &str,
    error: ApiError,
) -> Result<T, ApiError> {
    record(state, meta, kind, Outcome::Failure, user, Some(reason)).await?;
    Err(error)
}
