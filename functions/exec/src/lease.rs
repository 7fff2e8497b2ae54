//! The per-user exec lease (`LEASE#exec#<user>` in the table): one run or file change at a
//! time per user across every instance. Taken with a conditional write that also accepts an
//! expired lease, and released after the work on every exit path.

use std::time::Duration;

use bastion_core::{RequestId, UserId};
use bastion_http::{ApiError, ErrorKind};

use crate::ExecState;

/// Attempts, `RETRY_PAUSE` apart, a file change makes before answering `workspace_busy`.
pub(crate) const FILE_ATTEMPTS: u32 = 60;
pub(crate) const RETRY_PAUSE: Duration = Duration::from_millis(50);

pub struct Lease {
    key: String,
    holder: RequestId,
}

fn key(user: &UserId) -> String {
    format!("exec#{}", user.as_str())
}

impl Lease {
    /// Takes the user's lease for `ttl_secs`; `None` when another holder has a live one.
    pub async fn try_take(
        state: &ExecState,
        user: &UserId,
        ttl_secs: i64,
    ) -> Result<Option<Self>, ApiError> {
        let lease = Self {
            key: key(user),
            holder: RequestId::generate(),
        };
        let taken = state
            .edge
            .stores
            .leases
            .acquire_lease(&lease.key, &lease.holder, state.edge.clock.now(), ttl_secs)
            .await?;
        Ok(taken.then_some(lease))
    }

    /// For file changes, which are short: waits up to 3 s for a run or another change
    /// to finish, then answers 409 `workspace_busy`.
    pub async fn take_for_files(state: &ExecState, user: &UserId) -> Result<Self, ApiError> {
        for attempt in 0..FILE_ATTEMPTS {
            if let Some(lease) = Self::try_take(state, user, FILE_LEASE_SECS).await? {
                return Ok(lease);
            }
            if attempt + 1 < FILE_ATTEMPTS {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
        Err(ApiError::new(
            ErrorKind::Conflict,
            "a run or another change of your files is in progress; retry shortly",
        )
        .with_code("workspace_busy"))
    }

    /// Releases the lease; a failure is logged, and the lease then ends at its expiry.
    pub async fn release(self, state: &ExecState) {
        match state
            .edge
            .stores
            .leases
            .release_lease(&self.key, &self.holder)
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!("exec lease had expired and been taken over"),
            Err(e) => tracing::error!(error = %e, "releasing the exec lease failed"),
        }
    }
}

/// A file change's lease lasts this long if its instance dies holding it.
pub const FILE_LEASE_SECS: i64 = 30;

/// A run's lease: the longest run plus the time the function may spend downloading and
/// writing back (the Lambda timeout is the run timeout plus 65 s), so a live run always holds
/// it and a crashed instance's lease frees itself soon after.
pub fn run_lease_secs(timeout: Duration) -> i64 {
    i64::try_from(timeout.as_secs()).unwrap_or(60) + 66
}
