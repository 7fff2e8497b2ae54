//! Storage ports, one trait per capability, and the two adapters behind them.
//!
//! `sqlite` is the embedded local default (behind the `sqlite` feature, so Lambda binaries
//! link no SQLite); `dynamodb` is the production single table. Both are held to the same
//! behaviour by the conformance suite in `conformance`.

mod accounts;
mod api_keys;
mod audit;
mod billing;
mod billing_order;
pub mod chat;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod counters;
mod deliveries;
pub mod dynamodb;
mod keys;
pub mod kms;
mod leases;
mod mfa;
mod one_time;
mod recovery;
pub mod sealed;
mod sealed_mfa;
mod sessions;
#[cfg(feature = "sqlite")]
pub mod sqlite;
mod users;

pub use accounts::*;
pub use api_keys::*;
pub use audit::*;
pub use billing::*;
pub use counters::*;
pub use deliveries::*;
pub use dynamodb::DynamoStore;
pub use leases::*;
pub use mfa::*;
pub use one_time::*;
pub use recovery::*;
pub use sessions::*;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use users::*;

pub use chat::{
    AppendError, ConversationId, ConversationRecord, ConversationStore, CreditStore, Debit,
    MessageRecord, MessageRole, TurnWrite,
};

use std::sync::Arc;

/// A failure of the store itself. Callers map every variant to 503 (fail closed), except
/// where a port returns a more specific outcome type.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
}

/// One page of a newest-first listing; `next_cursor` is opaque to callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
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
    pub leases: Arc<dyn LeaseStore>,
    pub recovery: Arc<dyn RecoveryStore>,
    pub mfa: Arc<dyn MfaStore>,
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
            + LeaseStore
            + RecoveryStore
            + MfaStore
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
            billing: adapter.clone(),
            leases: adapter.clone(),
            recovery: adapter.clone(),
            mfa: adapter,
        }
    }
}
