//! The second factor of an account: one TOTP secret (pending until confirmed), the last time
//! step accepted with it, and the hashes of the unused recovery codes.

use async_trait::async_trait;
use bastion_core::crypto::TokenHash;
use bastion_core::{Timestamp, UserId};

use crate::StoreError;

/// An account's TOTP factor as stored. The secret is sealed at rest by the
/// [`crate::sealed`] decorator; adapters see only the sealed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpRecord {
    /// Random id of this secret: a confirmation names the secret its code was checked against,
    /// so a secret replaced meanwhile is never confirmed by a code for the old one.
    pub id: String,
    /// The base32 secret (sealed at rest).
    pub secret: String,
    pub confirmed: bool,
    /// The last RFC 6238 time step accepted (0: none): a code for this step or an earlier one
    /// is a replay.
    pub last_step: u64,
    /// SHA-256 hashes of the recovery codes not used yet.
    pub recovery_codes: Vec<TokenHash>,
    pub created_at: Timestamp,
}

#[async_trait]
pub trait MfaStore: Send + Sync {
    async fn get_totp(&self, user: &UserId) -> Result<Option<TotpRecord>, StoreError>;
    /// Stores `record` (unconfirmed, no codes) as the account's pending secret, replacing a
    /// pending one; returns false, writing nothing, when a confirmed secret exists.
    async fn put_pending_totp(
        &self,
        user: &UserId,
        record: &TotpRecord,
    ) -> Result<bool, StoreError>;
    /// Turns on the pending secret `id` with `step` accepted and `codes` as its recovery codes;
    /// false (nothing written) when there is no such pending secret or it is confirmed already.
    async fn confirm_totp(
        &self,
        user: &UserId,
        id: &str,
        step: u64,
        codes: &[TokenHash],
    ) -> Result<bool, StoreError>;
    /// Records `step` as accepted for the confirmed secret `id` if it is later than the last
    /// accepted step; false otherwise (a replay, or the secret changed). Of concurrent callers
    /// with one step, at most one gets `true`.
    async fn accept_totp_step(
        &self,
        user: &UserId,
        id: &str,
        step: u64,
    ) -> Result<bool, StoreError>;
    /// Removes one unused recovery code of the confirmed secret; false when it is not among
    /// them. Of concurrent callers with one code, at most one gets `true`.
    async fn use_recovery_code(&self, user: &UserId, code: &TokenHash) -> Result<bool, StoreError>;
    /// Removes the account's second factor (pending or confirmed); true when there was one.
    async fn delete_totp(&self, user: &UserId) -> Result<bool, StoreError>;
}
