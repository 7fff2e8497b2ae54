//! Account recovery end to end on SQLite with the test clock and the outbox: verification
//! links, password reset (no enumeration, single use, expiry, supersession, everything signed
//! in before it ended) and `REQUIRE_VERIFIED_EMAIL`.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, base_env};

const NEW_PASSWORD: &str = "a brand new passphrase 7";
const INVALID_TOKEN: &str = "the link is unknown, used or expired; ask for a new one";
const FORGOT_BODY: &str = "if an account with this address exists, a reset link is on its way";

async fn forgot(app: &TestApp, email: &str) -> crate::helpers::TestResponse {
    app.post("/auth/password/forgot", json!({"email": email}))
        .await
}

async fn reset(app: &TestApp, token: &str, password: &str) -> crate::helpers::TestResponse {
    app.post(
        "/auth/password/reset",
        json!({"token": token, "password": password}),
    )
    .await
}

fn mails_to(app: &TestApp, to: &str) -> Vec<Value> {
    app.outbox().into_iter().filter(|m| m["to"] == to).collect()
}

#[tokio::test]
async fn forgot_answers_the_same_for_known_unknown_and_disabled_addresses_and_mails_only_the_live_account()
 {
    let app = TestApp::new().await;
    app.signed_up("known@example.com").await;
    let off = app.signed_up("disabled@example.com").await;
    let off_id = bastion_core::UserId::parse(&off.user_id).unwrap();
    app.stores
        .accounts
        .set_disabled(&off_id, true)
        .await
        .unwrap();
    let before = app.outbox().len();

    let expected = json!({"status": "accepted", "message": FORGOT_BODY});
    for email in [
        "known@example.com",
        "nobody@example.com",
        "disabled@example.com",
    ] {
        let r = forgot(&app, email).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{email}: {}", r.text);
        assert_eq!(r.body, expected, "{email}");
    }
    let sent: Vec<Value> = app.outbox().into_iter().skip(before).collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["to"], "known@example.com");
    assert_eq!(sent[0]["subject"], "Reset your password");
    assert!(mails_to(&app, "nobody@example.com").is_empty());
    assert_eq!(
        mails_to(&app, "disabled@example.com").len(),
        1,
        "only its verification mail"
    );
}

#[tokio::test]
async fn a_reset_link_works_once_ends_every_session_and_api_key_and_is_audited() {
    let app = TestApp::new().await;
    let s = app.signed_up("reset@example.com").await;
    let key = app
        .call(
            Method::POST,
            "/auth/api-keys",
            Some(&s.access),
            Some(json!({"name": "ci", "scopes": ["read"], "expires_in_days": 30})),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.text);
    let key = key.body["key"].as_str().unwrap().to_owned();

    forgot(&app, "reset@example.com").await;
    let token = app.mailed_token("reset@example.com", "reset-password");
    let r = reset(&app, &token, NEW_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({"status": "password_reset"}));

    reset(&app, &token, "yet another passphrase 8")
        .await
        .assert_error(400, "invalid_token", INVALID_TOKEN);
    assert_eq!(
        app.refresh(&s.refresh).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/auth/me", &s.access).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/auth/me", &key).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("reset@example.com", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    let fresh = app.login("reset@example.com", NEW_PASSWORD).await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text);
    // The link reached the address: it counts as verified now.
    assert_eq!(fresh.body["user"]["email_verified"], true);

    let events = app.audit_of_kind("password_reset").await;
    let details: Vec<_> = events
        .iter()
        .map(|e| (e.outcome, e.detail.clone()))
        .collect();
    assert_eq!(
        details,
        vec![
            (
                bastion_core::audit::Outcome::Failure,
                Some("unknown_used_superseded_or_expired".into())
            ),
            (
                bastion_core::audit::Outcome::Success,
                Some("sessions_revoked=1 api_keys_revoked=1".into())
            ),
        ]
    );
    let notice = app.outbox().pop().unwrap();
    assert_eq!(notice["to"], "reset@example.com");
    assert_eq!(notice["subject"], "Your password was reset");
}

#[tokio::test]
async fn a_reset_link_expires_after_thirty_minutes_and_a_newer_one_voids_it() {
    let app = TestApp::new().await;
    app.signed_up("late@example.com").await;
    forgot(&app, "late@example.com").await;
    let old = app.mailed_token("late@example.com", "reset-password");
    app.clock.advance(30 * 60);
    reset(&app, &old, NEW_PASSWORD)
        .await
        .assert_error(400, "invalid_token", INVALID_TOKEN);

    forgot(&app, "late@example.com").await;
    let first = app.mailed_token("late@example.com", "reset-password");
    forgot(&app, "late@example.com").await;
    let second = app.mailed_token("late@example.com", "reset-password");
    assert_ne!(first, second);
    reset(&app, &first, NEW_PASSWORD)
        .await
        .assert_error(400, "invalid_token", INVALID_TOKEN);
    app.clock.advance(30 * 60 - 1);
    assert_eq!(
        reset(&app, &second, NEW_PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_weak_new_password_is_refused_and_the_link_still_works() {
    let app = TestApp::new().await;
    app.signed_up("weak@example.com").await;
    forgot(&app, "weak@example.com").await;
    let token = app.mailed_token("weak@example.com", "reset-password");
    let r = reset(&app, &token, "password1").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.code(), "weak_password");
    assert_eq!(
        reset(&app, &token, NEW_PASSWORD).await.status,
        StatusCode::OK
    );
    for junk in [
        "",
        "nope",
        &format!("{}.x", "0".repeat(32)),
        &token.replace('.', ""),
    ] {
        reset(&app, junk, NEW_PASSWORD)
            .await
            .assert_error(400, "invalid_token", INVALID_TOKEN);
    }
}

#[tokio::test]
async fn registration_mails_a_verification_link_that_works_once_for_a_day() {
    let app = TestApp::new().await;
    let s = app.signed_up("verify@example.com").await;
    let mail = mails_to(&app, "verify@example.com").pop().unwrap();
    assert_eq!(mail["subject"], "Verify your email address");
    let token = app.mailed_token("verify@example.com", "verify-email");
    assert_eq!(
        app.get("/auth/me", &s.access).await.body["user"]["email_verified"],
        false
    );

    let r = app
        .post("/auth/email/verify", json!({"token": token}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({"email_verified": true}));
    let me = app.get("/auth/me", &s.access).await;
    assert_eq!(me.body["user"]["email_verified"], true);
    assert_eq!(
        me.body["user"]["mfa"],
        json!({"totp": false, "recovery_codes_left": 0})
    );
    app.post("/auth/email/verify", json!({"token": token}))
        .await
        .assert_error(400, "invalid_token", INVALID_TOKEN);
    app.call(
        Method::POST,
        "/auth/email/verify/send",
        Some(&s.access),
        None,
    )
    .await
    .assert_error(
        409,
        "email_already_verified",
        "the address is verified already",
    );

    app.signed_up("slow@example.com").await;
    let stale = app.mailed_token("slow@example.com", "verify-email");
    app.clock.advance(24 * 3600);
    let other = app.signed_in("slow@example.com").await;
    app.post("/auth/email/verify", json!({"token": stale}))
        .await
        .assert_error(400, "invalid_token", INVALID_TOKEN);
    let r = app
        .call(
            Method::POST,
            "/auth/email/verify/send",
            Some(&other.access),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let fresh = app.mailed_token("slow@example.com", "verify-email");
    assert_ne!(fresh, stale);
    assert_eq!(
        app.post("/auth/email/verify", json!({"token": fresh}))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn with_require_verified_email_exec_refuses_an_unverified_account_until_it_verifies() {
    let mut env = base_env();
    env.insert("REQUIRE_VERIFIED_EMAIL".into(), "true".into());
    let app = TestApp::builder().env(env).exec(&[]).build().await;
    let s = app.signed_up("gate@example.com").await;
    app.get("/exec/files", &s.access).await.assert_error(
        403,
        "email_unverified",
        "verify your email address first (POST /auth/email/verify/send sends a new link)",
    );
    assert_eq!(app.get("/auth/me", &s.access).await.status, StatusCode::OK);
    let token = app.mailed_token("gate@example.com", "verify-email");
    app.post("/auth/email/verify", json!({"token": token}))
        .await;
    let r = app.get("/exec/files", &s.access).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn a_malformed_require_verified_email_stops_start_up_naming_it() {
    let mut env = base_env();
    env.insert("REQUIRE_VERIFIED_EMAIL".into(), "yes".into());
    let err = bastion_http::EdgeConfig::from_env(&env).err().unwrap();
    assert_eq!(
        err.to_string(),
        "configuration REQUIRE_VERIFIED_EMAIL: must be true or false, not \"yes\""
    );
}

#[tokio::test]
async fn recovery_mails_per_address_are_limited_known_or_not() {
    let mut env = base_env();
    env.insert("RATE_LIMIT_RECOVERY_EMAIL".into(), "2/3600".into());
    let app = TestApp::builder().env(env).build().await;
    app.signed_up("limited@example.com").await;
    for email in ["limited@example.com", "ghost@example.com"] {
        for _ in 0..2 {
            assert_eq!(forgot(&app, email).await.status, StatusCode::ACCEPTED);
        }
        let r = forgot(&app, email).await;
        assert_eq!(
            r.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{email}: {}",
            r.text
        );
        assert_eq!(r.code(), "rate_limited");
    }
}

const UNVERIFIED: &str =
    "verify your email address first (POST /auth/email/verify/send sends a new link)";

#[tokio::test]
async fn with_require_verified_email_chat_refuses_an_unverified_account_until_it_verifies() {
    let fake = bastion_chat::testing::FakeLlm::start().await;
    let mut env = base_env();
    for (k, v) in fake.env() {
        env.insert(k.to_owned(), v);
    }
    env.insert("REQUIRE_VERIFIED_EMAIL".into(), "true".into());
    let app = TestApp::builder().env(env).chat().build().await;
    let s = app.signed_up("chat-gate@example.com").await;
    let turn = json!({"message": "hello"});
    // `POST /chat` is the route that spends credits and reaches the provider.
    app.call(Method::POST, "/chat", Some(&s.access), Some(turn.clone()))
        .await
        .assert_error(403, "email_unverified", UNVERIFIED);
    app.get("/chat/conversations", &s.access)
        .await
        .assert_error(403, "email_unverified", UNVERIFIED);
    assert!(fake.requests().is_empty(), "the provider was never asked");

    let token = app.mailed_token("chat-gate@example.com", "verify-email");
    let r = app
        .post("/auth/email/verify", json!({"token": token}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .call(Method::POST, "/chat", Some(&s.access), Some(turn))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        app.get("/chat/conversations", &s.access).await.status,
        StatusCode::OK
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn with_require_verified_email_an_api_key_of_an_unverified_account_is_refused_too() {
    let mut env = base_env();
    env.insert("REQUIRE_VERIFIED_EMAIL".into(), "true".into());
    let app = TestApp::builder().env(env).exec(&[]).build().await;
    let s = app.signed_up("key-gate@example.com").await;
    let key = app
        .call(
            Method::POST,
            "/auth/api-keys",
            Some(&s.access),
            Some(json!({"name": "ci", "scopes": ["read"], "expires_in_days": 30})),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.text);
    let key = key.body["key"].as_str().unwrap().to_owned();
    app.get("/exec/files", &key)
        .await
        .assert_error(403, "email_unverified", UNVERIFIED);
    let token = app.mailed_token("key-gate@example.com", "verify-email");
    app.post("/auth/email/verify", json!({"token": token}))
        .await;
    let r = app.get("/exec/files", &key).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn recovery_requests_per_ip_are_limited_across_forgot_reset_and_verify() {
    let mut env = base_env();
    env.insert("RATE_LIMIT_RECOVERY_IP".into(), "3/3600".into());
    let app = TestApp::builder().env(env).build().await;
    app.signed_up("ip-limited@example.com").await;
    let junk = format!("{}.x", "0".repeat(32));
    assert_eq!(
        forgot(&app, "ip-limited@example.com").await.status,
        StatusCode::ACCEPTED
    );
    reset(&app, &junk, NEW_PASSWORD)
        .await
        .assert_error(400, "invalid_token", INVALID_TOKEN);
    app.post("/auth/email/verify", json!({"token": junk}))
        .await
        .assert_error(400, "invalid_token", INVALID_TOKEN);

    // The fourth of any of them from this address is refused, a real link included.
    let token = app.mailed_token("ip-limited@example.com", "reset-password");
    let limited = "too many requests; retry later";
    forgot(&app, "other@example.com")
        .await
        .assert_error(429, "rate_limited", limited);
    reset(&app, &token, NEW_PASSWORD)
        .await
        .assert_error(429, "rate_limited", limited);
    app.post("/auth/email/verify", json!({"token": junk}))
        .await
        .assert_error(429, "rate_limited", limited);

    let elsewhere = app.seen_from("198.51.100.7");
    let r = reset(&elsewhere, &token, NEW_PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // The limiter slides over the previous window too: two windows on, it is all forgotten.
    app.clock.advance(2 * 3600);
    assert_eq!(
        forgot(&app, "ip-limited@example.com").await.status,
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn a_reset_link_is_refused_one_second_after_thirty_minutes() {
    let app = TestApp::new().await;
    app.signed_up("edge-of-time@example.com").await;
    forgot(&app, "edge-of-time@example.com").await;
    let late = app.mailed_token("edge-of-time@example.com", "reset-password");
    app.clock.advance(30 * 60 + 1);
    reset(&app, &late, NEW_PASSWORD)
        .await
        .assert_error(400, "invalid_token", INVALID_TOKEN);
    assert_eq!(
        app.login("edge-of-time@example.com", PASSWORD).await.status,
        StatusCode::OK,
        "the old password still works"
    );
}

#[tokio::test]
async fn forgot_answers_a_google_only_account_as_any_other_address() {
    let app = TestApp::new().await;
    // As Google sign-in creates it: no password, the address vouched for by Google.
    let google = bastion_store::UserRecord {
        id: bastion_core::UserId::generate(),
        email: bastion_core::Email::parse("google-only@example.com").unwrap(),
        display_name: None,
        password_hash: String::new(),
        roles: vec![bastion_core::Role::User],
        created_at: crate::helpers::START,
        disabled: false,
        session_epoch: 0,
        email_verified: true,
    };
    app.stores.users.create_user(&google).await.unwrap();
    let expected = json!({"status": "accepted", "message": FORGOT_BODY});
    for email in ["google-only@example.com", "nobody@example.com"] {
        let r = forgot(&app, email).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{email}: {}", r.text);
        assert_eq!(r.body, expected, "{email}");
    }
    // The account is live, so its address gets the link (which would give it a password).
    assert_eq!(mails_to(&app, "google-only@example.com").len(), 1);
    assert!(mails_to(&app, "nobody@example.com").is_empty());
}

#[tokio::test]
async fn a_reset_link_cannot_be_moved_to_another_account_nor_outlive_a_disabled_one() {
    let app = TestApp::new().await;
    app.signed_up("mine@example.com").await;
    let victim = app.signed_up("victim@example.com").await;
    forgot(&app, "mine@example.com").await;
    let mine = app.mailed_token("mine@example.com", "reset-password");
    // The secret half of my own link, put under the victim's id.
    let (_, secret) = mine.split_once('.').unwrap();
    let moved = format!("{}.{secret}", victim.user_id);
    reset(&app, &moved, NEW_PASSWORD)
        .await
        .assert_error(400, "invalid_token", INVALID_TOKEN);
    assert_eq!(
        app.login("victim@example.com", PASSWORD).await.status,
        StatusCode::OK
    );

    let id = bastion_core::UserId::parse(&victim.user_id).unwrap();
    forgot(&app, "victim@example.com").await;
    let link = app.mailed_token("victim@example.com", "reset-password");
    app.stores.accounts.set_disabled(&id, true).await.unwrap();
    reset(&app, &link, NEW_PASSWORD)
        .await
        .assert_error(400, "invalid_token", INVALID_TOKEN);
    // My link was not spent by the moved copy.
    assert_eq!(
        reset(&app, &mine, NEW_PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_mails_are_exactly_the_fixed_text_with_the_link_and_nothing_the_user_chose() {
    let app = TestApp::new().await;
    let r = app
        .post(
            "/auth/register",
            json!({"email": "mailed@example.com", "password": PASSWORD, "display_name": "Click evil.example now"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let verify = app.mailed_token("mailed@example.com", "verify-email");
    forgot(&app, "mailed@example.com").await;
    let reset = app.mailed_token("mailed@example.com", "reset-password");
    assert_eq!(
        mails_to(&app, "mailed@example.com"),
        vec![
            json!({
                "to": "mailed@example.com",
                "subject": "Verify your email address",
                "text": format!(
                    "A Bastion account was created with this address, or a new verification link \
                     was asked for.\n\nOpen this link within 24 hours to verify the address:\n\
                     https://app.example.com/verify-email#token={verify}\n\nIf this was not you, \
                     ignore this message; nothing changes.\n"
                ),
            }),
            json!({
                "to": "mailed@example.com",
                "subject": "Reset your password",
                "text": format!(
                    "A password reset was asked for the Bastion account with this address.\n\n\
                     Open this link within 30 minutes to choose a new password:\n\
                     https://app.example.com/reset-password#token={reset}\n\nOnly the newest \
                     link works, and only once. A reset signs out every device and revokes every \
                     API key; a second factor stays on. If you did not ask for this, ignore this \
                     message: your password stays as it is.\n"
                ),
            }),
        ]
    );
}

#[tokio::test]
async fn a_verification_link_still_works_one_second_before_a_day() {
    let app = TestApp::new().await;
    let s = app.signed_up("just-in-time@example.com").await;
    let token = app.mailed_token("just-in-time@example.com", "verify-email");
    app.clock.advance(24 * 3600 - 1);
    let r = app
        .post("/auth/email/verify", json!({"token": token}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let fresh = app.signed_in("just-in-time@example.com").await;
    assert_eq!(s.user_id, fresh.user_id);
    assert_eq!(
        app.get("/auth/me", &fresh.access).await.body["user"]["email_verified"],
        true
    );
}
