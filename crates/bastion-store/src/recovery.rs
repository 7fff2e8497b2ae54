//! Password-reset tokens: at most one live per account, so a newer request voids older ones.

use async_trait::async_trait;
use bastion_core::crypto::TokenHash;
use bastion_core::{Timestamp, UserId};

use crate::StoreError;

/// Password-reset tokens, stored under the account as the hash of the secret.
#[async_trait]
pub trait RecoveryStore: Send + Sync {
    /// Stores the account's one live reset token until `expires_at` (also the DynamoDB `ttl`),
    /// replacing (and so voiding) any earlier one.
    async fn put_reset(
        &self,
        user: &UserId,
        hash: &TokenHash,
        expires_at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Removes the account's reset token if it is `hash` and unexpired at `now`, returning
    /// whether it was. Of several concurrent callers with one hash, at most one gets `true`; a
    /// wrong hash changes nothing (it cannot burn the real token).
    async fn take_reset(
        &self,
        user: &UserId,
        hash: &TokenHash,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
}
