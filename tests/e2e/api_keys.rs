//! API keys: minting from a session only, scopes held, revocation at once, no cross-user reach,
//! expiry, and `last_used_at` written at most once a minute.

use std::sync::Arc;

use async_trait::async_trait;
use bastion_core::crypto::TokenHash;
use bastion_core::{ApiKeyId, Clock as _, Timestamp, UserId};
use bastion_store::{AccountStore, ApiKeyRecord, ApiKeyStore, KeyMint, StoreError};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Session, TestApp, TestResponse, subjects_and_details};

async fn mint(app: &TestApp, s: &Session, scopes: Value, days: i64) -> TestResponse {
    app.call(
        Method::POST,
        "/auth/api-keys",
        Some(&s.access),
        Some(json!({"name": "ci deploy", "scopes": scopes, "expires_in_days": days})),
    )
    .await
}

/// A fresh key of `s` with `scopes`; returns (id, key).
async fn key_of(app: &TestApp, s: &Session, scopes: Value) -> (String, String) {
    let r = mint(app, s, scopes, 30).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    (
        r.body["id"].as_str().unwrap().to_owned(),
        r.body["key"].as_str().unwrap().to_owned(),
    )
}

const SESSION_REQUIRED: &str = "this route needs a signed-in session, not an API key";
const BAD_KEY: &str = "API key is invalid, revoked or expired";

#[tokio::test]
async fn a_minted_key_is_shown_once_and_listed_without_key_material() {
    let app = TestApp::new().await;
    let s = app.signed_up("keys@example.com").await;
    let r = mint(&app, &s, json!(["read", "chat"]), 30).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let key = r.body["key"].as_str().unwrap();
    assert!(key.starts_with("bst_"));
    assert_eq!(key.len(), 4 + 43);
    assert_eq!(r.body["prefix"], json!(&key[..12]));
    assert_eq!(r.body["scopes"], json!(["read", "chat"]));
    assert_eq!(r.body["created_at"], json!("2027-01-15T08:00:00Z"));
    assert_eq!(r.body["expires_at"], json!("2027-02-14T08:00:00Z"));
    assert_eq!(r.body["last_used_at"], Value::Null);

    let listed = app.get("/auth/api-keys", &s.access).await;
    assert_eq!(listed.status, StatusCode::OK);
    let item = &listed.body["api_keys"][0];
    assert_eq!(item["id"], r.body["id"]);
    assert_eq!(item.get("key"), None);
    assert!(!listed.text.contains(key));
    assert_eq!(
        app.audit_kinds(&s.user_id).await[0],
        "api_key_created".to_owned()
    );
}

#[tokio::test]
async fn a_key_works_within_its_scopes_and_gets_403_outside_them() {
    let app = TestApp::new().await;
    let s = app.signed_up("scoped@example.com").await;
    let (_, read_key) = key_of(&app, &s, json!(["read"])).await;
    let me = app.get("/auth/me", &read_key).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["user"]["id"], json!(s.user_id));

    let (_, chat_key) = key_of(&app, &s, json!(["chat"])).await;
    app.get("/auth/me", &chat_key).await.assert_error(
        403,
        "insufficient_scope",
        "this API key does not carry the read scope",
    );
}

#[tokio::test]
async fn scope_escalation_and_bad_requests_are_refused() {
    let app = TestApp::new().await;
    let s = app.signed_up("esc@example.com").await;
    mint(&app, &s, json!(["chat", "admin"]), 30)
        .await
        .assert_error(400, "invalid_scope", "scope must be chat, exec or read");
    mint(&app, &s, json!([]), 30).await.assert_error(
        400,
        "invalid_scope",
        "scopes must name 1 to 3 of chat, exec, read",
    );
    mint(&app, &s, json!(["read", "read"]), 30)
        .await
        .assert_error(400, "invalid_scope", "a scope is repeated");
    for days in [0, 366] {
        mint(&app, &s, json!(["read"]), days).await.assert_error(
            400,
            "invalid_expiry",
            "expires_in_days must be between 1 and 365",
        );
    }
    assert_eq!(
        app.get("/auth/api-keys", &s.access).await.body["api_keys"],
        json!([])
    );
}

#[tokio::test]
async fn a_key_cannot_mint_keys_or_manage_the_account() {
    let app = TestApp::new().await;
    let s = app.signed_up("nomint@example.com").await;
    let (_, key) = key_of(&app, &s, json!(["chat", "exec", "read"])).await;
    let as_key = Session {
        access: key.clone(),
        ..s.clone()
    };
    mint(&app, &as_key, json!(["read"]), 30).await.assert_error(
        403,
        "session_required",
        SESSION_REQUIRED,
    );
    for (method, path, body) in [
        (Method::GET, "/auth/api-keys", None),
        (Method::GET, "/auth/sessions", None),
        (Method::POST, "/auth/logout-all", None),
        (
            Method::POST,
            "/auth/google/link",
            Some(json!({"return_to": "https://app.example.com/"})),
        ),
    ] {
        app.call(method, path, Some(&key), body).await.assert_error(
            403,
            "session_required",
            SESSION_REQUIRED,
        );
    }
    assert_eq!(
        app.get("/auth/sessions", &s.access).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once() {
    let app = TestApp::new().await;
    let s = app.signed_up("revoke@example.com").await;
    let (id, key) = key_of(&app, &s, json!(["read"])).await;
    assert_eq!(app.get("/auth/me", &key).await.status, StatusCode::OK);
    let r = app
        .call(
            Method::DELETE,
            &format!("/auth/api-keys/{id}"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let refused = app.get("/auth/me", &key).await;
    refused.assert_error(401, "invalid_api_key", BAD_KEY);
    assert_eq!(app.audit_kinds(&s.user_id).await[0], "api_key_revoked");
    // A revoked key is deleted, so nothing names its owner any more: the subject is the IP.
    let events = app.audit_of_kind("api_key_refused").await;
    assert_eq!(
        subjects_and_details(&events),
        vec![(None, Some("unknown_or_revoked".to_owned()))]
    );
    assert_eq!(events[0].ip, "203.0.113.7");
    assert_eq!(events[0].user_agent, "bastion-tests/1.0");
    assert_eq!(
        events[0].request_id.as_str(),
        refused.header("x-request-id").unwrap()
    );
}

#[tokio::test]
async fn a_password_change_revokes_every_key_so_a_key_minted_by_a_thief_dies_with_it() {
    let app = TestApp::new().await;
    let s = app.signed_up("taken-back@example.com").await;
    let (_, stolen) = key_of(&app, &s, json!(["read", "chat"])).await;
    assert_eq!(app.get("/auth/me", &stolen).await.status, StatusCode::OK);
    let r = app
        .call(
            Method::POST,
            "/auth/password",
            Some(&s.access),
            Some(json!({"current_password": PASSWORD,
                        "new_password": "a wholly different passphrase 77"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    app.get("/auth/me", &stolen)
        .await
        .assert_error(401, "invalid_api_key", BAD_KEY);
    assert_eq!(
        app.get("/auth/api-keys", &s.access).await.body["api_keys"],
        json!([])
    );
}

#[tokio::test]
async fn another_users_key_cannot_be_revoked_and_keys_act_only_as_their_owner() {
    let app = TestApp::new().await;
    let a = app.signed_up("owner-a@example.com").await;
    let b = app.signed_up("owner-b@example.com").await;
    let (a_id, a_key) = key_of(&app, &a, json!(["read"])).await;
    let r = app
        .call(
            Method::DELETE,
            &format!("/auth/api-keys/{a_id}"),
            Some(&b.access),
            None,
        )
        .await;
    r.assert_error(404, "not_found", "no such resource");
    let me = app.get("/auth/me", &a_key).await;
    assert_eq!(me.body["user"]["id"], json!(a.user_id));
    assert_eq!(
        app.get("/auth/api-keys", &b.access).await.body["api_keys"],
        json!([])
    );
}

#[tokio::test]
async fn expired_and_malformed_keys_get_401() {
    let app = TestApp::new().await;
    let s = app.signed_up("expire@example.com").await;
    let r = mint(&app, &s, json!(["read"]), 1).await;
    let key = r.body["key"].as_str().unwrap().to_owned();
    app.clock.advance(86_399);
    assert_eq!(app.get("/auth/me", &key).await.status, StatusCode::OK);
    app.clock.advance(1);
    app.get("/auth/me", &key)
        .await
        .assert_error(401, "invalid_api_key", BAD_KEY);
    for junk in ["bst_", "bst_short", &format!("{key}x")] {
        app.get("/auth/me", junk)
            .await
            .assert_error(401, "invalid_api_key", BAD_KEY);
    }
    let malformed = (None, Some("malformed".to_owned()));
    assert_eq!(
        subjects_and_details(&app.audit_of_kind("api_key_refused").await),
        vec![
            malformed.clone(),
            malformed.clone(),
            malformed,
            (Some(s.user_id.clone()), Some("expired".to_owned())),
        ]
    );
}

#[tokio::test]
async fn last_used_at_is_written_at_most_once_a_minute() {
    let app = TestApp::new().await;
    let s = app.signed_up("touch@example.com").await;
    let (_, key) = key_of(&app, &s, json!(["read"])).await;
    let last_used = || async {
        app.get("/auth/api-keys", &s.access).await.body["api_keys"][0]["last_used_at"].clone()
    };
    app.clock.advance(10);
    app.get("/auth/me", &key).await;
    assert_eq!(last_used().await, json!("2027-01-15T08:00:10Z"));
    app.clock.advance(59);
    app.get("/auth/me", &key).await;
    assert_eq!(last_used().await, json!("2027-01-15T08:00:10Z"));
    app.clock.advance(1);
    app.get("/auth/me", &key).await;
    assert_eq!(last_used().await, json!("2027-01-15T08:01:10Z"));
}

/// An API key store where an administrator disables the owner (flag, then every key revoked)
/// just before each key is written: the race between the session check and the write.
struct DisabledMidMint {
    keys: Arc<dyn ApiKeyStore>,
    accounts: Arc<dyn AccountStore>,
}

#[async_trait]
impl ApiKeyStore for DisabledMidMint {
    async fn create_api_key(
        &self,
        key: &ApiKeyRecord,
        max_live: u32,
    ) -> Result<KeyMint, StoreError> {
        self.accounts.set_disabled(&key.user_id, true).await?;
        self.keys.revoke_all_api_keys(&key.user_id).await?;
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

#[tokio::test]
async fn a_key_minted_while_the_account_is_being_disabled_is_taken_back() {
    let app = TestApp::new().await;
    let s = app.signed_up("racing@example.com").await;
    let racing = app.replacing(|st| {
        st.api_keys = Arc::new(DisabledMidMint {
            keys: st.api_keys.clone(),
            accounts: st.accounts.clone(),
        });
    });
    mint(&racing, &s, json!(["read"]), 30).await.assert_error(
        401,
        "unauthorized",
        "account no longer exists",
    );
    let user = UserId::parse(&s.user_id).unwrap();
    let left = app
        .stores
        .api_keys
        .list_api_keys(&user, app.clock.now())
        .await
        .unwrap();
    assert_eq!(left, vec![]);
}
