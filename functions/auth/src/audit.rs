//! Writing audit events: awaited before the response, and a failed write fails the request.

use bastion_core::audit::{AuditEvent, AuditKind, Outcome};
use bastion_core::{AuditId, UserId};
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
    let event = AuditEvent {
        id: AuditId::generate_ordered(),
        at: state.edge.clock.now(),
        kind,
        outcome,
        user_id: user.cloned(),
        ip: meta.ip.0.clone(),
        user_agent: meta.user_agent.0.clone(),
        request_id: meta.request_id.clone(),
        detail: detail.map(str::to_owned),
    };
    state
        .edge
        .stores
        .audit
        .append(&event)
        .await
        .map_err(|e| ApiError::unavailable(&e))
}
