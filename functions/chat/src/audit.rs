//! The chat function's audit of an agent turn: one `chat_tool_call` event per tool call, awaited,
//! with the request's id, client and user, and the call's ids and counts only; and the failures
//! of a turn (quota, provider) that are audited too.

use async_trait::async_trait;
use bastion_chat::ChatError;
use bastion_chat::provider::ProviderError;
use bastion_chat::{ToolAudit, ToolCallAudit};
use bastion_core::UserId;
use bastion_core::audit::{AuditKind, Outcome};
use bastion_http::{ApiError, Edge, RequestMeta};
use bastion_store::StoreError;

use crate::ChatState;

pub struct EdgeToolAudit<'a> {
    pub edge: &'a Edge,
    pub meta: &'a RequestMeta,
    pub user: &'a UserId,
}

#[async_trait]
impl ToolAudit for EdgeToolAudit<'_> {
    async fn record(&self, call: &ToolCallAudit) -> Result<(), StoreError> {
        let outcome = if call.ok {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        self.edge
            .record_audit(
                self.meta,
                AuditKind::ChatToolCall,
                outcome,
                Some(self.user),
                Some(call.detail()),
            )
            .await
    }
}

/// Quota exhaustion and provider failures are audited (awaited) with the request id.
pub(crate) async fn audit_failure(
    state: &ChatState,
    meta: &RequestMeta,
    user: &UserId,
    e: &ChatError,
) -> Result<(), ApiError> {
    let (kind, detail) = match e {
        ChatError::QuotaExceeded { resets_at, .. } => (
            AuditKind::ChatQuotaExceeded,
            format!("resets_at={}", resets_at.secs()),
        ),
        ChatError::ProviderTimeout => (AuditKind::ChatProviderFailed, "timeout".to_owned()),
        ChatError::ProviderFailed(p) => (
            AuditKind::ChatProviderFailed,
            match p {
                ProviderError::Status(code) => format!("status_{code}"),
                ProviderError::Malformed(_) => "malformed".to_owned(),
                ProviderError::Transport(_) => "transport".to_owned(),
                ProviderError::Timeout => "timeout".to_owned(),
            },
        ),
        _ => return Ok(()),
    };
    state
        .edge
        .record_audit(meta, kind, Outcome::Failure, Some(user), Some(detail))
        .await
        .map_err(ApiError::from)
}
