//! Bench binary: what the durable workspace adds to `POST /exec/run` (`echo hi`), against the
//! local moto server (`BASTION_TEST_DYNAMODB_ENDPOINT`, S3 and DynamoDB): an empty, a 100 KiB
//! (10 files) and a 1 MiB (100 files) workspace, each with a cold instance (nothing kept: a new
//! exec state per run) and a warm one (the same user's previous run kept its copy). Reports
//! time per run and the S3 and DynamoDB requests each run made, counted by SDK interceptors;
//! the baseline is the same route on a store that holds nothing and makes no request.
//! Run with `cargo bench -p bastion-exec --bench workspace` (moto running).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::config::{Credentials, Region, SharedInterceptor};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bastion_exec::workspace::{S3Workspaces, StoredFile, WorkspaceError, WorkspaceStore};
use bastion_sandbox::SandboxPath;
use bastion_store::conformance::RequestCounter;
use bastion_store::dynamodb::create_table;
use bastion_store::{DynamoStore, Stores};
use http_body_util::BodyExt;
use tower::ServiceExt;

mod support;

/// The baseline: a workspace store that holds nothing and never makes a request.
struct Nothing;

#[async_trait]
impl WorkspaceStore for Nothing {
    async fn list(&self, _: &str) -> Result<Vec<StoredFile>, WorkspaceError> {
        Ok(Vec::new())
    }
    async fn read(
        &self,
        _: &str,
        _: &SandboxPath,
    ) -> Result<Option<(Vec<u8>, String)>, WorkspaceError> {
        Ok(None)
    }
    async fn write(&self, _: &str, _: &SandboxPath, _: Vec<u8>) -> Result<String, WorkspaceError> {
        Ok(String::new())
    }
    async fn delete(&self, _: &str, _: &SandboxPath) -> Result<bool, WorkspaceError> {
        Ok(false)
    }
    async fn purge(&self, _: &str) -> Result<u64, WorkspaceError> {
        Ok(0)
    }
}

/// The auth and exec routes under one edge, as a fresh instance would have them.
fn app(stores: &Stores, workspaces: Arc<dyn WorkspaceStore>) -> Router {
    let root = std::env::temp_dir().join(format!("bastion-ws-bench-{}", std::process::id()));
    let env = support::env(&[("SANDBOX_ROOT", root.to_str().unwrap())]);
    support::app(&env, stores.clone(), workspaces, &std::env::temp_dir())
}

async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> serde_json::Value {
    let peer: SocketAddr = "203.0.113.1:5000".parse().unwrap();
    let mut req = http::Request::builder().method(method).uri(uri);
    req = req.header(
        "content-type",
        if method == "PUT" {
            "application/octet-stream"
        } else {
            "application/json"
        },
    );
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let mut req = req.body(Body::from(body)).unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    assert!(
        status.is_success(),
        "{uri}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
}

struct Clients {
    stores: Stores,
    s3: S3Workspaces,
    s3_count: RequestCounter,
    ddb_count: RequestCounter,
}

async fn clients() -> Clients {
    let endpoint = std::env::var("BASTION_TEST_DYNAMODB_ENDPOINT")
        .expect("BASTION_TEST_DYNAMODB_ENDPOINT is not set: start moto (see scripts/test)");
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await;
    let ddb_count = RequestCounter::default();
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(SharedInterceptor::new(ddb_count.clone()))
            .build(),
    );
    let table = format!("bastion-ws-bench-{}", std::process::id());
    create_table(&ddb, &table).await.unwrap();
    let s3_count = RequestCounter::default();
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .interceptor(SharedInterceptor::new(s3_count.clone()))
            .build(),
    );
    let bucket = format!("bastion-ws-bench-{}", std::process::id());
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    Clients {
        stores: Stores::from_adapter(Arc::new(DynamoStore::new(ddb, table))),
        s3: S3Workspaces::new(s3, bucket, "alias/bastion-bench".to_owned()),
        s3_count,
        ddb_count,
    }
}

/// Runs `echo hi` `iters` times; `fresh` builds a new instance (nothing kept) for each run.
async fn measure(
    name: &str,
    c: &Clients,
    workspaces: Arc<dyn WorkspaceStore>,
    token: &str,
    iters: usize,
    fresh: bool,
) {
    let mut instance = app(&c.stores, workspaces.clone());
    send(
        &instance,
        "POST",
        "/exec/run",
        Some(token),
        br#"{"argv":["echo","hi"]}"#.to_vec(),
    )
    .await;
    let (mut samples, mut s3, mut ddb) = (Vec::new(), 0, 0);
    for _ in 0..iters {
        if fresh {
            instance = app(&c.stores, workspaces.clone());
        }
        c.s3_count.take();
        c.ddb_count.take();
        let t = Instant::now();
        let body = send(
            &instance,
            "POST",
            "/exec/run",
            Some(token),
            br#"{"argv":["echo","hi"]}"#.to_vec(),
        )
        .await;
        samples.push(t.elapsed());
        assert_eq!(body["stdout"], "hi\n");
        s3 += c.s3_count.take();
        ddb += c.ddb_count.take();
    }
    samples.sort();
    let n = u32::try_from(samples.len()).unwrap();
    let mean = samples.iter().sum::<Duration>() / n;
    println!(
        "{name:<34} n={n:<3} mean={mean:>9.1?} p50={:>9.1?} S3/run={:.1} DynamoDB/run={:.1}",
        samples[samples.len() / 2],
        s3 as f64 / iters as f64,
        ddb as f64 / iters as f64,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let c = clients().await;
    let s3: Arc<dyn WorkspaceStore> = Arc::new(c.s3.clone());
    let sizes: [(&str, usize, usize); 3] = [
        ("empty", 0, 0),
        ("100 KiB / 10 files", 10, 10 * 1024),
        ("1 MiB / 100 files", 100, 10 * 1024),
    ];
    let registrar = app(&c.stores, s3.clone());
    for (i, (label, files, size)) in sizes.into_iter().enumerate() {
        let email = format!(
            r#"{{"email":"bench{i}@example.com","password":"correct horse battery staple 42"}}"#
        );
        let v = send(
            &registrar,
            "POST",
            "/auth/register",
            None,
            email.into_bytes(),
        )
        .await;
        let token = v["access_token"].as_str().unwrap().to_owned();
        for f in 0..files {
            send(
                &registrar,
                "PUT",
                &format!("/exec/files/d/f{f:03}"),
                Some(&token),
                vec![b'x'; size],
            )
            .await;
        }
        if i == 0 {
            measure(
                "baseline (no store), warm",
                &c,
                Arc::new(Nothing),
                &token,
                20,
                false,
            )
            .await;
        }
        measure(&format!("{label}, cold"), &c, s3.clone(), &token, 10, true).await;
        measure(&format!("{label}, warm"), &c, s3.clone(), &token, 20, false).await;
    }
}
