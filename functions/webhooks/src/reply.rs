//! The reply port: how a verified channel message becomes an answer, implemented by the chat
//! engine.

use async_trait::async_trait;
use bastion_chat::{ChatEngine, ChatError, ProviderError};
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
    /// `delivery` names the platform delivery (its dedupe key): a retry of the same delivery
    /// must not be charged or answered twice.
    async fn reply(
        &self,
        owner: &Owner,
        text: &str,
        delivery: &str,
        request_id: &RequestId,
    ) -> Result<String, ReplyError>;
}

/// The chat engine answers channel messages: each channel user continues one conversation and
/// spends their own daily credits.
#[async_trait]
impl Replier for ChatEngine {
    async fn reply(
        &self,
        owner: &Owner,
        text: &str,
        delivery: &str,
        request_id: &RequestId,
    ) -> Result<String, ReplyError> {
        self.channel_reply(owner, text, delivery, request_id)
            .await
            .map_err(|e| match e {
                ChatError::QuotaExceeded { resets_at, .. } => {
                    ReplyError::QuotaExceeded { resets_at }
                }
                // Our own fixed texts, chosen here: whatever an engine error message says is
                // written for API clients and may change without thought for chat users.
                ChatError::InvalidMessage { code, .. } => ReplyError::Rejected(
                    match code {
                        "message_too_long" => TOO_LONG,
                        _ => UNREADABLE,
                    }
                    .to_owned(),
                ),
                // A refusal the provider will repeat on every retry (bad key, unknown model,
                // prompt too large) or a configuration fault: retrying the delivery cannot
                // help and would keep the platform failing (Meta disables webhooks that keep
                // failing), so the user is told and the delivery is done. The credit was
                // refunded and the error is logged by the engine.
                ChatError::ProviderFailed(ProviderError::Status(status))
                    if !matches!(status, 408 | 425 | 429 | 500..) =>
                {
                    ReplyError::Rejected(UNAVAILABLE.to_owned())
                }
                ChatError::ModelNotAllowed => ReplyError::Rejected(UNAVAILABLE.to_owned()),
                // Timeouts, 5xx/429, transport, malformed replies, store and race failures are
                // transient: the claim is released and the platform retries. A retry re-runs
                // the turn only if it was not stored (the credit was refunded); a stored turn
                // is replayed, not charged again (see `ChatEngine::channel_reply`).
                other => ReplyError::Failed(other.to_string()),
            })
    }
}

const TOO_LONG: &str = "Sorry, that message is too long for me. Please send a shorter one.";
const UNREADABLE: &str = "Sorry, I could not read that message.";
const UNAVAILABLE: &str = "Sorry, I cannot answer right now. Please try again later.";

/// What the user sees when their credits ran out.
pub fn quota_message(resets_at: Timestamp) -> String {
    format!(
        "You have used all of your messages for now. Your allowance resets at {} (UTC).",
        resets_at.to_rfc3339()
    )
}
