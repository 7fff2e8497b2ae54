//! Rotation without a redeploy: the auth router wired as the Lambda wires it (configuration from
//! a secret document, `bastion_auth::config::rotate` on refresh), driven over HTTP. A second
//! instance that already has the new document stands for the rest of the fleet.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bastion_auth::AuthState;
use bastion_http::secrets::{RefreshError, SecretConfig, SecretSource, SourceError};
use bastion_http::{Edge, EdgeConfig};
use http::StatusCode;
use secrecy::SecretString;

use crate::helpers::{JWT_KEY_B64, JWT_PUBLIC_B64, PASSWORD, TestApp, base_env};

/// The second key pair: its signing entry (seed 20 21 … 3f) and its verify entry.
const K2: &str = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
const K2_PUBLIC: &str = "k2:Kay64UG8yvCyLhqU000LxzYeUm0L/hLIl5S8kyKWbdc=";
const P1: &str = "1:ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
const P2: &str = "2:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const OLD_ADMIN: &str = "adm_Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1hZG1pbi1r";
const NEW_ADMIN: &str = "adm_YW5vdGhlci10ZXN0LWtleS1ub3QtYS1yZWFsLWFkbWluLWs";

fn k1() -> String {
    format!("k1:{JWT_KEY_B64}")
}

fn k1_public() -> String {
    format!("k1:{JWT_PUBLIC_B64}")
}

/// The document `pairs` plus JWT signing keys `signing` (kids, current first) and the verify
/// keys of `verify`, each list in the order given.
fn with_jwt(signing: &[&str], verify: &[&str], pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let entry = |kid: &&str, public: bool| match (*kid, public) {
        ("k1", false) => k1(),
        ("k1", true) => k1_public(),
        (_, false) => K2.to_owned(),
        (_, true) => K2_PUBLIC.to_owned(),
    };
    let list = |kids: &[&str], public: bool| {
        kids.iter()
            .map(|k| entry(k, public))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut out = vec![
        ("JWT_SIGNING_KEYS".to_owned(), list(signing, false)),
        ("JWT_VERIFY_KEYS".to_owned(), list(verify, true)),
    ];
    out.extend(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    out
}

fn admin_entry(name: &str, key: &str) -> String {
    format!(
        "{name}:{}",
        hex::encode(bastion_core::crypto::sha256(key.as_bytes()))
    )
}

fn refs(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// A secret document the test rewrites between refreshes; while `open` is false a fetch waits.
struct Document(Mutex<String>, tokio::sync::watch::Sender<bool>);

impl Document {
    fn new() -> Self {
        Self(Mutex::default(), tokio::sync::watch::Sender::new(true))
    }

    fn set(&self, pairs: &[(&str, &str)]) {
        let map: serde_json::Map<String, serde_json::Value> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned())))
            .collect();
        *self.0.lock().unwrap() = serde_json::Value::Object(map).to_string();
    }
}

#[async_trait]
impl SecretSource for Document {
    async fn fetch(&self) -> Result<SecretString, SourceError> {
        let _ = self.1.subscribe().wait_for(|open| *open).await;
        Ok(SecretString::from(self.0.lock().unwrap().clone()))
    }
}

/// `app`'s store and clock behind an auth router configured from the document `pairs`.
async fn instance(
    app: &TestApp,
    pairs: &[(&str, &str)],
) -> (TestApp, Arc<SecretConfig>, Arc<Document>) {
    let plain: HashMap<String, String> = base_env()
        .into_iter()
        .filter(|(k, _)| !bastion_http::config::is_secret_name(k))
        .collect();
    let document = Arc::new(Document::new());
    document.set(pairs);
    let clock = Arc::new(app.clock.clone());
    let secrets = SecretConfig::load(Arc::new(plain), document.clone(), clock.clone())
        .await
        .unwrap();
    let env = secrets.env();
    let edge = Edge::new(
        EdgeConfig::from_env(&env).unwrap(),
        app.stores.clone(),
        clock,
    )
    .with_secrets(Some(secrets.clone()));
    let state = AuthState::from_env(edge, &env).unwrap();
    let rotated = state.clone();
    secrets.on_refresh(move |env| bastion_auth::config::rotate(&rotated, env));
    let mut out = app.clone();
    out.router = bastion_auth::router(state);
    (out, secrets, document)
}

#[tokio::test]
async fn a_token_signed_with_a_key_added_verify_only_is_accepted_after_one_refresh() {
    let base = TestApp::new().await;
    let (here, secrets, document) = instance(
        &base,
        &refs(&with_jwt(&["k1"], &["k1"], &[("PASSWORD_PEPPER", P1)])),
    )
    .await;
    let both = with_jwt(&["k2", "k1"], &["k2", "k1"], &[("PASSWORD_PEPPER", P1)]);
    let (ahead, _, _) = instance(&base, &refs(&both)).await;
    let session = ahead.signed_up("rotating@example.com").await;
    here.get("/auth/me", &session.access).await.assert_error(
        401,
        "unauthorized",
        "invalid or expired access token",
    );

    let verify_only = with_jwt(&["k1", "k2"], &["k1", "k2"], &[("PASSWORD_PEPPER", P1)]);
    document.set(&refs(&verify_only));
    secrets.refresh().await.unwrap();
    let r = here.get("/auth/me", &session.access).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["user"]["email"], "rotating@example.com");
}

#[tokio::test]
async fn a_request_after_the_refresh_interval_is_served_at_once_and_starts_the_refresh() {
    let base = TestApp::new().await;
    let (here, _secrets, document) = instance(
        &base,
        &refs(&with_jwt(&["k1"], &["k1"], &[("PASSWORD_PEPPER", P1)])),
    )
    .await;
    let both = with_jwt(&["k2", "k1"], &["k2", "k1"], &[("PASSWORD_PEPPER", P1)]);
    let (ahead, _, _) = instance(&base, &refs(&both)).await;
    let session = ahead.signed_up("lazy@example.com").await;
    document.set(&refs(&both));
    // Within the interval (300 s by default) nothing is fetched.
    base.clock.advance(299);
    for _ in 0..3 {
        let r = here.get("/auth/me", &session.access).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        tokio::task::yield_now().await;
    }
    base.clock.advance(1);
    // The request that notices staleness is answered with the configuration in force, and so
    // is the next, while the secret read is still pending.
    document.1.send_replace(false);
    for _ in 0..2 {
        let r = here.get("/auth/me", &session.access).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    document.1.send_replace(true);
    let mut status = StatusCode::UNAUTHORIZED;
    for _ in 0..200 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        status = here.get("/auth/me", &session.access).await.status;
        if status == StatusCode::OK {
            break;
        }
    }
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_password_hashed_under_a_new_pepper_version_logs_in_after_one_refresh() {
    let base = TestApp::new().await;
    let (here, secrets, document) = instance(
        &base,
        &refs(&with_jwt(&["k1"], &["k1"], &[("PASSWORD_PEPPER", P1)])),
    )
    .await;
    let both = format!("{P2},{P1}");
    let (ahead, _, _) = instance(
        &base,
        &refs(&with_jwt(&["k1"], &["k1"], &[("PASSWORD_PEPPER", &both)])),
    )
    .await;
    ahead.signed_up("pepper@example.com").await;
    here.login("pepper@example.com", PASSWORD)
        .await
        .assert_error(401, "invalid_credentials", "email or password is incorrect");

    let peppers = format!("{P1},{P2}");
    document.set(&refs(&with_jwt(
        &["k1"],
        &["k1"],
        &[("PASSWORD_PEPPER", &peppers)],
    )));
    secrets.refresh().await.unwrap();
    let r = here.login("pepper@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn an_admin_key_added_then_the_old_one_removed_take_effect_at_each_refresh() {
    let base = TestApp::new().await;
    let old = admin_entry("ops", OLD_ADMIN);
    let new = admin_entry("ops2", NEW_ADMIN);
    let secret = |admin: &str| {
        with_jwt(
            &["k1"],
            &["k1"],
            &[("PASSWORD_PEPPER", P1), ("ADMIN_KEYS", admin)],
        )
    };
    let (here, secrets, document) = instance(&base, &refs(&secret(&old))).await;
    let user = here.signed_up("target@example.com").await;
    let path = format!("/admin/users/{}", user.user_id);
    let refused = |r: crate::helpers::TestResponse| {
        r.assert_error(401, "invalid_admin_key", "admin key is not recognised")
    };
    refused(here.get(&path, NEW_ADMIN).await);

    document.set(&refs(&secret(&format!("{old},{new}"))));
    secrets.refresh().await.unwrap();
    assert_eq!(here.get(&path, NEW_ADMIN).await.status, StatusCode::OK);
    assert_eq!(here.get(&path, OLD_ADMIN).await.status, StatusCode::OK);

    document.set(&refs(&secret(&new)));
    secrets.refresh().await.unwrap();
    refused(here.get(&path, OLD_ADMIN).await);
    assert_eq!(here.get(&path, NEW_ADMIN).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_refresh_missing_a_required_secret_changes_nothing_and_names_it() {
    let base = TestApp::new().await;
    let old_admin = admin_entry("ops", OLD_ADMIN);
    let (here, secrets, document) = instance(
        &base,
        &refs(&with_jwt(
            &["k1"],
            &["k1"],
            &[("PASSWORD_PEPPER", P1), ("ADMIN_KEYS", &old_admin)],
        )),
    )
    .await;
    let session = here.signed_up("steady@example.com").await;
    // JWT rotated, but the pepper is gone: nothing may be swapped, not even the JWT keys.
    let new_admin = admin_entry("ops2", NEW_ADMIN);
    document.set(&refs(&with_jwt(
        &["k2"],
        &["k2"],
        &[("ADMIN_KEYS", &new_admin)],
    )));
    let err = secrets.refresh().await.unwrap_err();
    assert_eq!(
        err,
        RefreshError::Config(bastion_http::ConfigError::new(
            "PASSWORD_PEPPER",
            "is required"
        ))
    );
    let r = here.get("/auth/me", &session.access).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        here.login("steady@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
    let path = format!("/admin/users/{}", session.user_id);
    assert_eq!(here.get(&path, OLD_ADMIN).await.status, StatusCode::OK);
    here.get(&path, NEW_ADMIN).await.assert_error(
        401,
        "invalid_admin_key",
        "admin key is not recognised",
    );
}
