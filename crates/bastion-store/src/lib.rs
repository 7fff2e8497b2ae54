//! Storage ports, one trait per capability, and the two adapters behind them.
//!
//! `sqlite` is the embedded local default (behind the `sqlite` feature, so Lambda binaries
//! link no SQLite); `dynamodb` is the production single table. Both are held to the same
//! behaviour by the conformance suite in `conformance`.

mod billing_order;
pub mod chat;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod dynamodb;
mod keys;
pub mod kms;
pub mod sealed;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use dynamodb::DynamoStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

pub use chat::{
    AppendError, ConversationId, ConversationRecord, ConversationStore, CreditStore, Debit,
    MessageRecord, MessageRole, TurnWrite,
};

use std::sync::Arc;

use async_trait::async_trait;
use bastion_core::audit::AuditEvent;
use bastion_core::billing::{BillingRecord, BillingUpdate, StripeCustomerId};
use bastion_core::crypto::TokenHash;
use bastion_core::{
    ApiKeyId, DisplayName, Email, Plan, RequestId, Role, Scope, SessionId, Timestamp, UserId,
};

/// A failure of the store itself. Callers map every variant to 503 (fail closed), except
/// where a port returns a more specific outcome type.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
}

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: UserId,
    pub email: Email,
    pub display_name: Option<DisplayName>,
    /// A PHC string (Argon2id) or a `legacy$<salt>$<hex>` string for migrated accounts.
    pub password_hash: String,
    pub roles: Vec<Role>,
    pub created_at: Timestamp,
    pub disabled: bool,
    /// Advanced by every `revoke_all_sessions`; device tokens carry the value they were issued
    /// under, so revoking all sessions revokes them too. New accounts start at 0.
    pub session_epoch: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("email already registered")]
    EmailTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates the profile and the email-uniqueness guard atomically.
    async fn create_user(&self, user: &UserRecord) -> Result<(), CreateUserError>;
    async fn get_user(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError>;
    async fn find_user_by_email(&self, email: &Email) -> Result<Option<UserRecord>, StoreError>;
    /// Replaces the password hash if it is still `expected` (the one the caller checked: a
    /// verified password, or `""` for an account without one); returns false, changing
    /// nothing, when the user does not exist or its hash changed meanwhile.
    async fn set_password_hash(
        &self,
        id: &UserId,
        expected: &str,
        hash: &str,
    ) -> Result<bool, StoreError>;
    /// Removes the profile, the email guard and every session of the user (audit entries stay).
    async fn delete_user(&self, id: &UserId) -> Result<(), StoreError>;
}

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

/// Both fixed-window counts the sliding-window estimate needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCounts {
    /// The current window's count including this hit.
    pub current: u64,
    pub previous: u64,
}

#[async_trait]
pub trait CounterStore: Send + Sync {
    /// Atomically adds one to the counter of `key` for window `window` and returns it with the
    /// previous window's count. Counters carry a `ttl` of `expires_at`.
    async fn hit(
        &self,
        key: &str,
        window: i64,
        expires_at: Timestamp,
    ) -> Result<WindowCounts, StoreError>;
}

/// One page of a newest-first listing; `next_cursor` is opaque to callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends the event with `ttl` = `event.expires_at()`.
    async fn append(&self, event: &AuditEvent) -> Result<(), StoreError>;
    /// The user's events newest first, skipping ones expired at `now`. A malformed cursor is
    /// `Err(StoreError::Corrupt)`-free: it yields `Ok(None)`.
    async fn list_for_user(
        &self,
        user: &UserId,
        cursor: Option<&str>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Option<Page<AuditEvent>>, StoreError>;
}

/// Events of every user on one UTC day, for administrators.
#[async_trait]
pub trait AuditDayStore: Send + Sync {
    /// Events whose `at` falls on the UTC day containing `day`, newest first, skipping ones
    /// expired at `now`. A malformed cursor yields `Ok(None)`.
    async fn list_for_day(
        &self,
        day: Timestamp,
        cursor: Option<&str>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Option<Page<AuditEvent>>, StoreError>;
}

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

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("email already registered")]
    EmailTaken,
    #[error("external identity already linked to an account")]
    IdentityTaken,
    #[error("account does not exist")]
    UserGone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// External identities (Google `sub`), roles and the disabled flag of accounts.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// The account linked to a Google subject.
    async fn find_user_by_google(&self, sub: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Creates the account, its email guard and the Google link atomically.
    async fn create_google_user(&self, user: &UserRecord, sub: &str) -> Result<(), LinkError>;
    /// Links a Google subject to an existing account (at most one subject per account).
    async fn link_google(&self, user: &UserId, sub: &str) -> Result<(), LinkError>;
    /// Removes the account's Google link; false when it had none.
    async fn unlink_google(&self, user: &UserId) -> Result<bool, StoreError>;
    /// Replaces the roles; false when the user does not exist.
    async fn set_roles(&self, user: &UserId, roles: &[Role]) -> Result<bool, StoreError>;
    /// Sets the disabled flag; false when the user does not exist.
    async fn set_disabled(&self, user: &UserId, disabled: bool) -> Result<bool, StoreError>;
}

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

/// What linking a Stripe customer to a user did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkOutcome {
    /// The customer now points at the user (also when it already did).
    Linked,
    /// The customer belongs to another user; nothing changed.
    CustomerTaken,
}

/// What applying a billing update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Written; the state before (if any) and after.
    Applied {
        before: Option<BillingRecord>,
        after: BillingRecord,
    },
    /// A newer event already wrote the state; nothing changed.
    Stale,
}

#[async_trait]
pub trait BillingStore: Send + Sync {
    /// Points `customer` at `user` and records it on the user's billing state, atomically.
    async fn link_customer(
        &self,
        user: &UserId,
        customer: &StripeCustomerId,
    ) -> Result<LinkOutcome, StoreError>;
    /// The user a customer was linked to.
    async fn user_for_customer(
        &self,
        customer: &StripeCustomerId,
    ) -> Result<Option<UserId>, StoreError>;
    /// Applies `update` in one conditional write unless the stored state was written by an
    /// event with a later `created`; equal `created` applies.
    async fn apply_billing(
        &self,
        user: &UserId,
        update: &BillingUpdate,
    ) -> Result<ApplyOutcome, StoreError>;
    /// The user's billing state; one read.
    async fn billing_of(&self, user: &UserId) -> Result<Option<BillingRecord>, StoreError>;
    /// The user's plan at `now`: `Free` when nothing is recorded. One read.
    async fn plan_of(&self, user: &UserId, now: Timestamp) -> Result<Plan, StoreError> {
        Ok(self
            .billing_of(user)
            .await?
            .map_or(Plan::Free, |r| r.plan_at(now)))
    }
}

/// Every port, as one cloneable handle for the functions' state.
#[derive(Clone)]
pub struct Stores {
    pub users: Arc<dyn UserStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub counters: Arc<dyn CounterStore>,
    pub audit: Arc<dyn AuditStore>,
    pub audit_days: Arc<dyn AuditDayStore>,
    pub one_time: Arc<dyn OneTimeStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub api_keys: Arc<dyn ApiKeyStore>,
    pub conversations: Arc<dyn ConversationStore>,
    pub credits: Arc<dyn CreditStore>,
    pub deliveries: Arc<dyn DeliveryStore>,
    pub billing: Arc<dyn BillingStore>,
}

impl Stores {
    /// One adapter that implements every port.
    pub fn from_adapter<A>(adapter: Arc<A>) -> Self
    where
        A: UserStore
            + SessionStore
            + CounterStore
            + AuditStore
            + AuditDayStore
            + OneTimeStore
            + AccountStore
            + ApiKeyStore
            + ConversationStore
            + CreditStore
            + DeliveryStore
            + BillingStore
            + 'static,
    {
        Self {
            users: adapter.clone(),
            sessions: adapter.clone(),
            counters: adapter.clone(),
            audit: adapter.clone(),
            audit_days: adapter.clone(),
            one_time: adapter.clone(),
            accounts: adapter.clone(),
            api_keys: adapter.clone(),
            conversations: adapter.clone(),
            credits: adapter.clone(),
            deliveries: adapter.clone(),
            billing: adapter,
        }
    }
}
