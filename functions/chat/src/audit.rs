//! The chat function's audit of an agent turn's tool calls: one `chat_tool_call` event per
//! call, awaited, with the request's id, client and user, and the call's ids and counts only.

use async_trait::async_trait;
use bastion_chat::{ToolAudit, ToolCallAudit};
use bastion_core::UserId;
use bastion_core::audit::{AuditKind, Outcome};
use bastion_http::{Edge, RequestMeta};
use bastion_store::StoreError;

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
