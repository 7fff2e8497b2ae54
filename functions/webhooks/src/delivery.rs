//! At most once, never lost: every delivery is claimed with a lease, worked on, then marked
//! done, or released (and answered 5xx) so the platform retries. Also the audit of rejected
//! deliveries and of billing changes.

use std::future::Future;

use bastion_core::UserId;
use bastion_core::audit::{AuditKind, Outcome};
use bastion_http::{ApiError, ErrorKind, RequestMeta};
use bastion_store::{ClaimOutcome, StoreError};

use crate::WebhooksState;
use crate::outbound::SendError;
use crate::reply::ReplyError;
use crate::verify::Rejection;

/// How long a claim keeps other attempts away; longer than the function's timeout, so a
/// live attempt is never overtaken, and short enough that a crashed one is retried soon.
pub const DELIVERY_LEASE_SECS: i64 = 300;

/// A failure while working on a claimed delivery: the claim is released and the platform
/// is told to retry.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("chat engine: {0}")]
    Reply(ReplyError),
    #[error("sending the answer: {0}")]
    Send(#[from] SendError),
    /// The event refers to state that a sibling event has not created yet (e.g. a
    /// subscription for a customer whose checkout has not arrived): try again later.
    #[error("not ready: {0}")]
    NotReady(String),
    #[error("audit: {0}")]
    Audit(String),
}

impl WorkError {
    fn into_api(self) -> ApiError {
        let kind = match self {
            WorkError::Send(_) => ErrorKind::UpstreamError,
            _ => ErrorKind::Unavailable,
        };
        ApiError::new(kind, "delivery could not be processed; retry later")
            .with_code("delivery_failed")
            .with_log(bastion_http::error::error_chain(&self))
    }
}

/// What happened to a delivery that was answered 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processed {
    Now,
    Duplicate,
}

impl Processed {
    pub fn body(self) -> axum::Json<serde_json::Value> {
        let status = match self {
            Processed::Now => "processed",
            Processed::Duplicate => "duplicate",
        };
        axum::Json(serde_json::json!({ "status": status }))
    }
}

/// Runs `work` for delivery `key` unless it is done or held by another attempt.
pub async fn once<F, Fut>(
    state: &WebhooksState,
    meta: &RequestMeta,
    key: &str,
    work: F,
) -> Result<Processed, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<(), WorkError>>,
{
    let deliveries = &state.edge.stores.deliveries;
    let now = state.edge.clock.now();
    match deliveries
        .claim_delivery(key, &meta.request_id, now, DELIVERY_LEASE_SECS)
        .await?
    {
        ClaimOutcome::Done => return Ok(Processed::Duplicate),
        ClaimOutcome::InProgress => {
            // Answering 200 here would end the platform's retries while the holder may
            // still fail; a 503 keeps the delivery alive until one attempt finishes.
            return Err(
                ApiError::new(ErrorKind::Unavailable, "delivery is being processed")
                    .with_code("delivery_in_progress"),
            );
        }
        ClaimOutcome::Claimed => {}
    }
    match work().await {
        Ok(()) => {
            let now = state.edge.clock.now();
            if !deliveries
                .complete_delivery(key, &meta.request_id, now)
                .await?
            {
                tracing::warn!(request_id = %meta.request_id, key, "delivery claim was taken over before completion");
            }
            Ok(Processed::Now)
        }
        Err(err) => {
            if let Err(release) = deliveries.release_delivery(key, &meta.request_id).await {
                // The lease still expires, so the retry after it gets through.
                tracing::error!(request_id = %meta.request_id, key, error = %release, "releasing a failed delivery claim");
            }
            Err(err.into_api())
        }
    }
}

/// Audits a refused delivery (source IP, platform, reason) and returns the error to answer.
/// If the audit itself cannot be written the answer is 503: a refusal is never unrecorded.
pub async fn reject(
    state: &WebhooksState,
    meta: &RequestMeta,
    platform: &str,
    reason: &str,
    answer: ApiError,
) -> ApiError {
    // One structured line per refusal, for a log metric filter and alarm on forged traffic.
    tracing::warn!(request_id = %meta.request_id, ip = %meta.ip.0, platform, reason, metric = "webhook_rejected", "webhook delivery rejected");
    match record_rejected(state, meta, platform, reason).await {
        Ok(()) => answer,
        Err(err) => ApiError::unavailable(&err),
    }
}

/// The error for a failed verification, audited.
pub async fn reject_unverified(
    state: &WebhooksState,
    meta: &RequestMeta,
    platform: &str,
    why: Rejection,
) -> ApiError {
    let answer = match why {
        Rejection::Stale | Rejection::Future => ApiError::invalid(
            "timestamp_out_of_tolerance",
            "signature timestamp is outside the accepted window",
        ),
        Rejection::Missing | Rejection::Malformed | Rejection::Mismatch => {
            ApiError::unauthorized("delivery signature is missing or invalid")
                .with_code("invalid_signature")
        }
    };
    reject(state, meta, platform, why.reason(), answer).await
}

/// The error for a platform whose secret is not configured, audited.
pub async fn reject_unconfigured(
    state: &WebhooksState,
    meta: &RequestMeta,
    platform: &str,
) -> ApiError {
    let answer = ApiError::new(ErrorKind::Unavailable, "this webhook is not configured")
        .with_code("webhook_not_configured")
        .with_log(format!("{platform} webhook secret is not configured"));
    reject(state, meta, platform, "unconfigured_secret", answer).await
}

/// Audits a security-relevant billing change on `user` during a delivery's work.
pub async fn audit_billing(
    state: &WebhooksState,
    meta: &RequestMeta,
    kind: AuditKind,
    user: &UserId,
    detail: String,
) -> Result<(), WorkError> {
    state
        .edge
        .record_audit(meta, kind, Outcome::Success, Some(user), Some(detail))
        .await
        .map_err(|e| WorkError::Audit(e.to_string()))
}

/// Audits a verified delivery that could not be acted on for good (e.g. an unknown user).
pub async fn audit_unusable(
    state: &WebhooksState,
    meta: &RequestMeta,
    platform: &str,
    reason: &str,
) -> Result<(), WorkError> {
    tracing::warn!(request_id = %meta.request_id, platform, reason, "verified delivery could not be acted on");
    record_rejected(state, meta, platform, reason)
        .await
        .map_err(|e| WorkError::Audit(e.to_string()))
}

/// A delivery refused or not acted on, recorded as `platform:reason`.
async fn record_rejected(
    state: &WebhooksState,
    meta: &RequestMeta,
    platform: &str,
    reason: &str,
) -> Result<(), StoreError> {
    let detail = format!("{platform}:{reason}");
    state
        .edge
        .record_audit(
            meta,
            AuditKind::WebhookRejected,
            Outcome::Failure,
            None,
            Some(detail),
        )
        .await
}
