//! External identities, roles and the disabled flag of accounts.

use async_trait::async_trait;
use bastion_core::{Role, UserId};

use crate::StoreError;
use crate::users::UserRecord;

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
