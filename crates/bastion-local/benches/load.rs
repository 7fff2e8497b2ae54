//! Load harness: starts the real `bastion-local` binary on a free 127.0.0.1 port (fresh data
//! directory, rate limits raised so the limiter never answers instead of the route) and drives
//! it over keep-alive TCP connections with a bounded number of requests at bounded concurrency:
//! `GET /auth/health`, `POST /auth/login`, an authenticated `GET /auth/me` and a signed Stripe
//! delivery. Login is Argon2-bound, so the same binary also measures raw Argon2id hashes per
//! second with the server's parameters (`PasswordHasher`), one thread per core.
//!
//! Run with `cargo bench -p bastion-local --bench load` (release profile). `LOAD_SCALE`
//! (default 1) multiplies every request count; `LOAD_CONCURRENCY` (default 8) sets the
//! connections for the cheap routes; `LOAD_LOGIN_CONCURRENCY` (default two per core) the logins in
//! flight.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bastion_core::Password;
use bastion_core::crypto::PasswordHasher;
use bastion_core::crypto::password::Pepper;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const STRIPE_SECRET: &str = "whsec_load_harness_0123456789";
const PASSWORD: &str = "load harness passphrase 7 quartz";

/// The `bastion-local` child, killed (by its own PID) and its data directory removed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    data_dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_server() -> Server {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let data_dir = std::env::temp_dir().join(format!("bastion-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let raised = "1000000/60";
    let child = Command::new(env!("CARGO_BIN_EXE_bastion-local"))
        .env("BASTION_DATA_DIR", &data_dir)
        .env("BASTION_ADDR", addr.to_string())
        .env("RUST_LOG", "error")
        .env("STRIPE_WEBHOOK_SECRETS", STRIPE_SECRET)
        .env("RATE_LIMIT_LOGIN_ACCOUNT", raised)
        .env("RATE_LIMIT_LOGIN_IP", raised)
        .env("RATE_LIMIT_REGISTER_IP", raised)
        .env("RATE_LIMIT_DEFAULT_IP", raised)
        .env("RATE_LIMIT_DEFAULT_ACCOUNT", raised)
        .env("RATE_LIMIT_WEBHOOKS_IP", raised)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("bastion-local starts");
    Server {
        child,
        addr,
        data_dir,
    }
}

/// One keep-alive HTTP/1.1 connection; bastion-local answers with a Content-Length.
struct Conn {
    stream: BufReader<TcpStream>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).unwrap();
        Conn {
            stream: BufReader::new(stream),
        }
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.stream
            .get_mut()
            .write_all(&bytes)
            .await
            .expect("write");
        let mut line = String::new();
        self.stream.read_line(&mut line).await.expect("status line");
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut length = 0usize;
        loop {
            line.clear();
            self.stream.read_line(&mut line).await.expect("header");
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().expect("content-length");
            }
        }
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body).await.expect("body");
        (status, body)
    }
}

/// What one request of a scenario is: method, path, headers, body (built per request index).
type MakeRequest =
    dyn Fn(usize) -> (&'static str, String, Vec<(String, String)>, Vec<u8>) + Send + Sync;

struct Outcome {
    name: &'static str,
    requests: usize,
    concurrency: usize,
    ok: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Outcome {
    fn per_sec(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn pct(&self, p: usize) -> Duration {
        let n = self.latencies.len();
        self.latencies[(n * p / 100).min(n - 1)]
    }

    fn print(&self) {
        println!(
            "| {:<26} | {:>6} | {:>3} | {:>6} | {:>9.1} | {:>9.2?} | {:>9.2?} |",
            self.name,
            self.requests,
            self.concurrency,
            self.ok,
            self.per_sec(),
            self.pct(50),
            self.pct(99)
        );
    }
}

/// `requests` requests over `concurrency` connections; a request counts as ok on `expect`.
async fn run(
    name: &'static str,
    addr: SocketAddr,
    requests: usize,
    concurrency: usize,
    expect: u16,
    make: Arc<MakeRequest>,
) -> Outcome {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (next, make) = (next.clone(), make.clone());
        workers.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            let mut seen = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return seen;
                }
                let (method, path, headers, body) = make(i);
                let headers: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                let t = Instant::now();
                let (status, response) = conn.send(method, &path, &headers, &body).await;
                if status != expect && seen.iter().all(|(_, s)| *s == expect) {
                    eprintln!("{name}: {status} {}", String::from_utf8_lossy(&response));
                }
                seen.push((t.elapsed(), status));
            }
        }));
    }
    let mut latencies = Vec::new();
    let mut ok = 0;
    for w in workers {
        for (latency, status) in w.await.unwrap() {
            ok += usize::from(status == expect);
            latencies.push(latency);
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Outcome {
        name,
        requests,
        concurrency,
        ok,
        elapsed,
        latencies,
    }
}

/// Raw Argon2id: `total` hashes with the server's parameters spread over `threads` threads.
fn argon2_rate(total: usize, threads: usize) -> f64 {
    let hasher =
        Arc::new(PasswordHasher::new(Pepper::new(1, vec![7; 32]).unwrap(), vec![], None).unwrap());
    let password = Arc::new(Password::parse_existing(PASSWORD).unwrap());
    let stored = hasher.hash(&password).unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (hasher, password, stored, next) = (&hasher, &password, &stored, &next);
            s.spawn(move || {
                while next.fetch_add(1, Ordering::Relaxed) < total {
                    std::hint::black_box(hasher.verify(password, stored));
                }
            });
        }
    });
    total as f64 / started.elapsed().as_secs_f64()
}

async fn wait_healthy(addr: SocketAddr) {
    for _ in 0..200 {
        if let Ok(stream) = TcpStream::connect(addr).await {
            drop(stream);
            let (status, _) = Conn::open(addr)
                .await
                .send("GET", "/auth/health", &[], b"")
                .await;
            if status == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("bastion-local did not become healthy on {addr}");
}

/// Registers the load account; returns its access token.
async fn register(addr: SocketAddr, email: &str) -> String {
    let body = serde_json::json!({"email": email, "password": PASSWORD}).to_string();
    let json = [("content-type", "application/json")];
    let (status, response) = Conn::open(addr)
        .await
        .send("POST", "/auth/register", &json, body.as_bytes())
        .await;
    assert_eq!(
        status,
        201,
        "register: {}",
        String::from_utf8_lossy(&response)
    );
    let value: serde_json::Value = serde_json::from_slice(&response).unwrap();
    value["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let scale = env_usize("LOAD_SCALE", 1).max(1);
    let concurrency = env_usize("LOAD_CONCURRENCY", 8).max(1);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let logins = 40 * scale;

    // Raw Argon2id before and after the server runs (other load on the box drifts); their mean
    // is the reference for login. One hashing thread per core, the most verifies a second these
    // cores give (more threads only interleave them), whatever the number of logins in flight.
    let login_concurrency = env_usize("LOAD_LOGIN_CONCURRENCY", 2 * cores).max(1);
    let argon2_before = argon2_rate(logins, cores);
    let server = start_server();
    let addr = server.addr;
    // The client needs little CPU: one thread, so the server keeps the cores.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcomes = rt.block_on(async move {
        wait_healthy(addr).await;
        let email = "load@example.com";
        let token = register(addr, email).await;
        let mut out = Vec::new();
        let health: Arc<MakeRequest> = Arc::new(|_| ("GET", "/auth/health".into(), vec![], vec![]));
        out.push(
            run(
                "GET /auth/health",
                addr,
                5000 * scale,
                concurrency,
                200,
                health,
            )
            .await,
        );
        let bearer = format!("Bearer {token}");
        let me: Arc<MakeRequest> = Arc::new(move |_| {
            (
                "GET",
                "/auth/me".into(),
                vec![("authorization".into(), bearer.clone())],
                vec![],
            )
        });
        out.push(
            run(
                "GET /auth/me (Bearer)",
                addr,
                3000 * scale,
                concurrency,
                200,
                me,
            )
            .await,
        );
        let login_body = serde_json::json!({"email": email, "password": PASSWORD}).to_string();
        let login: Arc<MakeRequest> = Arc::new(move |_| {
            let headers = vec![("content-type".into(), "application/json".into())];
            (
                "POST",
                "/auth/login".into(),
                headers,
                login_body.clone().into_bytes(),
            )
        });
        // Two in flight per core, so a core never idles while a login waits on SQLite.
        out.push(
            run(
                "POST /auth/login",
                addr,
                logins,
                login_concurrency,
                200,
                login,
            )
            .await,
        );
        // The server checks Stripe's timestamp against its own (system) clock.
        let now = bastion_core::Clock::now(&bastion_core::SystemClock).secs();
        let stripe: Arc<MakeRequest> = Arc::new(move |i| {
            let body = serde_json::json!({
                "id": format!("evt_load{i}"), "type": "customer.updated", "created": now,
                "livemode": false, "data": {"object": {"id": format!("cus_load{i}")}},
            })
            .to_string()
            .into_bytes();
            let t = now;
            let signature = bastion_webhooks::verify::stripe_signature_header(
                STRIPE_SECRET.as_bytes(),
                t,
                &body,
            );
            let headers = vec![
                ("content-type".into(), "application/json".into()),
                ("stripe-signature".into(), signature),
            ];
            ("POST", "/webhooks/stripe".into(), headers, body)
        });
        out.push(
            run(
                "POST /webhooks/stripe",
                addr,
                2000 * scale,
                concurrency,
                200,
                stripe,
            )
            .await,
        );
        out
    });
    drop(server);
    let argon2_after = argon2_rate(logins, cores);
    let argon2 = (argon2_before + argon2_after) / 2.0;

    println!("cores (available_parallelism): {cores}");
    println!(
        "| scenario                   |  reqs  |  c  |   ok   |   req/s   |    p50    |    p99    |"
    );
    println!(
        "|----------------------------|--------|-----|--------|-----------|-----------|-----------|"
    );
    for o in &outcomes {
        o.print();
    }
    let login = outcomes
        .iter()
        .find(|o| o.name == "POST /auth/login")
        .unwrap();
    println!(
        "raw Argon2id verify ({cores} threads on {cores} cores, server parameters): {argon2_before:.2}/s before, {argon2_after:.2}/s after; login ({login_concurrency} in flight) {:.2}/s = {:.0}% of their mean",
        login.per_sec(),
        100.0 * login.per_sec() / argon2
    );
    if outcomes.iter().any(|o| o.ok != o.requests) {
        eprintln!("some requests did not get the expected status (see above)");
        std::process::exit(1);
    }
}
