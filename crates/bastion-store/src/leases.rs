//! Leases: one holder per key across instances.

use async_trait::async_trait;
use bastion_core::{RequestId, Timestamp};

use crate::StoreError;

/// Leases: one holder at a time per key across every instance (e.g. one exec run per user).
///
/// A lease is live until its expiry; an expired lease still stored (DynamoDB deletes by TTL
/// late, moto never) counts as free, decided in the write's condition, never by TTL deletion.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes lease `key` for `holder` until `now + ttl_secs` when no live lease is stored:
    /// none, or one whose expiry is at or before `now`. Exactly one of several concurrent
    /// callers gets `true`.
    async fn acquire_lease(
        &self,
        key: &str,
        holder: &RequestId,
        now: Timestamp,
        ttl_secs: i64,
    ) -> Result<bool, StoreError>;
    /// Drops `holder`'s lease; false when the lease is missing or someone else's (it expired
    /// and was taken over).
    async fn release_lease(&self, key: &str, holder: &RequestId) -> Result<bool, StoreError>;
}
