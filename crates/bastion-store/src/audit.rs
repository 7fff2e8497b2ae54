//! The audit log: per-user listings and the per-day listing for administrators.

use async_trait::async_trait;
use bastion_core::audit::AuditEvent;
use bastion_core::{Timestamp, UserId};

use crate::{Page, StoreError};

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
