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
