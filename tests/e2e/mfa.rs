//! The TOTP second factor end to end on SQLite with the test clock: enrolment, the second
//! sign-in step, replay, drift, recovery codes, the `mfa_token`'s limits, reset and admin
//! removal, and what is stored at rest.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Session, TestApp, TestResponse, base_env};

const INVALID_CODE: &str = "the code is wrong, expired or used already";
const INVALID_MFA_TOKEN: &str = "the sign-in expired or had too many wrong codes; sign in again";
const ADMIN_KEY: &str = "adm_Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1hZG1pbi1r";

/// The code the authenticator shows `steps` time steps from now.
fn code(app: &TestApp, secret: &str, steps: i64) -> String {
    app.totp_code(secret, steps)
}

/// A registered user with TOTP turned on: its session, secret and recovery codes. The clock is
/// moved one step on, so the confirming code is spent and the next one is fresh.
async fn enrolled(app: &TestApp, email: &str) -> (Session, String, Vec<String>) {
    let s = app.signed_up(email).await;
    let r = app
        .call(
            Method::POST,
            "/auth/mfa/totp",
            Some(&s.access),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    let confirm = json!({"code": code(app, &secret, 0)});
    let r = app
        .call(
            Method::POST,
            "/auth/mfa/totp/confirm",
            Some(&s.access),
            Some(confirm),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let codes = r.body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    app.clock.advance(30);
    (s, secret, codes)
}

/// A password login that must stop at the second step: its `mfa_token`.
async fn mfa_token(app: &TestApp, email: &str) -> String {
    let r = app.login(email, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let token = r.body["mfa_token"].as_str().unwrap().to_owned();
    assert_eq!(
        r.body,
        json!({"mfa_required": true, "mfa_token": token, "methods": ["totp", "recovery_code"]})
    );
    token
}

async fn verify(app: &TestApp, body: Value) -> TestResponse {
    app.post("/auth/mfa/verify", body).await
}

#[tokio::test]
async fn with_totp_on_a_login_gives_no_tokens_until_a_code_and_a_code_works_once() {
    let app = TestApp::new().await;
    let (s, secret, codes) = enrolled(&app, "totp@example.com").await;
    assert_eq!(codes.len(), 10);
    let me = app.get("/auth/me", &s.access).await;
    assert_eq!(
        me.body["user"]["mfa"],
        json!({"totp": true, "recovery_codes_left": 10})
    );

    let token = mfa_token(&app, "totp@example.com").await;
    let now = code(&app, &secret, 0);
    let r = verify(&app, json!({"mfa_token": token, "code": now})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["access_token"].is_string() && r.body["refresh_token"].is_string());
    assert_eq!(r.body["user"]["email"], "totp@example.com");

    // The same code again, on a new sign-in: a replay.
    let again = mfa_token(&app, "totp@example.com").await;
    verify(&app, json!({"mfa_token": again, "code": now}))
        .await
        .assert_error(400, "invalid_code", INVALID_CODE);
    // The previous step's code is still inside the drift window but older than the one used.
    verify(
        &app,
        json!({"mfa_token": again, "code": code(&app, &secret, -1)}),
    )
    .await
    .assert_error(400, "invalid_code", INVALID_CODE);
    // The next step's code (a fast clock) is accepted once.
    let r = verify(
        &app,
        json!({"mfa_token": again, "code": code(&app, &secret, 1)}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // A used mfa_token signs in no more, even with a fresh code.
    app.clock.advance(60);
    verify(
        &app,
        json!({"mfa_token": again, "code": code(&app, &secret, 0)}),
    )
    .await
    .assert_error(401, "invalid_mfa_token", INVALID_MFA_TOKEN);
}

#[tokio::test]
async fn codes_two_steps_away_are_refused() {
    let app = TestApp::new().await;
    let (_, secret, _) = enrolled(&app, "drift@example.com").await;
    // One more step on, so the previous step is not the one the confirmation spent.
    app.clock.advance(30);
    let token = mfa_token(&app, "drift@example.com").await;
    for steps in [2, -2] {
        verify(
            &app,
            json!({"mfa_token": token, "code": code(&app, &secret, steps)}),
        )
        .await
        .assert_error(400, "invalid_code", INVALID_CODE);
    }
    let r = verify(
        &app,
        json!({"mfa_token": token, "code": code(&app, &secret, -1)}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn a_recovery_code_signs_in_once() {
    let app = TestApp::new().await;
    let (s, _, codes) = enrolled(&app, "lost-phone@example.com").await;
    let token = mfa_token(&app, "lost-phone@example.com").await;
    let typed = codes[3].to_uppercase().replace('-', " ");
    let r = verify(&app, json!({"mfa_token": token, "recovery_code": typed})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let me = app.get("/auth/me", &s.access).await;
    assert_eq!(
        me.body["user"]["mfa"],
        json!({"totp": true, "recovery_codes_left": 9})
    );

    let token = mfa_token(&app, "lost-phone@example.com").await;
    verify(&app, json!({"mfa_token": token, "recovery_code": codes[3]}))
        .await
        .assert_error(400, "invalid_code", INVALID_CODE);
    let r = verify(&app, json!({"mfa_token": token, "recovery_code": codes[4]})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let kinds = app.audit_kinds(&s.user_id).await;
    assert_eq!(
        &kinds[..4],
        [
            "login_succeeded",
            "recovery_code_used",
            "mfa_failed",
            "login_succeeded"
        ]
    );
}

#[tokio::test]
async fn an_mfa_token_dies_after_five_wrong_codes_and_after_five_minutes() {
    let app = TestApp::new().await;
    let (_, secret, _) = enrolled(&app, "guess@example.com").await;
    let token = mfa_token(&app, "guess@example.com").await;
    let right = code(&app, &secret, 0);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        verify(&app, json!({"mfa_token": token, "code": wrong}))
            .await
            .assert_error(400, "invalid_code", INVALID_CODE);
    }
    verify(&app, json!({"mfa_token": token, "code": right}))
        .await
        .assert_error(401, "invalid_mfa_token", INVALID_MFA_TOKEN);

    let late = mfa_token(&app, "guess@example.com").await;
    app.clock.advance(300);
    verify(
        &app,
        json!({"mfa_token": late, "code": code(&app, &secret, 0)}),
    )
    .await
    .assert_error(401, "invalid_mfa_token", INVALID_MFA_TOKEN);
    verify(&app, json!({"mfa_token": "not.a.token", "code": "123456"}))
        .await
        .assert_error(401, "invalid_mfa_token", INVALID_MFA_TOKEN);
}

#[tokio::test]
async fn enrolment_asks_for_the_password_and_a_right_code() {
    let app = TestApp::new().await;
    let s = app.signed_up("enrol@example.com").await;
    app.call(
        Method::POST,
        "/auth/mfa/totp",
        Some(&s.access),
        Some(json!({"password": "not my password"})),
    )
    .await
    .assert_error(401, "invalid_password", "password is incorrect");
    app.call(
        Method::POST,
        "/auth/mfa/totp/confirm",
        Some(&s.access),
        Some(json!({"code": "123456"})),
    )
    .await
    .assert_error(
        409,
        "mfa_not_enabled",
        "no TOTP secret is pending; start with POST /auth/mfa/totp",
    );
    let r = app
        .call(
            Method::POST,
            "/auth/mfa/totp",
            Some(&s.access),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    assert_eq!(
        r.body["otpauth_uri"],
        format!(
            "otpauth://totp/Bastion:enrol%40example.com?secret={secret}&issuer=Bastion&algorithm=SHA1&digits=6&period=30"
        )
    );
    let wrong = if code(&app, &secret, 0) == "000000" {
        "111111"
    } else {
        "000000"
    };
    app.call(
        Method::POST,
        "/auth/mfa/totp/confirm",
        Some(&s.access),
        Some(json!({"code": wrong})),
    )
    .await
    .assert_error(400, "invalid_code", INVALID_CODE);
    // Not on yet: a login still signs straight in.
    assert!(app.login("enrol@example.com", PASSWORD).await.body["access_token"].is_string());
    let ok = json!({"code": code(&app, &secret, 0)});
    let r = app
        .call(
            Method::POST,
            "/auth/mfa/totp/confirm",
            Some(&s.access),
            Some(ok),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.call(
        Method::POST,
        "/auth/mfa/totp",
        Some(&s.access),
        Some(json!({"password": PASSWORD})),
    )
    .await
    .assert_error(
        409,
        "mfa_already_enabled",
        "a second factor is on already; turn it off first",
    );
}

#[tokio::test]
async fn a_password_reset_keeps_the_second_factor() {
    let app = TestApp::new().await;
    let (_, secret, _) = enrolled(&app, "keeps@example.com").await;
    app.post(
        "/auth/password/forgot",
        json!({"email": "keeps@example.com"}),
    )
    .await;
    let token = app.mailed_token("keeps@example.com", "reset-password");
    let new_password = "reset but still two steps 9";
    let r = app
        .post(
            "/auth/password/reset",
            json!({"token": token, "password": new_password}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.login("keeps@example.com", new_password).await;
    assert_eq!(r.body["mfa_required"], true, "{}", r.text);
    assert!(r.body.get("access_token").is_none());
    let token = r.body["mfa_token"].as_str().unwrap();
    let r = verify(
        &app,
        json!({"mfa_token": token, "code": code(&app, &secret, 0)}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn turning_totp_off_takes_a_code_and_an_administrator_can_remove_it_audited() {
    let mut env = base_env();
    let hash = hex::encode(bastion_core::crypto::sha256(ADMIN_KEY.as_bytes()));
    env.insert("ADMIN_KEYS".into(), format!("ops:{hash}"));
    let app = TestApp::builder().env(env).build().await;
    let (s, secret, _) = enrolled(&app, "off@example.com").await;
    app.call(
        Method::DELETE,
        "/auth/mfa/totp",
        Some(&s.access),
        Some(json!({"code": "12345"})),
    )
    .await
    .assert_error(400, "invalid_code", INVALID_CODE);
    let off = json!({"code": code(&app, &secret, 0)});
    let r = app
        .call(Method::DELETE, "/auth/mfa/totp", Some(&s.access), Some(off))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert!(app.login("off@example.com", PASSWORD).await.body["access_token"].is_string());
    assert_eq!(
        app.outbox().pop().unwrap()["subject"],
        "Two-step sign-in is off"
    );

    let (other, _, _) = enrolled(&app, "admin-reset@example.com").await;
    let path = format!("/admin/users/{}", other.user_id);
    let shown = app.get(&path, ADMIN_KEY).await;
    assert_eq!(
        shown.body["user"]["mfa"],
        json!({"totp": true, "recovery_codes_left": 10})
    );
    assert_eq!(shown.body["user"]["email_verified"], false);
    let r = app
        .call(
            Method::DELETE,
            &format!("{path}/mfa"),
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    app.call(
        Method::DELETE,
        &format!("{path}/mfa"),
        Some(ADMIN_KEY),
        None,
    )
    .await
    .assert_error(409, "mfa_not_enabled", "the user has no second factor");
    let events = app.audit_of_kind("admin_mfa_reset").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].user_id.as_ref().unwrap().as_str(), other.user_id);
    assert_eq!(events[0].detail.as_deref(), Some("by=key:ops"));
    assert!(app.login("admin-reset@example.com", PASSWORD).await.body["access_token"].is_string());
}

#[tokio::test]
async fn deleting_the_account_removes_its_second_factor() {
    let app = TestApp::new().await;
    let (s, _, _) = enrolled(&app, "gone@example.com").await;
    let id = bastion_core::UserId::parse(&s.user_id).unwrap();
    assert!(app.unsealed.mfa.get_totp(&id).await.unwrap().is_some());
    let r = app
        .call(
            Method::DELETE,
            "/auth/account",
            Some(&s.access),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(app.unsealed.mfa.get_totp(&id).await.unwrap(), None);
}

#[tokio::test]
async fn no_secret_code_or_token_is_stored_in_plaintext() {
    let app = TestApp::new().await;
    let (_, secret, codes) = enrolled(&app, "at-rest@example.com").await;
    app.post(
        "/auth/password/forgot",
        json!({"email": "at-rest@example.com"}),
    )
    .await;
    let reset = app.mailed_token("at-rest@example.com", "reset-password");
    let verify = app.mailed_token("at-rest@example.com", "verify-email");
    let mut stored = Vec::new();
    let db = app.database_path().unwrap();
    for suffix in ["", "-wal"] {
        if let Ok(bytes) = std::fs::read(format!("{}{suffix}", db.display())) {
            stored.extend(bytes);
        }
    }
    assert!(stored.len() > 4096, "the database was read");
    let stored = String::from_utf8_lossy(&stored).to_lowercase();
    let mut secrets = vec![
        secret.to_lowercase(),
        reset.to_lowercase(),
        verify.to_lowercase(),
    ];
    for c in &codes {
        secrets.push(c.clone());
        secrets.push(c.replace('-', ""));
    }
    for s in &secrets {
        assert!(!stored.contains(s.as_str()), "{s} is stored in plaintext");
    }
    // What is stored is the sealed secret, which opens back to it.
    let id = app
        .unsealed
        .users
        .find_user_by_email(&bastion_core::Email::parse("at-rest@example.com").unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    let raw = app.unsealed.mfa.get_totp(&id).await.unwrap().unwrap();
    assert!(
        raw.secret.starts_with("bastion-sealed:v1:"),
        "{}",
        raw.secret
    );
    assert_eq!(
        app.stores.mfa.get_totp(&id).await.unwrap().unwrap().secret,
        secret
    );
}

/// A six-digit code that is not `right`.
fn other_than(right: &str) -> &'static str {
    if right == "000000" {
        "111111"
    } else {
        "000000"
    }
}

#[tokio::test]
async fn codes_tried_per_account_are_limited_across_sign_ins() {
    let mut env = base_env();
    env.insert("RATE_LIMIT_MFA".into(), "4/300".into());
    let app = TestApp::builder().env(env).build().await;
    // The enrolment's confirming code was the first of the four.
    let (_, secret, _) = enrolled(&app, "limited-mfa@example.com").await;
    let right = code(&app, &secret, 0);
    let first = mfa_token(&app, "limited-mfa@example.com").await;
    for _ in 0..3 {
        verify(
            &app,
            json!({"mfa_token": first, "code": other_than(&right)}),
        )
        .await
        .assert_error(400, "invalid_code", INVALID_CODE);
    }
    // A new sign-in brings no new guesses, and the right code is not even looked at.
    let second = mfa_token(&app, "limited-mfa@example.com").await;
    verify(&app, json!({"mfa_token": second, "code": right}))
        .await
        .assert_error(429, "rate_limited", "too many requests; retry later");

    // The limiter slides over the previous window too: two windows on, it is all forgotten.
    app.clock.advance(600);
    let third = mfa_token(&app, "limited-mfa@example.com").await;
    let r = verify(
        &app,
        json!({"mfa_token": third, "code": code(&app, &secret, 0)}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn an_mfa_token_works_until_five_minutes_and_not_after_a_password_reset() {
    let app = TestApp::new().await;
    let (_, secret, _) = enrolled(&app, "window@example.com").await;
    let token = mfa_token(&app, "window@example.com").await;
    app.clock.advance(299);
    let r = verify(
        &app,
        json!({"mfa_token": token, "code": code(&app, &secret, 0)}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Someone with the old password holds a token; the owner resets the password meanwhile.
    let stolen = mfa_token(&app, "window@example.com").await;
    app.post(
        "/auth/password/forgot",
        json!({"email": "window@example.com"}),
    )
    .await;
    let link = app.mailed_token("window@example.com", "reset-password");
    let r = app
        .post(
            "/auth/password/reset",
            json!({"token": link, "password": "taken back by the owner 5"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.clock.advance(30);
    verify(
        &app,
        json!({"mfa_token": stolen, "code": code(&app, &secret, 0)}),
    )
    .await
    .assert_error(401, "invalid_mfa_token", INVALID_MFA_TOKEN);
}

#[tokio::test]
async fn an_mfa_token_is_no_access_token_and_an_access_token_is_no_mfa_token() {
    let app = TestApp::new().await;
    let (s, secret, _) = enrolled(&app, "kinds@example.com").await;
    let token = mfa_token(&app, "kinds@example.com").await;
    assert_eq!(
        app.get("/auth/me", &token).await.status,
        StatusCode::UNAUTHORIZED
    );
    verify(
        &app,
        json!({"mfa_token": s.access, "code": code(&app, &secret, 0)}),
    )
    .await
    .assert_error(401, "invalid_mfa_token", INVALID_MFA_TOKEN);
    // Neither refusal spent the code: the real token still takes it.
    let r = verify(
        &app,
        json!({"mfa_token": token, "code": code(&app, &secret, 0)}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn the_code_that_signed_in_cannot_turn_totp_off() {
    let app = TestApp::new().await;
    let (_, secret, codes) = enrolled(&app, "replay-off@example.com").await;
    let token = mfa_token(&app, "replay-off@example.com").await;
    let used = code(&app, &secret, 0);
    let r = verify(&app, json!({"mfa_token": token, "code": used})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    app.call(
        Method::DELETE,
        "/auth/mfa/totp",
        Some(&access),
        Some(json!({"code": used})),
    )
    .await
    .assert_error(400, "invalid_code", INVALID_CODE);
    // Nor does a recovery code stand in for the authenticator here.
    app.call(
        Method::DELETE,
        "/auth/mfa/totp",
        Some(&access),
        Some(json!({"code": codes[0]})),
    )
    .await
    .assert_error(400, "invalid_code", INVALID_CODE);
    assert_eq!(
        app.login("replay-off@example.com", PASSWORD).await.body["mfa_required"],
        true
    );
}

#[tokio::test]
async fn a_second_factor_removed_meanwhile_voids_the_pending_sign_in_and_old_recovery_codes() {
    let mut env = base_env();
    let hash = hex::encode(bastion_core::crypto::sha256(ADMIN_KEY.as_bytes()));
    env.insert("ADMIN_KEYS".into(), format!("ops:{hash}"));
    let app = TestApp::builder().env(env).build().await;
    let (s, secret, old_codes) = enrolled(&app, "re-enrol@example.com").await;
    let pending = mfa_token(&app, "re-enrol@example.com").await;
    let path = format!("/admin/users/{}/mfa", s.user_id);
    let r = app.call(Method::DELETE, &path, Some(ADMIN_KEY), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    verify(
        &app,
        json!({"mfa_token": pending, "code": code(&app, &secret, 0)}),
    )
    .await
    .assert_error(401, "invalid_mfa_token", INVALID_MFA_TOKEN);

    // Turned on again: a new secret, and the first enrolment's recovery codes are dead.
    let r = app
        .call(
            Method::POST,
            "/auth/mfa/totp",
            Some(&s.access),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let fresh = r.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(fresh, secret);
    let confirm = json!({"code": code(&app, &fresh, 0)});
    let r = app
        .call(
            Method::POST,
            "/auth/mfa/totp/confirm",
            Some(&s.access),
            Some(confirm),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let token = mfa_token(&app, "re-enrol@example.com").await;
    for c in &old_codes[..3] {
        verify(&app, json!({"mfa_token": token, "recovery_code": c}))
            .await
            .assert_error(400, "invalid_code", INVALID_CODE);
    }
    app.clock.advance(30);
    verify(
        &app,
        json!({"mfa_token": token, "code": code(&app, &secret, 0)}),
    )
    .await
    .assert_error(400, "invalid_code", INVALID_CODE);
}

#[tokio::test]
async fn one_accounts_recovery_code_does_not_open_another_account() {
    let app = TestApp::new().await;
    let (_, _, mine) = enrolled(&app, "holder@example.com").await;
    enrolled(&app, "target@example.com").await;
    let token = mfa_token(&app, "target@example.com").await;
    verify(&app, json!({"mfa_token": token, "recovery_code": mine[0]}))
        .await
        .assert_error(400, "invalid_code", INVALID_CODE);
    // Still unspent for its own account.
    let own = mfa_token(&app, "holder@example.com").await;
    let r = verify(&app, json!({"mfa_token": own, "recovery_code": mine[0]})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}
