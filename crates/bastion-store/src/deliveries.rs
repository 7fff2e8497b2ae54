//! Inbound webhook deliveries: claim, completion and the stored answer a retry replays.

use async_trait::async_trait;
use bastion_core::{RequestId, Timestamp};

use crate::StoreError;

/// Dedupe records of inbound deliveries are kept this long after a claim or completion: more
/// than the 72 h over which Stripe, Telegram and Meta retry a delivery.
pub const DELIVERY_RETENTION_SECS: i64 = 4 * 24 * 3600;

/// What claiming an inbound delivery found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// Nobody holds or finished it: the caller now holds it and must complete or release it.
    Claimed,
    /// Another request holds a live lease on it.
    InProgress,
    /// It was processed already.
    Done,
}

#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Claims delivery `key` for the request `holder` until `now + lease_secs`. Succeeds when
    /// there is no live record: none, one past its retention at `now`, or an in-progress claim
    /// whose lease ran out. Exactly one of several concurrent callers gets `Claimed`.
    async fn claim_delivery(
        &self,
        key: &str,
        holder: &RequestId,
        now: Timestamp,
        lease_secs: i64,
    ) -> Result<ClaimOutcome, StoreError>;
    /// Marks `holder`'s claim done, kept `DELIVERY_RETENTION_SECS` from `now`; false when the
    /// claim is no longer `holder`'s.
    async fn complete_delivery(
        &self,
        key: &str,
        holder: &RequestId,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Drops `holder`'s in-progress claim so a retry can claim it; false when it is not theirs.
    async fn release_delivery(&self, key: &str, holder: &RequestId) -> Result<bool, StoreError>;
}
