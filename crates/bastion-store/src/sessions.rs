//! Sessions (refresh-token families): creation under the account's session epoch, rotation, revocation.

use async_trait::async_trait;
use bastion_core::crypto::TokenHash;
use bastion_core::{SessionId, Timestamp, UserId};

use crate::StoreError;

/// A login session: one refresh-token family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: SessionId,
    pub user_id: UserId,
    /// Hash of the one refresh token of this family that is still valid.
    pub refresh_hash: TokenHash,
    pub created_at: Timestamp,
    pub last_used_at: Timestamp,
    /// Absolute end of life; also the DynamoDB `ttl`. Reads treat a passed value as absent.
    pub expires_at: Timestamp,
    pub ip: String,
    pub user_agent: String,
}

/// Where a refresh-token hash points: the session it was issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshLookup {
    pub user_id: UserId,
    pub session_id: SessionId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// `old` was current and is now replaced by `new`.
    Rotated,
    /// The session exists but `old` is no longer its current token: a reuse.
    Reused,
    /// The session no longer exists (revoked, deleted or expired).
    SessionGone,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores the session and the lookup for its first refresh token, atomically, only while
    /// the user's `session_epoch` is still `epoch` (the one read with the credentials just
    /// checked); false, writing nothing, when all sessions were revoked since or the user is
    /// gone.
    async fn create_session(&self, session: &SessionRecord, epoch: u64)
    -> Result<bool, StoreError>;
    /// The session, unless missing or past `expires_at` at `now`.
    async fn get_session(
        &self,
        user: &UserId,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<Option<SessionRecord>, StoreError>;
    /// Which session a refresh-token hash was issued for (current or already rotated), unless
    /// the lookup is missing or expired at `now`.
    async fn find_refresh(
        &self,
        hash: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<RefreshLookup>, StoreError>;
    /// Atomically: if the session's current hash is `old`, make it `new`, set `last_used_at`
    /// to `now` and store the lookup for `new` (with the session's expiry). Exactly one of
    /// several concurrent callers with the same `old` gets `Rotated`.
    async fn rotate_refresh(
        &self,
        user: &UserId,
        id: &SessionId,
        old: &TokenHash,
        new: &TokenHash,
        now: Timestamp,
    ) -> Result<RotateOutcome, StoreError>;
    /// Live sessions of the user at `now`, newest first.
    async fn list_sessions(
        &self,
        user: &UserId,
        now: Timestamp,
    ) -> Result<Vec<SessionRecord>, StoreError>;
    /// Deletes the session; returns whether it existed.
    async fn revoke_session(&self, user: &UserId, id: &SessionId) -> Result<bool, StoreError>;
    /// Advances the user's `session_epoch` (on every copy a login reads), then deletes every
    /// session of the user except `keep`; returns how many sessions were deleted.
    async fn revoke_all_sessions(
        &self,
        user: &UserId,
        keep: Option<&SessionId>,
    ) -> Result<u32, StoreError>;
}
