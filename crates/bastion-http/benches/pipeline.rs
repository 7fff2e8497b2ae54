//! Bench binary for the edge pipeline on a no-op route: request id, client IP, per-IP limit,
//! envelope, CORS and security headers. Once with an in-memory counter (pipeline overhead
//! alone), once with SQLite counters (the local store). Run with `cargo bench -p bastion-http`.
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
use bastion_core::{SystemClock, Timestamp};
use bastion_http::{Edge, EdgeConfig, with_edge};
use bastion_store::sqlite::SqliteStore;
use bastion_store::{CounterStore, StoreError, Stores, WindowCounts};
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

fn edge(stores: Stores) -> Edge {
    let env: HashMap<String, String> = [
        (
            "JWT_KEYS".to_owned(),
            "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
        ),
        (
            "ALLOWED_ORIGINS".to_owned(),
            "https://app.example.com".to_owned(),
        ),
        // Every request must take the allowed path, including with real counters.
        ("RATE_LIMIT_DEFAULT_IP".to_owned(), "1000000/60".to_owned()),
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
    let peer: SocketAddr = "203.0.113.1:5000".parse().unwrap();
    let mut samples = Vec::with_capacity(iters as usize);
    for _ in 0..iters {
        let mut req = http::Request::get("/noop")
            .header("origin", "https://app.example.com")
            .body(Body::empty())
            .unwrap();
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
        with_edge(noop(), edge(Stores::from_adapter(sqlite))),
        5_000,
    )
    .await;
}
