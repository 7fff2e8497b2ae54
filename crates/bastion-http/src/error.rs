//! One error envelope for every failure and the one map from error kind to HTTP status.
//!
//! Handlers return [`ApiError`]; its response carries the kind, code and message in an
//! extension, and the pipeline renders the body once the request id is known. Internal details
//! travel only in `log`, which the pipeline writes with the request id and never sends.

use std::borrow::Cow;

use axum::response::{IntoResponse, Response};
use bastion_core::rate_limit::Decision;
use http::{HeaderValue, StatusCode};

/// The public classes of failure; each has exactly one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    Internal,
    UpstreamError,
    Unavailable,
    /// A quota (e.g. daily chat credits) is used up until it resets.
    QuotaExceeded,
    /// A dependency did not answer within the request's deadline.
    UpstreamTimeout,
}

impl ErrorKind {
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::UpstreamError => StatusCode::BAD_GATEWAY,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::QuotaExceeded => StatusCode::PAYMENT_REQUIRED,
            ErrorKind::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    pub fn default_code(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Internal => "internal_error",
            ErrorKind::UpstreamError => "upstream_error",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::QuotaExceeded => "quota_exceeded",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
        }
    }

    /// The kind a bare status (from the framework, not a handler) stands for.
    pub fn from_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => ErrorKind::Unauthorized,
            402 => ErrorKind::QuotaExceeded,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            405 => ErrorKind::MethodNotAllowed,
            409 => ErrorKind::Conflict,
            413 => ErrorKind::PayloadTooLarge,
            415 => ErrorKind::UnsupportedMediaType,
            429 => ErrorKind::RateLimited,
            502 => ErrorKind::UpstreamError,
            503 => ErrorKind::Unavailable,
            504 => ErrorKind::UpstreamTimeout,
            400..=499 => ErrorKind::InvalidRequest,
            _ => ErrorKind::Internal,
        }
    }
}

/// A failure on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    kind: ErrorKind,
    code: Cow<'static, str>,
    message: Cow<'static, str>,
    /// Logged with the request id; never sent.
    log: Option<String>,
    rate_limit: Option<Decision>,
    /// `Retry-After` for a refusal that is not a rate limit (e.g. a quota reset).
    retry_after_secs: Option<i64>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            code: Cow::Borrowed(kind.default_code()),
            message: message.into(),
            log: None,
            rate_limit: None,
            retry_after_secs: None,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// What the log line says about the cause; never sent to the client.
    pub fn cause(&self) -> Option<&str> {
        self.log.as_deref()
    }

    /// Adds what the log line says about the cause; the client never sees it.
    pub fn with_log(mut self, cause: impl Into<String>) -> Self {
        self.log = Some(cause.into());
        self
    }

    /// Answers with `Retry-After: secs` (at least 1).
    pub fn with_retry_after(mut self, secs: i64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// Same kind and status, a more specific code (e.g. `email_taken` for a 409).
    pub fn with_code(mut self, code: impl Into<Cow<'static, str>>) -> Self {
        self.code = code.into();
        self
    }

    pub fn invalid(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::InvalidRequest, message).with_code(code)
    }

    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::Unauthorized, message)
    }

    pub fn not_found() -> Self {
        Self::new(ErrorKind::NotFound, "no such resource")
    }

    /// A server-side failure: the client sees a generic message, the log sees `err`'s chain.
    pub fn internal(err: &(dyn std::error::Error + 'static)) -> Self {
        Self::new(ErrorKind::Internal, "internal error").with_log(error_chain(err))
    }

    /// The store or another dependency is unreachable: refuse rather than proceed.
    pub fn unavailable(err: &(dyn std::error::Error + 'static)) -> Self {
        Self::new(ErrorKind::Unavailable, "service temporarily unavailable")
            .with_log(error_chain(err))
    }

    pub fn rate_limited(decision: Decision) -> Self {
        let mut e = Self::new(ErrorKind::RateLimited, "too many requests; retry later");
        e.rate_limit = Some(decision);
        e
    }
}

impl From<bastion_core::ValidationError> for ApiError {
    fn from(v: bastion_core::ValidationError) -> Self {
        ApiError::invalid(v.code, v.message)
    }
}

impl From<bastion_store::StoreError> for ApiError {
    fn from(e: bastion_store::StoreError) -> Self {
        ApiError::unavailable(&e)
    }
}

/// `err: cause: cause…`, for logs.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = self.kind.status().into_response();
        if let Some(d) = &self.rate_limit {
            crate::limit_headers::write_headers(res.headers_mut(), d);
        }
        let retry_after = self
            .rate_limit
            .map(|d| i64::from(d.retry_after_secs))
            .or(self.retry_after_secs);
        if let Some(secs) = retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string())
        {
            res.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
        res.extensions_mut().insert(self);
        res
    }
}

/// The envelope body, rendered by the pipeline.
pub(crate) fn envelope(err: &ApiError, request_id: &str) -> String {
    let body = crate::openapi::ErrorEnvelope {
        error: crate::openapi::ErrorDetail {
            code: err.code(),
            message: err.message(),
            request_id,
        },
    };
    // Serializing three strings cannot fail; the fallback keeps the envelope's shape anyway.
    serde_json::to_string(&body).unwrap_or_else(|_| {
        r#"{"error":{"code":"internal_error","message":"internal error","request_id":""}}"#
            .to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_map_is_exact() {
        let cases = [
            (ErrorKind::InvalidRequest, 400, "invalid_request"),
            (ErrorKind::Unauthorized, 401, "unauthorized"),
            (ErrorKind::Forbidden, 403, "forbidden"),
            (ErrorKind::NotFound, 404, "not_found"),
            (ErrorKind::Conflict, 409, "conflict"),
            (ErrorKind::PayloadTooLarge, 413, "payload_too_large"),
            (
                ErrorKind::UnsupportedMediaType,
                415,
                "unsupported_media_type",
            ),
            (ErrorKind::RateLimited, 429, "rate_limited"),
            (ErrorKind::UpstreamError, 502, "upstream_error"),
            (ErrorKind::Unavailable, 503, "unavailable"),
            (ErrorKind::QuotaExceeded, 402, "quota_exceeded"),
            (ErrorKind::UpstreamTimeout, 504, "upstream_timeout"),
        ];
        for (kind, status, code) in cases {
            assert_eq!(kind.status().as_u16(), status);
            assert_eq!(kind.default_code(), code);
            assert_eq!(ErrorKind::from_status(kind.status()), kind);
        }
    }

    #[test]
    fn envelope_has_code_message_and_request_id() {
        let e = ApiError::invalid("invalid_email", "email is required");
        let body: serde_json::Value = serde_json::from_str(&envelope(&e, "abc")).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error":{"code":"invalid_email","message":"email is required","request_id":"abc"}})
        );
    }
}
