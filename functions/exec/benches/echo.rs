//! Bench binary for `echo hi` end to end, always with the toolset's `echo` (the program exec
//! runs, built by `scripts/toolset`): a bare `std::process::Command` spawn, the sandbox runner
//! with every layer this host offers, and `POST /exec/run` through the full router (edge, auth,
//! rate limits on SQLite, audit write). Run with `cargo bench -p bastion-exec`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use bastion_sandbox::{ChildLimits, Layers, RunSpec, Runner, SandboxDir};
use bastion_store::Stores;
use bastion_store::sqlite::SqliteStore;
use http_body_util::BodyExt;
use tower::ServiceExt;

mod support;

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let n = u32::try_from(samples.len()).unwrap();
    let mean = samples.iter().sum::<Duration>() / n;
    let pct = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    println!(
        "{name:<38} n={n:<5} mean={mean:>10.1?} p50={:>10.1?} p95={:>10.1?}",
        pct(50),
        pct(95)
    );
}

fn bare(echo: &Path, iters: usize) {
    let samples = (0..iters)
        .map(|_| {
            let t = Instant::now();
            let out = std::process::Command::new(echo).arg("hi").output().unwrap();
            let d = t.elapsed();
            assert_eq!(out.stdout, b"hi\n");
            d
        })
        .collect();
    report("bare std::process::Command", samples);
}

fn layered(echo: &Path, root: &Path, iters: usize) {
    let layers = Layers::probe(root);
    println!("layers: {:?}", layers.named());
    // Landlock lets the child execute only system programs and, as exec configures it, the
    // toolset's directory.
    let tools = echo.parent().expect("the toolset's echo is in a directory");
    let runner = Runner::new(layers, ChildLimits::default()).with_program_dir(tools);
    let dir = SandboxDir::open_or_create(root, "bench", true).unwrap();
    let argv = vec!["echo".to_owned(), "hi".to_owned()];
    let samples = (0..iters)
        .map(|_| {
            let t = Instant::now();
            let out = runner
                .run(&RunSpec {
                    program: echo,
                    argv: &argv,
                    stdin: b"",
                    sandbox: dir.path(),
                    timeout: Duration::from_secs(10),
                    output_cap: 65536,
                    output_hard_cap: 4 << 20,
                })
                .unwrap();
            let d = t.elapsed();
            assert_eq!(out.stdout, b"hi\n");
            d
        })
        .collect();
    report("sandbox runner, all layers", samples);
}

async fn routed(root: &Path, iters: usize) {
    let stores = Stores::from_adapter(Arc::new(SqliteStore::open_in_memory().unwrap()));
    let workspaces = Arc::new(bastion_exec::workspace::DirWorkspaces::new(
        root.join("workspaces"),
    ));
    let app = support::app(&support::env(&[]), stores, workspaces, &root.join("runs"));
    let peer: SocketAddr = "203.0.113.1:5000".parse().unwrap();
    let send = |uri: &str, token: Option<&str>, body: &str| {
        let mut req = http::Request::post(uri).header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let mut req = req.body(Body::from(body.to_owned())).unwrap();
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req)
    };
    let res = send(
        "/auth/register",
        None,
        r#"{"email":"bench@example.com","password":"correct horse battery staple 42"}"#,
    )
    .await
    .unwrap();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let token = v["access_token"].as_str().unwrap().to_owned();
    let mut samples = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        let res = send("/exec/run", Some(&token), r#"{"argv":["echo","hi"]}"#)
            .await
            .unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        samples.push(t.elapsed());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    report("POST /exec/run through the router", samples);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let root = std::env::temp_dir().join(format!("bastion-bench-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    // The binary the routed run resolves: its configuration names no EXEC_TOOLS_DIR, so the
    // host toolset build.
    let echo = bastion_sandbox::Toolset::open(&bastion_sandbox::built_tools_dir())
        .unwrap()
        .program("echo")
        .expect("the toolset has echo: run scripts/toolset");
    println!("echo: {}", echo.display());
    bare(&echo, 500);
    layered(&echo, &root, 500);
    routed(&root, 300).await;
    let _ = std::fs::remove_dir_all(&root);
}
