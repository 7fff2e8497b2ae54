//! Removing a deleted account's workspace: every file, old version and delete marker under
//! the user's owner name. In Lambda the table's stream brings the profile's removal here
//! (`stream`); locally the auth router calls [`purge_user`] through its account-files port.
//!
//! A purge takes the user's exec lease first, so it never interleaves with a run's write-back
//! or a file change already past authentication; it refuses while the profile still exists, so
//! an event that is no account deletion removes nothing; and it is idempotent, so a retried
//! event is harmless. Log lines carry the user id (never the email) for on-call.

pub mod stream;

use std::time::Duration;

use bastion_core::UserId;
use bastion_http::account_files::{AccountFiles, AccountFilesError, PurgeFuture};

use crate::ExecState;
use crate::lease::Lease;
use crate::workspace::WorkspaceError;

/// How long one purge waits for a run or file change to release the user's lease: a run's
/// lease lasts at most 126 s, so a few retries of the event outlast any live one.
const LEASE_ATTEMPTS: u32 = 100;
const LEASE_PAUSE: Duration = Duration::from_millis(200);
/// The purge's own lease: ample for listing and deleting a workspace at its quota.
const PURGE_LEASE_SECS: i64 = 60;
/// How long the stream's purge keeps the lease once done: longer than a file change waits for
/// it, so a request authenticated just before the account went, and waiting for the lease,
/// gives up (409) instead of writing a file after the purge.
pub(crate) const IN_FLIGHT_TAIL: Duration = Duration::from_secs(4);

#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error("the user's exec lease stayed taken (a run or file change in progress)")]
    Busy,
    #[error("the store could not be asked: {0}")]
    Store(#[from] bastion_store::StoreError),
    #[error("the user's lease could not be taken: {0}")]
    Lease(String),
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
}

/// What a purge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purged {
    /// The workspace is gone; this many stored entries (files, versions, markers) went.
    Removed(u64),
    /// The account still exists: nothing was removed.
    AccountExists,
}

/// Removes the workspace of `user`, whose account has been deleted, then keeps the user's
/// lease for `tail` (see [`IN_FLIGHT_TAIL`]). Logged either way.
pub async fn purge_user(
    state: &ExecState,
    user: &UserId,
    tail: Duration,
) -> Result<Purged, PurgeError> {
    let result = purge_under_lease(state, user, tail).await;
    match &result {
        Ok(Purged::Removed(removed)) => tracing::info!(
            event = "workspace_purged",
            user_id = %user,
            removed,
            "deleted account's exec workspace purged"
        ),
        Ok(Purged::AccountExists) => tracing::warn!(
            event = "workspace_purge_refused",
            user_id = %user,
            "workspace purge asked for an account that still exists; nothing removed"
        ),
        Err(e) => tracing::error!(
            event = "workspace_purge_failed",
            user_id = %user,
            error = %e,
            "deleted account's exec workspace could not be purged"
        ),
    }
    result
}

async fn purge_under_lease(
    state: &ExecState,
    user: &UserId,
    tail: Duration,
) -> Result<Purged, PurgeError> {
    if state.edge.stores.users.get_user(user).await?.is_some() {
        return Ok(Purged::AccountExists);
    }
    let lease = take_lease(state, user).await?;
    let owner = state.inner.sandboxes.name_for(user);
    // This instance's kept copy goes too (another instance's copy is memory only, handed to
    // no one but this owner, who can no longer sign in, and dropped at its next run).
    drop(state.inner.sandboxes.take_cached(&owner));
    let removed = state.inner.workspaces.purge(&owner).await;
    if removed.is_ok() {
        tokio::time::sleep(tail).await;
    }
    lease.release(state).await;
    Ok(Purged::Removed(removed?))
}

async fn take_lease(state: &ExecState, user: &UserId) -> Result<Lease, PurgeError> {
    for attempt in 0..LEASE_ATTEMPTS {
        match Lease::try_take(state, user, PURGE_LEASE_SECS).await {
            Ok(Some(lease)) => return Ok(lease),
            Ok(None) => {}
            Err(e) => {
                return Err(PurgeError::Lease(
                    e.cause().unwrap_or(e.message()).to_owned(),
                ));
            }
        }
        if attempt + 1 < LEASE_ATTEMPTS {
            tokio::time::sleep(LEASE_PAUSE).await;
        }
    }
    Err(PurgeError::Busy)
}

/// The auth router's account-files port where exec runs in the same process (bastion-local):
/// the purge runs before `DELETE /auth/account` answers, without the in-flight tail (a local
/// request in flight at that moment can still write a file; see SECURITY.md).
pub struct InProcess(pub ExecState);

impl AccountFiles for InProcess {
    fn purge<'a>(&'a self, user: &'a UserId) -> PurgeFuture<'a> {
        Box::pin(async move {
            match purge_user(&self.0, user, Duration::ZERO).await {
                Ok(Purged::Removed(_)) => Ok(()),
                // Called after the delete: a profile still there is a race with nothing to
                // remove yet, and so a failure, not a success.
                Ok(Purged::AccountExists) => {
                    Err(AccountFilesError("the account still exists".to_owned()))
                }
                Err(e) => Err(AccountFilesError(e.to_string())),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::{FILE_ATTEMPTS, RETRY_PAUSE};

    #[test]
    fn the_stream_purge_keeps_the_lease_longer_than_a_file_change_waits_for_it() {
        assert!(IN_FLIGHT_TAIL > RETRY_PAUSE * FILE_ATTEMPTS);
    }
}
