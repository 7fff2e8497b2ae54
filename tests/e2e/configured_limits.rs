//! The limits that used to be constants in code (admin, Google sign-in) follow their variables
//! like every other limit.

use http::{Method, StatusCode};

use crate::fake_google::{FakeGoogle, RETURN_TO};
use crate::helpers::{TestApp, base_env};

const KEY: &str = "adm_Y29uZmlndXJlZC1saW1pdHMtdGVzdC1rZXktbm90LXJlYWw";

fn admin_env(limits: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    let hash = hex::encode(bastion_core::crypto::sha256(KEY.as_bytes()));
    let mut env = base_env();
    env.insert("ADMIN_KEYS".to_owned(), format!("ops:{hash}"));
    for (k, v) in limits {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env
}

#[tokio::test]
async fn rate_limit_admin_sets_the_per_administrator_limit() {
    let app = TestApp::builder()
        .env(admin_env(&[("RATE_LIMIT_ADMIN", "3/60")]))
        .build()
        .await;
    for _ in 0..3 {
        let r = app.get("/admin/audit?day=2026-11-29", KEY).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = app.get("/admin/audit?day=2026-11-29", KEY).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.code(), "rate_limited");
    assert_eq!(r.header("ratelimit-limit"), Some("3"));
}

#[tokio::test]
async fn rate_limit_admin_ip_sets_the_per_address_limit_before_any_credential_is_read() {
    let app = TestApp::builder()
        .env(admin_env(&[("RATE_LIMIT_ADMIN_IP", "2/60")]))
        .build()
        .await;
    for _ in 0..2 {
        let r = app.get("/admin/audit?day=2026-11-29", "not-a-key").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    }
    let r = app.get("/admin/audit?day=2026-11-29", KEY).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.code(), "rate_limited");
    assert_eq!(r.header("ratelimit-limit"), Some("2"));
}

#[tokio::test]
async fn rate_limit_google_ip_sets_the_sign_in_limit_per_address() {
    let fake = FakeGoogle::start().await;
    let mut env = base_env();
    for (k, v) in fake.env() {
        env.insert(k.to_owned(), v);
    }
    env.insert("RATE_LIMIT_GOOGLE_IP".to_owned(), "2/60".to_owned());
    let app = TestApp::builder().env(env).build().await;
    let path = format!(
        "/auth/google/start?return_to={}",
        RETURN_TO.replace(':', "%3A").replace('/', "%2F")
    );
    for _ in 0..2 {
        let r = app.call(Method::GET, &path, None, None).await;
        assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
    }
    let r = app.call(Method::GET, &path, None, None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.code(), "rate_limited");
    let other = app.seen_from("198.51.100.9");
    let r = other.call(Method::GET, &path, None, None).await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
}
