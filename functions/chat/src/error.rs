//! The one map from the engine's errors to the API envelope; a quota refusal also says when it
//! resets, in the message and in `Retry-After`.

use axum::response::{IntoResponse, Response};
use bastion_chat::ChatError;
use bastion_core::Timestamp;
use bastion_http::{ApiError, ErrorKind};
use http::HeaderValue;

/// A chat route's failure: the envelope, plus `Retry-After` for an exhausted quota.
#[derive(Debug)]
pub struct ChatFailure {
    pub error: ApiError,
    pub retry_after_secs: Option<i64>,
}

impl From<ApiError> for ChatFailure {
    fn from(error: ApiError) -> Self {
        Self {
            error,
            retry_after_secs: None,
        }
    }
}

impl IntoResponse for ChatFailure {
    fn into_response(self) -> Response {
        let mut res = self.error.into_response();
        if let Some(secs) = self.retry_after_secs
            && let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string())
        {
            res.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
        res
    }
}

/// The status and code each engine outcome gets.
pub fn chat_error(e: ChatError, now: Timestamp) -> ChatFailure {
    let mut retry_after_secs = None;
    let error = match e {
        ChatError::NotFound => ApiError::not_found(),
        ChatError::InvalidMessage { code, message } => ApiError::invalid(code, message),
        ChatError::ModelNotAllowed => ApiError::invalid(
            "model_not_allowed",
            "model is not one of the allowed models",
        ),
        ChatError::InvalidCursor => ApiError::invalid("invalid_cursor", "cursor is not valid"),
        ChatError::QuotaExceeded { resets_at, .. } => {
            retry_after_secs = Some(resets_at.secs() - now.secs());
            ApiError::new(
                ErrorKind::QuotaExceeded,
                format!(
                    "daily message credits are used up; they reset at {}",
                    resets_at.to_rfc3339()
                ),
            )
        }
        ChatError::ProviderFailed(p) => {
            let mut e = ApiError::new(
                ErrorKind::UpstreamError,
                "the language model provider failed",
            );
            e.log = Some(p.to_string());
            e
        }
        ChatError::ProviderTimeout => {
            let mut e = ApiError::new(
                ErrorKind::UpstreamTimeout,
                "the language model provider did not answer in time",
            );
            e.log = Some("provider deadline passed".to_owned());
            e
        }
        ChatError::Conflict => ApiError::new(
            ErrorKind::Conflict,
            "the conversation changed during this request; retry",
        ),
        ChatError::Store(s) => ApiError::unavailable(&s),
    };
    ChatFailure {
        error,
        retry_after_secs,
    }
}
