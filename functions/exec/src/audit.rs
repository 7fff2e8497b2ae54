//! Writing exec audit events: awaited before the response. Command names and counts only,
//! never argument contents.

use bastion_core::UserId;
use bastion_core::audit::{AuditKind, Outcome};
use bastion_http::{ApiError, RequestMeta};

use crate::ExecState;

pub async fn record(
    state: &ExecState,
    meta: &RequestMeta,
    outcome: Outcome,
    user: &UserId,
    detail: String,
) -> Result<(), ApiError> {
    state
        .edge
        .record_audit(meta, AuditKind::ExecRun, outcome, Some(user), Some(detail))
        .await
        .map_err(ApiError::from)
}

/// A refused command name as it may be recorded: short, and only harmless characters.
pub fn safe_name(name: &str) -> String {
    name.chars()
        .take(32)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '?'
            }
        })
        .collect()
}
