//! The port through which the auth router has a deleted account's files elsewhere (exec's
//! workspace) removed; here so that auth and exec share it without depending on each other.
//!
//! In Lambda the port does nothing: exec purges from the table's stream when the profile goes,
//! so auth links no S3 client. `bastion-local`, with no stream, gives the auth state a port that
//! calls exec's purge directly, awaited before `DELETE /auth/account` answers.

use std::future::Future;
use std::pin::Pin;

use bastion_core::UserId;

#[derive(Debug, thiserror::Error)]
#[error("the deleted account's files could not be removed: {0}")]
pub struct AccountFilesError(pub String);

pub type PurgeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), AccountFilesError>> + Send + 'a>>;

pub trait AccountFiles: Send + Sync {
    /// Removes every file kept for `user`, whose account is already deleted. Idempotent.
    fn purge<'a>(&'a self, user: &'a UserId) -> PurgeFuture<'a>;
}

/// Lambda's port: the table's stream brings the deletion to exec instead.
pub struct ByStream;

impl AccountFiles for ByStream {
    fn purge<'a>(&'a self, _user: &'a UserId) -> PurgeFuture<'a> {
        Box::pin(std::future::ready(Ok(())))
    }
}
