//! API keys: stored as hashes, capped per user by the write itself.

use async_trait::async_trait;
use bastion_core::crypto::TokenHash;
use bastion_core::{ApiKeyId, Scope, Timestamp, UserId};

use crate::StoreError;

/// An API key as stored: never the key itself, only its SHA-256 and a display prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub user_id: UserId,
    pub name: String,
    pub hash: TokenHash,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: Timestamp,
    /// Also the DynamoDB `ttl`; reads treat a passed value as absent.
    pub expires_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// What storing a new API key did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMint {
    Created,
    /// The user already holds the maximum of live keys; nothing was written.
    LimitReached,
}

#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Stores the key unless its user already holds `max_live` keys that are neither revoked
    /// nor expired at `key.created_at`. One atomic decision: of concurrent mints, exactly as
    /// many succeed as there were free places.
    async fn create_api_key(
        &self,
        key: &ApiKeyRecord,
        max_live: u32,
    ) -> Result<KeyMint, StoreError>;
    /// The key with this hash, unless revoked or expired at `now` (`Timestamp(i64::MIN)` reads
    /// it whatever its expiry, for callers that decide expiry themselves).
    async fn find_api_key(
        &self,
        hash: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<ApiKeyRecord>, StoreError>;
    /// The user's live keys, newest first.
    async fn list_api_keys(
        &self,
        user: &UserId,
        now: Timestamp,
    ) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// Deletes the user's key; false when the user has no such key.
    async fn revoke_api_key(&self, user: &UserId, id: &ApiKeyId) -> Result<bool, StoreError>;
    /// Deletes every key of the user; returns how many.
    async fn revoke_all_api_keys(&self, user: &UserId) -> Result<u32, StoreError>;
    /// Sets `last_used_at` to `now` unless it is already within `min_interval_secs` of `now`
    /// (a conditional write, so concurrent callers write once); returns whether it wrote.
    async fn touch_api_key(
        &self,
        key: &ApiKeyRecord,
        now: Timestamp,
        min_interval_secs: i64,
    ) -> Result<bool, StoreError>;
}
