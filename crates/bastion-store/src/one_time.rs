//! Single-use secrets (OAuth states, login codes), consumed at most once.

use async_trait::async_trait;
use bastion_core::Timestamp;
use bastion_core::crypto::TokenHash;

use crate::StoreError;

/// Single-use secrets (OAuth states, login codes), stored under the hash of the secret.
#[async_trait]
pub trait OneTimeStore: Send + Sync {
    /// Stores `payload` under `purpose`/`hash` until `expires_at` (also the DynamoDB `ttl`).
    async fn put_one_time(
        &self,
        purpose: &str,
        hash: &TokenHash,
        payload: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Atomically removes the record and returns its payload, unless missing or expired at
    /// `now`. Of several concurrent callers with one hash, at most one gets `Some`.
    async fn take_one_time(
        &self,
        purpose: &str,
        hash: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<String>, StoreError>;
}
