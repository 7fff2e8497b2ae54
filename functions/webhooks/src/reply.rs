//! The reply port: how a verified channel message becomes an answer. The chat engine
//! implements it at merge; until then the deployable wiring uses [`ChatEngineNotWired`].

use async_trait::async_trait;
use bastion_core::{Owner, RequestId, Timestamp};

/// Why no answer was produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// The owner used up their credits; the user is told politely and the delivery is done.
    #[error("quota exceeded until {}", resets_at.to_rfc3339())]
    QuotaExceeded { resets_at: Timestamp },
    /// The message was refused (e.g. too long); the reason is sent to the user and the
    /// delivery is done. The text must be safe to show the user.
    #[error("message rejected: {0}")]
    Rejected(String),
    /// The provider or store failed: the claim is released and the platform retries.
    #[error("reply failed: {0}")]
    Failed(String),
}

/// Answers one message from a channel owner.
#[async_trait]
pub trait Replier: Send + Sync {
    async fn reply(
        &self,
        owner: &Owner,
        text: &str,
        request_id: &RequestId,
    ) -> Result<String, ReplyError>;
}

/// Placeholder for builds where the chat engine is not plugged in yet: every reply fails, so
/// deliveries are answered 503 and the platforms keep retrying rather than losing messages.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChatEngineNotWired;

#[async_trait]
impl Replier for ChatEngineNotWired {
    async fn reply(&self, _: &Owner, _: &str, _: &RequestId) -> Result<String, ReplyError> {
        Err(ReplyError::Failed(
            "the chat engine is not wired into this build".to_owned(),
        ))
    }
}

/// What the user sees when their credits ran out.
pub fn quota_message(resets_at: Timestamp) -> String {
    format!(
        "You have used all of your messages for now. Your allowance resets at {} (UTC).",
        resets_at.to_rfc3339()
    )
}
