//! The one map from the engine's errors to the API envelope; a quota refusal also says when it
//! resets, in the message and in `Retry-After`.

use bastion_chat::ChatError;
use bastion_core::Timestamp;
use bastion_http::{ApiError, ErrorKind};

/// The status and code each engine outcome gets.
pub fn chat_error(e: ChatError, now: Timestamp) -> ApiError {
    match e {
        ChatError::NotFound => ApiError::not_found(),
        ChatError::InvalidMessage { code, message } => ApiError::invalid(code, message),
        ChatError::ModelNotAllowed => ApiError::invalid(
            "model_not_allowed",
            "model is not one of the allowed models",
        ),
        ChatError::InvalidCursor => ApiError::invalid("invalid_cursor", "cursor is not valid"),
        ChatError::QuotaExceeded { resets_at, .. } => ApiError::new(
            ErrorKind::QuotaExceeded,
            format!(
                "daily message credits are used up; they reset at {}",
                resets_at.to_rfc3339()
            ),
        )
        .with_retry_after(resets_at.secs() - now.secs()),
        ChatError::ProviderFailed(p) => ApiError::new(
            ErrorKind::UpstreamError,
            "the language model provider failed",
        )
        .with_log(p.to_string()),
        ChatError::ProviderTimeout => ApiError::new(
            ErrorKind::UpstreamTimeout,
            "the language model provider did not answer in time",
        )
        .with_log("provider deadline passed"),
        ChatError::Conflict => ApiError::new(
            ErrorKind::Conflict,
            "the conversation changed during this request; retry",
        ),
        ChatError::Store(s) => ApiError::unavailable(&s),
        // Nobody reads it: the client this would answer has gone.
        ChatError::ClientGone => ApiError::invalid(
            "client_closed_request",
            "the client closed the stream before the turn produced anything",
        ),
    }
}
