//! Rate-limit counters: both windows of a sliding-window estimate in one atomic update.

use async_trait::async_trait;
use bastion_core::Timestamp;

use crate::StoreError;

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
