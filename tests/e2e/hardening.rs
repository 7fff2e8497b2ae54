//! Attacks from the adversarial review (issue 13), each shown failing against its control:
//! IPv6 address rotation, stranger lockout, injected Google login codes.

use http::StatusCode;

use std::sync::Arc;

use async_trait::async_trait;
use bastion_core::crypto::TokenHash;
use bastion_core::{ApiKeyId, Clock as _, Timestamp, UserId};
use bastion_store::{ApiKeyRecord, ApiKeyStore, KeyMint, SessionStore, StoreError};
use serde_json::json;
use tokio::sync::Barrier;

use crate::helpers::{PASSWORD, Session, TestApp, TestResponse};

#[tokio::test]
async fn registrations_from_rotating_addresses_in_one_ipv6_64_share_one_limit() {
    let app = TestApp::new().await;
    for i in 1..=3 {
        let r = app
            .seen_from(&format!("[2001:db8:7:7:{i:x}::{i:x}]"))
            .register(&format!("v6-{i}@example.com"))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = app
        .seen_from("[2001:db8:7:7:ffff:ffff:ffff:fffe]")
        .register("v6-4@example.com")
        .await;
    r.assert_error(429, "rate_limited", "too many requests; retry later");
    // The neighbouring /64 is another subscriber.
    let r = app
        .seen_from("[2001:db8:7:8::1]")
        .register("v6-5@example.com")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

#[tokio::test]
async fn logins_from_rotating_addresses_in_one_ipv6_64_share_one_limit() {
    let app = TestApp::new().await;
    // 20 logins a minute per client; each from a new address of one /64, each for another
    // (unknown) account so the per-account limit never binds first.
    for i in 1..=20 {
        let r = app
            .seen_from(&format!("[2001:db8:9:9::{i:x}]"))
            .login(&format!("nobody{i}@example.com"), PASSWORD)
            .await;
        r.assert_error(401, "invalid_credentials", "email or password is incorrect");
    }
    let r = app
        .seen_from("[2001:db8:9:9:1234::77]")
        .login("nobody21@example.com", PASSWORD)
        .await;
    r.assert_error(429, "rate_limited", "too many requests; retry later");
}

#[tokio::test]
async fn an_ipv4_mapped_ipv6_client_is_limited_as_its_ipv4_address() {
    let app = TestApp::new().await;
    for i in 1..=3 {
        let r = app
            .seen_from("192.0.2.50")
            .register(&format!("mapped-{i}@example.com"))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = app
        .seen_from("[::ffff:192.0.2.50]")
        .register("mapped-4@example.com")
        .await;
    r.assert_error(429, "rate_limited", "too many requests; retry later");
}

async fn login_with_device(
    app: &TestApp,
    email: &str,
    password: &str,
    device: &str,
) -> TestResponse {
    app.post(
        "/auth/login",
        json!({"email": email, "password": password, "device_token": device}),
    )
    .await
}

/// Five junk logins for `email` from strangers' addresses: the account limit's worth, once
/// the owner's own earlier logins have aged out of it.
async fn strangers_exhaust_the_account_limit(app: &TestApp, email: &str) {
    app.clock.advance(120);
    for i in 0..5 {
        let r = app
            .seen_from(&format!("198.51.100.{i}"))
            .login(email, "wrong password!")
            .await;
        r.assert_error(401, "invalid_credentials", "email or password is incorrect");
    }
    let r = app
        .seen_from("198.51.100.66")
        .login(email, "wrong password!")
        .await;
    r.assert_error(429, "rate_limited", "too many requests; retry later");
}

#[tokio::test]
async fn strangers_failures_do_not_lock_the_owner_out_of_a_device_they_used() {
    let app = TestApp::new().await;
    app.signed_up("owner@example.com").await;
    let first = app.login("owner@example.com", PASSWORD).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let device = first.body["device_token"].as_str().unwrap().to_owned();

    strangers_exhaust_the_account_limit(&app, "owner@example.com").await;

    // The owner's device still gets in; a browser without the token is limited per account.
    let r = login_with_device(&app, "owner@example.com", PASSWORD, &device).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["device_token"].is_string());
    let r = app.login("owner@example.com", PASSWORD).await;
    r.assert_error(429, "rate_limited", "too many requests; retry later");
}

#[tokio::test]
async fn a_device_token_is_limited_per_device_and_only_for_its_own_account() {
    let app = TestApp::new().await;
    app.signed_up("owner@example.com").await;
    app.signed_up("mallory@example.com").await;
    let owner_device = app.signed_in_device("owner@example.com").await;
    let mallory_device = app.signed_in_device("mallory@example.com").await;
    app.clock.advance(120);

    // The attacker's own device token buys nothing against another account.
    for _ in 0..5 {
        let r = login_with_device(
            &app,
            "owner@example.com",
            "wrong password!",
            &mallory_device,
        )
        .await;
        r.assert_error(401, "invalid_credentials", "email or password is incorrect");
    }
    let r = login_with_device(&app, "owner@example.com", PASSWORD, &mallory_device).await;
    r.assert_error(429, "rate_limited", "too many requests; retry later");

    // Guessing from the owner's device is limited on that device: five a minute.
    for _ in 0..5 {
        let r =
            login_with_device(&app, "owner@example.com", "wrong password!", &owner_device).await;
        r.assert_error(401, "invalid_credentials", "email or password is incorrect");
    }
    let r = login_with_device(&app, "owner@example.com", PASSWORD, &owner_device).await;
    r.assert_error(429, "rate_limited", "too many requests; retry later");
}

#[tokio::test]
async fn a_password_change_revokes_the_device_tokens_issued_before_it() {
    let app = TestApp::new().await;
    let s = app.signed_up("owner@example.com").await;
    let device = app.signed_in_device("owner@example.com").await;
    let r = app
        .call(
            http::Method::POST,
            "/auth/password",
            Some(&s.access),
            Some(json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);

    strangers_exhaust_the_account_limit(&app, "owner@example.com").await;
    let r = login_with_device(&app, "owner@example.com", NEW_PASSWORD, &device).await;
    r.assert_error(429, "rate_limited", "too many requests; retry later");
}

#[tokio::test]
async fn logging_out_everywhere_revokes_the_device_tokens_issued_before_it() {
    let app = TestApp::new().await;
    let s = app.signed_up("owner@example.com").await;
    let before = app.signed_in_device("owner@example.com").await;
    let r = app
        .call(
            http::Method::POST,
            "/auth/logout-all",
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let after = app.signed_in_device("owner@example.com").await;

    strangers_exhaust_the_account_limit(&app, "owner@example.com").await;
    // The token from before the log-out is limited like a login without one...
    let r = login_with_device(&app, "owner@example.com", PASSWORD, &before).await;
    r.assert_error(429, "rate_limited", "too many requests; retry later");
    // ...the one issued since still lets its owner in.
    let r = login_with_device(&app, "owner@example.com", PASSWORD, &after).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

const NEW_PASSWORD: &str = "a brand new passphrase 2026";

impl TestApp {
    /// Logs in and returns the device token the login handed back.
    async fn signed_in_device(&self, email: &str) -> String {
        let r = self.login(email, PASSWORD).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body["device_token"].as_str().unwrap().to_owned()
    }
}

/// An API key store that runs `Before` just before each key is written: the race between a
/// mint's checks and its write.
struct RaceMint<B> {
    keys: Arc<dyn ApiKeyStore>,
    before: B,
}

#[async_trait]
trait Before: Send + Sync {
    async fn run(&self, key: &ApiKeyRecord);
}

#[async_trait]
impl<B: Before> ApiKeyStore for RaceMint<B> {
    async fn create_api_key(
        &self,
        key: &ApiKeyRecord,
        max_live: u32,
    ) -> Result<KeyMint, StoreError> {
        self.before.run(key).await;
        self.keys.create_api_key(key, max_live).await
    }
    async fn find_api_key(
        &self,
        hash: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.keys.find_api_key(hash, now).await
    }
    async fn list_api_keys(
        &self,
        user: &UserId,
        now: Timestamp,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.keys.list_api_keys(user, now).await
    }
    async fn revoke_api_key(&self, user: &UserId, id: &ApiKeyId) -> Result<bool, StoreError> {
        self.keys.revoke_api_key(user, id).await
    }
    async fn revoke_all_api_keys(&self, user: &UserId) -> Result<u32, StoreError> {
        self.keys.revoke_all_api_keys(user).await
    }
    async fn touch_api_key(
        &self,
        key: &ApiKeyRecord,
        now: Timestamp,
        min_interval_secs: i64,
    ) -> Result<bool, StoreError> {
        self.keys.touch_api_key(key, now, min_interval_secs).await
    }
}

/// The victim's password change (every session, then every key revoked) lands between the
/// thief's mint checks and its write.
struct PasswordChanged {
    sessions: Arc<dyn SessionStore>,
    keys: Arc<dyn ApiKeyStore>,
}

#[async_trait]
impl Before for PasswordChanged {
    async fn run(&self, key: &ApiKeyRecord) {
        self.sessions
            .revoke_all_sessions(&key.user_id, None)
            .await
            .unwrap();
        self.keys.revoke_all_api_keys(&key.user_id).await.unwrap();
    }
}

fn mint_request(s: &Session) -> (http::Method, &'static str, String, serde_json::Value) {
    (
        http::Method::POST,
        "/auth/api-keys",
        s.access.clone(),
        json!({"name": "ci deploy", "scopes": ["read"], "expires_in_days": 30}),
    )
}

async fn mint(app: &TestApp, s: &Session) -> TestResponse {
    let (method, path, token, body) = mint_request(s);
    app.call(method, path, Some(&token), Some(body)).await
}

#[tokio::test]
async fn a_key_minted_across_a_password_change_is_taken_back() {
    let app = TestApp::new().await;
    let s = app.signed_up("victim@example.com").await;
    let racing = app.replacing(|st| {
        st.api_keys = Arc::new(RaceMint {
            keys: st.api_keys.clone(),
            before: PasswordChanged {
                sessions: st.sessions.clone(),
                keys: st.api_keys.clone(),
            },
        });
    });
    mint(&racing, &s)
        .await
        .assert_error(401, "unauthorized", "session no longer exists");
    let user = UserId::parse(&s.user_id).unwrap();
    let left = app
        .stores
        .api_keys
        .list_api_keys(&user, app.clock.now())
        .await
        .unwrap();
    assert_eq!(left, vec![]);
}

/// Holds every mint at its write until `n` mints have passed their checks.
struct AllChecked(Arc<Barrier>);

#[async_trait]
impl Before for AllChecked {
    async fn run(&self, _key: &ApiKeyRecord) {
        self.0.wait().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_concurrent_mints_for_the_last_key_slot_create_exactly_one_key() {
    let app = TestApp::new().await;
    let s = app.signed_up("many@example.com").await;
    for _ in 0..24 {
        assert_eq!(mint(&app, &s).await.status, StatusCode::CREATED);
    }
    let racing = app.replacing(|st| {
        st.api_keys = Arc::new(RaceMint {
            keys: st.api_keys.clone(),
            before: AllChecked(Arc::new(Barrier::new(5))),
        });
    });
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let (racing, s) = (racing.clone(), s.clone());
        tasks.push(tokio::spawn(async move { mint(&racing, &s).await }));
    }
    let mut created = 0;
    for task in tasks {
        let r = task.await.unwrap();
        if r.status == StatusCode::CREATED {
            created += 1;
        } else {
            r.assert_error(
                409,
                "too_many_api_keys",
                "this account already has 25 API keys; revoke one first",
            );
        }
    }
    let user = UserId::parse(&s.user_id).unwrap();
    let live = app
        .stores
        .api_keys
        .list_api_keys(&user, app.clock.now())
        .await
        .unwrap()
        .len();
    // Exactly one: a re-count after the write would let all five revoke themselves.
    assert_eq!((created, live), (1, 25));
}
