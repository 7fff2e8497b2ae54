//! Sign-ins racing the owner's recovery (issue 13 item 10): a login's writes (the rehash of
//! the password, the new session) are conditional on what its check read, so a password change
//! or log-out-everywhere that lands in between is never undone or outlived.

use std::sync::Arc;

use async_trait::async_trait;
use bastion_core::crypto::TokenHash;
use bastion_core::crypto::{hmac_sha256, password::legacy_record};
use bastion_core::{Clock as _, Email, Role, SessionId, Timestamp, UserId};
use bastion_store::{
    CreateUserError, RefreshLookup, RotateOutcome, SessionRecord, SessionStore, StoreError,
    UserRecord, UserStore,
};
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
    async fn set_email_verified(&self, id: &UserId, email: &Email) -> Result<bool, StoreError> {
        self.0.set_email_verified(id, email).await
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
        email_verified: false,
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

/// A session store where the owner logs out everywhere just before each new session is
/// written: between a login's password check and its session.
struct LoggedOutMidLogin(Arc<dyn SessionStore>);

#[async_trait]
impl SessionStore for LoggedOutMidLogin {
    async fn create_session(&self, s: &SessionRecord, epoch: u64) -> Result<bool, StoreError> {
        self.0.revoke_all_sessions(&s.user_id, None).await?;
        self.0.create_session(s, epoch).await
    }
    async fn get_session(
        &self,
        user: &UserId,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.0.get_session(user, id, now).await
    }
    async fn find_refresh(
        &self,
        hash: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<RefreshLookup>, StoreError> {
        self.0.find_refresh(hash, now).await
    }
    async fn rotate_refresh(
        &self,
        user: &UserId,
        id: &SessionId,
        old: &TokenHash,
        new: &TokenHash,
        now: Timestamp,
    ) -> Result<RotateOutcome, StoreError> {
        self.0.rotate_refresh(user, id, old, new, now).await
    }
    async fn list_sessions(
        &self,
        user: &UserId,
        now: Timestamp,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        self.0.list_sessions(user, now).await
    }
    async fn revoke_session(&self, user: &UserId, id: &SessionId) -> Result<bool, StoreError> {
        self.0.revoke_session(user, id).await
    }
    async fn revoke_all_sessions(
        &self,
        user: &UserId,
        keep: Option<&SessionId>,
    ) -> Result<u32, StoreError> {
        self.0.revoke_all_sessions(user, keep).await
    }
}

#[tokio::test]
async fn a_login_checked_before_a_log_out_everywhere_gets_no_session_after_it() {
    let app = TestApp::new().await;
    let s = app.signed_up("loggedout@example.com").await;
    let racing = app.replacing(|st| st.sessions = Arc::new(LoggedOutMidLogin(st.sessions.clone())));

    racing
        .login("loggedout@example.com", PASSWORD)
        .await
        .assert_error(
            401,
            "sessions_revoked",
            "the account's sessions were revoked during this sign-in; sign in again",
        );
    let user = UserId::parse(&s.user_id).unwrap();
    let left = app
        .stores
        .sessions
        .list_sessions(&user, app.clock.now())
        .await
        .unwrap();
    assert_eq!(left, vec![]);
    assert!(
        app.audit_kinds(&s.user_id)
            .await
            .contains(&"login_failed".to_owned())
    );
    // Signing in again afterwards works.
    assert_eq!(
        app.login("loggedout@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
}
