//! Writes of the password hash that race a password change (issue 13 item 10): each is
//! conditional on the hash its request checked, so the change is never undone.

use std::sync::Arc;

use async_trait::async_trait;
use bastion_core::crypto::{hmac_sha256, password::legacy_record};
use bastion_core::{Email, Role, UserId};
use bastion_store::{CreateUserError, StoreError, UserRecord, UserStore};
use http::StatusCode;

use crate::helpers::{LEGACY_KEY, PASSWORD, START, TestApp};

/// The victim's own change, as `POST /auth/password` stores it.
const VICTIMS_NEW_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$dmljdGltc2FsdA$dmljdGltaGFzaA";

/// A user store where the victim's password change lands just before every other write of a
/// password hash: between a login's verification of the old password and its rehash.
struct ChangedMidLogin(Arc<dyn UserStore>);

#[async_trait]
impl UserStore for ChangedMidLogin {
    async fn create_user(&self, user: &UserRecord) -> Result<(), CreateUserError> {
        self.0.create_user(user).await
    }
    async fn get_user(&self, id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        self.0.get_user(id).await
    }
    async fn find_user_by_email(&self, email: &Email) -> Result<Option<UserRecord>, StoreError> {
        self.0.find_user_by_email(email).await
    }
    async fn set_password_hash(
        &self,
        id: &UserId,
        expected: &str,
        hash: &str,
    ) -> Result<bool, StoreError> {
        assert!(
            self.0
                .set_password_hash(id, expected, VICTIMS_NEW_HASH)
                .await?
        );
        self.0.set_password_hash(id, expected, hash).await
    }
    async fn delete_user(&self, id: &UserId) -> Result<(), StoreError> {
        self.0.delete_user(id).await
    }
}

#[tokio::test]
async fn a_login_rehashing_the_old_password_never_undoes_a_password_change_that_raced_it() {
    let app = TestApp::new().await;
    let id = UserId::generate();
    let digest: String = hmac_sha256(LEGACY_KEY, format!("{PASSWORD}race-salt").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let user = UserRecord {
        id: id.clone(),
        email: Email::parse("raced@example.com").unwrap(),
        display_name: None,
        password_hash: legacy_record("race-salt", &digest),
        roles: vec![Role::User],
        created_at: START,
        disabled: false,
        session_epoch: 0,
    };
    app.stores.users.create_user(&user).await.unwrap();
    let racing = app.replacing(|st| st.users = Arc::new(ChangedMidLogin(st.users.clone())));

    // The old password verified, but the account changed under the login: refused.
    racing
        .login("raced@example.com", PASSWORD)
        .await
        .assert_error(401, "invalid_credentials", "email or password is incorrect");
    let stored = app.stores.users.get_user(&id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash, VICTIMS_NEW_HASH);
    assert_eq!(
        app.login("raced@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
}
