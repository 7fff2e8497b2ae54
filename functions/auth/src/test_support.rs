//! Fixtures for the crate's unit tests: an account and a session as the store returns them.

use bastion_core::crypto::TokenHash;
use bastion_core::{Email, Role, SessionId, Timestamp, UserId};
use bastion_store::{SessionRecord, UserRecord};

/// "Now" in every unit test.
pub const NOW: Timestamp = Timestamp(1_700_000_000);

/// A password-less account created a day before `NOW`.
pub fn user(disabled: bool) -> UserRecord {
    UserRecord {
        id: UserId::generate(),
        email: Email::parse("ada@example.com").unwrap(),
        display_name: None,
        password_hash: String::new(),
        roles: vec![Role::User],
        created_at: NOW.plus_secs(-86_400),
        disabled,
        session_epoch: 0,
        email_verified: false,
    }
}

/// A session of `user` whose current refresh token is `current`, last used `idle_for` seconds
/// before `NOW`.
pub fn session(user: &UserRecord, current: &str, idle_for: i64) -> SessionRecord {
    SessionRecord {
        id: SessionId::generate(),
        user_id: user.id.clone(),
        refresh_hash: TokenHash::of(current),
        created_at: NOW.plus_secs(-86_400),
        last_used_at: NOW.plus_secs(-idle_for),
        expires_at: NOW.plus_secs(86_400),
        ip: "192.0.2.1".into(),
        user_agent: "test".into(),
    }
}
