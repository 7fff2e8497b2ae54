//! Registration, the account itself, password change, deletion and legacy-hash migration.

use bastion_core::crypto::{hmac_sha256, password::legacy_record};
use bastion_core::{Email, Role, UserId};
use bastion_store::UserRecord;
use http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{LEGACY_KEY, PASSWORD, START, TestApp};

#[tokio::test]
async fn register_returns_201_with_user_and_tokens() {
    let app = TestApp::new().await;
    let r = app
        .post(
            "/auth/register",
            json!({"email": " New@Example.com ", "password": PASSWORD, "display_name": "  Ada "}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let user = &r.body["user"];
    assert_eq!(user["email"], json!("new@example.com"));
    assert_eq!(user["display_name"], json!("Ada"));
    assert_eq!(user["created_at"], json!("2027-01-15T08:00:00Z"));
    assert_eq!(user["id"].as_str().unwrap().len(), 32);
    assert_eq!(user["email_verified"], json!(false));
    assert_eq!(user.as_object().unwrap().len(), 5);
    assert_eq!(r.body["token_type"], json!("Bearer"));
    assert_eq!(r.body["expires_in"], json!(900));
    assert_eq!(
        app.get("/auth/me", r.body["access_token"].as_str().unwrap())
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn register_with_a_taken_email_returns_409_in_any_case() {
    let app = TestApp::new().await;
    app.signed_up("dup@example.com").await;
    app.seen_from("192.0.2.9")
        .register("DUP@example.com")
        .await
        .assert_error(
            409,
            "email_taken",
            "an account with this email already exists",
        );
}

#[tokio::test]
async fn register_rejects_invalid_emails_with_400() {
    let app = TestApp::new().await;
    let r = app.register("not-an-email").await;
    r.assert_error(400, "invalid_email", "email must contain exactly one @");
    let r = app.seen_from("192.0.2.2").register("a b@example.com").await;
    r.assert_error(
        400,
        "invalid_email",
        "email contains whitespace or control characters",
    );
}

#[tokio::test]
async fn register_rejects_weak_short_and_overlong_passwords_with_400() {
    let app = TestApp::new().await;
    let weak = app
        .post(
            "/auth/register",
            json!({"email": "w@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert_eq!(weak.code(), "weak_password");
    assert!(
        weak.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("password is too easy to guess")
    );
    let app = app.seen_from("192.0.2.3");
    app.post(
        "/auth/register",
        json!({"email": "w@example.com", "password": "Tr0ub4!"}),
    )
    .await
    .assert_error(
        400,
        "invalid_password",
        "password must be at least 8 characters",
    );
    app.post(
        "/auth/register",
        json!({"email": "w@example.com", "password": "x".repeat(129)}),
    )
    .await
    .assert_error(
        400,
        "invalid_password",
        "password must be at most 128 characters",
    );
}

#[tokio::test]
async fn register_rejects_a_password_made_of_the_users_own_email() {
    let app = TestApp::new().await;
    let r = app
        .post(
            "/auth/register",
            json!({"email": "jonathan.smithers@example.com", "password": "jonathan.smithers"}),
        )
        .await;
    assert_eq!(r.code(), "weak_password");
}

#[tokio::test]
async fn register_rejects_control_characters_in_display_name() {
    let app = TestApp::new().await;
    app.post(
        "/auth/register",
        json!({"email": "n@example.com", "password": PASSWORD, "display_name": "a\u{7}b"}),
    )
    .await
    .assert_error(
        400,
        "invalid_display_name",
        "display name must not contain control characters",
    );
}

#[tokio::test]
async fn register_returns_429_on_the_fourth_attempt_from_one_ip() {
    let app = TestApp::new().await;
    for i in 0..3 {
        assert_eq!(
            app.register(&format!("r{i}@example.com")).await.status,
            StatusCode::CREATED
        );
    }
    let r = app.register("r4@example.com").await;
    r.assert_error(429, "rate_limited", "too many requests; retry later");
    assert_eq!(r.header("ratelimit-limit"), Some("3"));
    assert!(r.header("retry-after").is_some());
}

#[tokio::test]
async fn me_returns_the_user_with_roles() {
    let app = TestApp::new().await;
    let s = app.signed_up("me@example.com").await;
    let r = app.get("/auth/me", &s.access).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        json!({"user": {"id": s.user_id, "email": "me@example.com", "display_name": null,
                        "created_at": "2027-01-15T08:00:00Z", "roles": ["user"],
                        "email_verified": false,
                        "mfa": {"totp": false, "recovery_codes_left": 0}}})
    );
}

#[tokio::test]
async fn password_change_revokes_every_other_session_and_swaps_the_password() {
    let app = TestApp::new().await;
    let other = app.signed_up("pw@example.com").await;
    let current = app.signed_in("pw@example.com").await;
    let new_password = "a wholly different passphrase 77";
    let r = app
        .call(
            Method::POST,
            "/auth/password",
            Some(&current.access),
            Some(json!({"current_password": PASSWORD, "new_password": new_password})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        app.get("/auth/me", &current.access).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/auth/me", &other.access).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.refresh(&other.refresh).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("pw@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("pw@example.com", new_password).await.status,
        StatusCode::OK
    );
    assert!(
        app.audit_kinds(&current.user_id)
            .await
            .contains(&"password_changed".to_owned())
    );
}

#[tokio::test]
async fn password_change_with_the_wrong_current_password_returns_401_and_changes_nothing() {
    let app = TestApp::new().await;
    let s = app.signed_up("pw2@example.com").await;
    let r = app
        .call(
            Method::POST,
            "/auth/password",
            Some(&s.access),
            Some(json!({"current_password": "not my password", "new_password": "a wholly different passphrase 77"})),
        )
        .await;
    r.assert_error(401, "invalid_password", "password is incorrect");
    assert_eq!(
        app.login("pw2@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn account_deletion_removes_the_user_and_keeps_the_audit_trail() {
    let app = TestApp::new().await;
    let s = app.signed_up("bye@example.com").await;
    let wrong = app
        .call(
            Method::DELETE,
            "/auth/account",
            Some(&s.access),
            Some(json!({"password": "not my password"})),
        )
        .await;
    wrong.assert_error(401, "invalid_password", "password is incorrect");
    let r = app
        .call(
            Method::DELETE,
            "/auth/account",
            Some(&s.access),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        app.get("/auth/me", &s.access).await.status,
        StatusCode::UNAUTHORIZED
    );
    app.login("bye@example.com", PASSWORD).await.assert_error(
        401,
        "invalid_credentials",
        "email or password is incorrect",
    );
    let id = UserId::parse(&s.user_id).unwrap();
    assert_eq!(app.stores.users.get_user(&id).await.unwrap(), None);
    // The refused attempt is audited as a failed deletion, before the real one.
    assert_eq!(
        app.audit_kinds(&s.user_id).await,
        vec!["account_deleted", "account_deleted", "register"]
    );
    // The email is free again.
    assert_eq!(
        app.seen_from("192.0.2.8")
            .register("bye@example.com")
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn legacy_hmac_users_log_in_once_and_are_rehashed_to_argon2id() {
    let app = TestApp::new().await;
    let id = UserId::generate();
    let digest = hex_of(&hmac_sha256(
        LEGACY_KEY,
        format!("{PASSWORD}pepper-salt").as_bytes(),
    ));
    let user = UserRecord {
        id: id.clone(),
        email: Email::parse("old@example.com").unwrap(),
        display_name: None,
        password_hash: legacy_record("pepper-salt", &digest),
        roles: vec![Role::User],
        created_at: START,
        disabled: false,
        session_epoch: 0,
        email_verified: false,
    };
    app.stores.users.create_user(&user).await.unwrap();
    assert_eq!(
        app.login("old@example.com", "wrong wrong wrong")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("old@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
    let stored = app
        .stores
        .users
        .get_user(&id)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1,keyid=AQ$"),
        "{stored}"
    );
    assert_eq!(
        app.login("old@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
