//! Writing exec audit events: awaited before the response. Command names and counts only,
//! never argument contents.

use bastion_core::audit::{AuditEvent, AuditKind, Outcome};
use bastion_core::{AuditId, UserId};
use bastion_http::{ApiError, RequestMeta};

use crate::ExecState;

pub async fn record(
    state: &ExecState,
    meta: &RequestMeta,
    outcome: Outcome,
    user: &UserId,
    detail: String,
) -> Result<(), ApiError> {
    let event = AuditEvent {
        id: AuditId::generate_ordered(),
        at: state.edge.clock.now(),
        kind: AuditKind::ExecRun,
        outcome,
        user_id: Some(user.clone()),
        ip: meta.ip.0.clone(),
        user_agent: meta.user_agent.0.clone(),
        request_id: meta.request_id.clone(),
        detail: Some(detail),
    };
    state
        .edge
        .stores
        .audit
        .append(&event)
        .await
        .map_err(|e| ApiError::unavailable(&e))
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
