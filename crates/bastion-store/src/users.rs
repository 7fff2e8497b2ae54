//! Accounts: creation, lookup by id and by email (one read for login), profile and password updates.

use async_trait::async_trait;
use bastion_core::{DisplayName, Email, Role, Timestamp, UserId};

use crate::StoreError;

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
    /// The address was shown to reach the user (a verification link, or Google said so).
    pub email_verified: bool,
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
    /// Marks the address verified if the account still has `email`; false (nothing written)
    /// when the account is gone or its address is another.
    async fn set_email_verified(&self, id: &UserId, email: &Email) -> Result<bool, StoreError>;
    /// Removes the profile, the email guard, every session, the second factor and any reset
    /// token of the user (audit entries stay).
    async fn delete_user(&self, id: &UserId) -> Result<(), StoreError>;
}
