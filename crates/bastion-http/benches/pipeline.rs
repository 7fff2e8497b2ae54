//! Bench binary for the edge pipeline on a no-op route: request id, client IP, per-IP limit,
//! envelope, CORS and security headers. Once with an in-memory counter (pipeline overhead
//! alone), once with SQLite counters (the local store), then a route behind the Bearer
//! extractor with a session access token and with an API key (SQLite). Run with
//! `cargo bench -p bastion-http`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get;
use bastion_core::crypto::{OpaqueToken, TokenHash};
use bastion_core::{
    ApiKeyId, Clock, Email, Role, Scope, SessionId, SystemClock, Timestamp, UserId,
};
use bastion_http::{Authenticated, Edge, EdgeConfig, with_edge};
use bastion_store::sqlite::SqliteStore;
use bastion_store::{
    ApiKeyRecord, ApiKeyStore, CounterStore, SessionRecord, SessionStore, StoreError, Stores,
    UserRecord, UserStore, WindowCounts,
};
use tower::ServiceExt;

struct MemCounter(AtomicU64);

#[async_trait]
impl CounterStore for MemCounter {
    async fn hit(&self, _: &str, _: i64, _: Timestamp) -> Result<WindowCounts, StoreError> {
        // Stay far under any limit so every request takes the allowed path.
        let n = self.0.fetch_add(1, Ordering::Relaxed) % 10;
        Ok(WindowCounts {
            current: n + 1,
            previous: 0,
        })
    }
}

/// Auth's signing key (seed 00 01 … 1f) and its public half.
const SIGNING_KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const VERIFY_KEYS: &str = "k1:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";

fn edge(stores: Stores) -> Edge {
    let env: HashMap<String, String> = [
        ("JWT_VERIFY_KEYS".to_owned(), VERIFY_KEYS.to_owned()),
        (
            "ALLOWED_ORIGINS".to_owned(),
            "https://app.example.com".to_owned(),
        ),
        // Every request must take the allowed path, including with real counters.
        ("RATE_LIMIT_DEFAULT_IP".to_owned(), "1000000/60".to_owned()),
        (
            "RATE_LIMIT_DEFAULT_ACCOUNT".to_owned(),
            "1000000/60".to_owned(),
        ),
    ]
    .into_iter()
    .collect();
    Edge::new(
        EdgeConfig::from_env(&env).unwrap(),
        stores,
        Arc::new(SystemClock),
    )
}

async fn measure(name: &str, app: Router, iters: u32) {
    measure_with(name, app, iters, None).await;
}

async fn measure_with(name: &str, app: Router, iters: u32, bearer: Option<&str>) {
    let peer: SocketAddr = "203.0.113.1:5000".parse().unwrap();
    let mut samples = Vec::with_capacity(iters as usize);
    for _ in 0..iters {
        let mut req = http::Request::get("/noop").header("origin", "https://app.example.com");
        if let Some(token) = bearer {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let mut req = req.body(Body::empty()).unwrap();
        req.extensions_mut().insert(ConnectInfo(peer));
        let t = Instant::now();
        let res = app.clone().oneshot(req).await.unwrap();
        samples.push(t.elapsed());
        assert_eq!(res.status(), 204);
    }
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / iters;
    let pct = |p: u32| samples[((iters * p / 100) as usize).min(samples.len() - 1)];
    println!(
        "{name:<34} n={iters:<6} mean={mean:>10.1?} p50={:>10.1?} p95={:>10.1?}",
        pct(50),
        pct(95)
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let noop = || Router::new().route("/noop", get(|| async { http::StatusCode::NO_CONTENT }));
    let sqlite = Arc::new(SqliteStore::open_in_memory().unwrap());
    let mut mem = Stores::from_adapter(sqlite.clone());
    mem.counters = Arc::new(MemCounter(AtomicU64::new(0)));
    measure(
        "pipeline, in-memory counter",
        with_edge(noop(), edge(mem)),
        20_000,
    )
    .await;
    measure(
        "pipeline, SQLite counter",
        with_edge(noop(), edge(Stores::from_adapter(sqlite.clone()))),
        5_000,
    )
    .await;

    let (access, api_key) = credentials(&sqlite).await;
    let stores = Stores::from_adapter(sqlite);
    let authed = || {
        Router::new()
            .route("/noop", get(needs_read))
            .with_state(edge(stores.clone()))
    };
    measure_with(
        "Bearer access token, SQLite",
        with_edge(authed(), edge(stores.clone())),
        5_000,
        Some(&access),
    )
    .await;
    measure_with(
        "Bearer API key, SQLite",
        with_edge(authed(), edge(stores.clone())),
        5_000,
        Some(&api_key),
    )
    .await;
}

async fn needs_read(auth: Authenticated) -> http::StatusCode {
    match auth.require_scope(Scope::Read) {
        Ok(()) => http::StatusCode::NO_CONTENT,
        Err(_) => http::StatusCode::FORBIDDEN,
    }
}

/// A user with a session and an API key; returns the access token and the key.
async fn credentials(store: &SqliteStore) -> (String, String) {
    let now = SystemClock.now();
    let user = UserRecord {
        id: UserId::generate(),
        email: Email::parse("bench@example.com").unwrap(),
        display_name: None,
        password_hash: String::new(),
        roles: vec![Role::User],
        created_at: now,
        disabled: false,
        session_epoch: 0,
        email_verified: false,
    };
    store.create_user(&user).await.unwrap();
    let session = SessionRecord {
        id: SessionId::generate(),
        user_id: user.id.clone(),
        refresh_hash: OpaqueToken::generate().hash(),
        created_at: now,
        last_used_at: now,
        expires_at: now.plus_secs(3600),
        ip: "203.0.113.1".to_owned(),
        user_agent: "bench".to_owned(),
    };
    store.create_session(&session, 0).await.unwrap();
    let signer = bastion_http::config::parse_jwt_signer(&bastion_http::config::map_env(&[
        ("JWT_SIGNING_KEYS", SIGNING_KEYS),
        ("JWT_VERIFY_KEYS", VERIFY_KEYS),
    ]))
    .unwrap();
    let (access, _) = signer
        .issue(&user.id, &session.id, &["user".to_owned()], now)
        .unwrap();
    let key = format!("bst_{}", OpaqueToken::generate().expose());
    store
        .create_api_key(
            &ApiKeyRecord {
                id: ApiKeyId::generate(),
                user_id: user.id,
                name: "bench".to_owned(),
                hash: TokenHash::of(&key),
                prefix: key[..12].to_owned(),
                scopes: vec![Scope::Read],
                created_at: now,
                expires_at: now.plus_secs(3600),
                last_used_at: None,
            },
            25,
        )
        .await
        .unwrap();
    (access, key)
}
