//! Bastion's core: validated domain types, crypto, rate-limit policy, audit events and the Clock.
//!
//! Nothing here talks to AWS, Lambda or the network, so every rule can be unit-tested alone.

pub mod audit;
pub mod billing;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod envelope;
pub mod error;
pub mod ids;
pub mod metrics;
pub mod owner;
pub mod random;
pub mod rate_limit;
pub mod tls;
pub mod tools;
pub mod types;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use error::ValidationError;
pub use ids::{ApiKeyId, AuditId, RequestId, SessionId, UserId};
pub use owner::{Owner, Plan};
pub use types::{DisplayName, Email, Password, Role, Scope};
