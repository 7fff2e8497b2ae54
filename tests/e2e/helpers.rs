//! `TestApp`: the Bastion routes on a fresh SQLite store (or given stores) with a manual clock,
//! put together by one builder, and a small request vocabulary so tests read as sentences.

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bastion_auth::AuthState;
use bastion_chat::{ChatSetup, RuntimeMode};
use bastion_chat_fn::ChatState;
use bastion_core::envelope::{ContentSealer, LocalContentKeys};
use bastion_core::{Clock as _, ManualClock, Timestamp};
use bastion_exec::in_process::InProcessTools;
use bastion_exec::purge::InProcess;
use bastion_exec::workspace::DirWorkspaces;
use bastion_exec::{ExecConfig, ExecState};
use bastion_http::email::{LinkBase, OutboxSender};
use bastion_http::{Edge, EdgeConfig};
use bastion_store::Stores;
use bastion_store::sqlite::SqliteStore;
use bastion_webhooks::{WebhooksConfig, WebhooksState};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

pub const START: Timestamp = Timestamp(1_800_000_000);
/// Where the test app's mailed links point.
pub const LINK_BASE: &str = "https://app.example.com";
pub const PASSWORD: &str = "correct horse battery staple 42";
/// Auth's Ed25519 signing key (a 32-byte seed) and its public half, the verifiers' key.
pub const JWT_KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const JWT_PUBLIC_B64: &str = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
pub const LEGACY_KEY: &[u8] = b"the-old-systems-hmac-key";
/// A 32-byte key for naming sandboxes in tests.
pub const EXEC_KEY_B64: &str = "ZXhlYy1zYW5kYm94LWtleS1mb3ItdGVzdHMtb25seSE=";
/// The key-encryption key of the chat apps' content sealing (`CONTENT_KEK` format).
pub const TEST_CONTENT_KEK: &str = "e2e:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

/// Keys that sign as `kid` with the Ed25519 seed `seed` (a forger's, or auth's own), for `issuer`
/// and `audience`.
pub fn signer(
    issuer: &str,
    audience: &str,
    kid: &str,
    seed: &[u8],
) -> bastion_core::crypto::JwtKeys {
    let public = bastion_core::crypto::jwt::public_key_of(kid, seed).unwrap();
    bastion_core::crypto::JwtKeys::signer(
        issuer,
        audience,
        vec![(kid.to_owned(), seed.to_vec())],
        vec![(kid.to_owned(), public.to_vec())],
    )
    .unwrap()
}

pub fn base_env() -> HashMap<String, String> {
    use base64::Engine;
    let legacy = base64::engine::general_purpose::STANDARD.encode(LEGACY_KEY);
    [
        ("JWT_SIGNING_KEYS", format!("k1:{JWT_KEY_B64}")),
        ("JWT_VERIFY_KEYS", format!("k1:{JWT_PUBLIC_B64}")),
        ("JWT_ISSUER", "bastion-test".to_owned()),
        ("JWT_AUDIENCE", "bastion-test-api".to_owned()),
        (
            "PASSWORD_PEPPER",
            "1:ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=".to_owned(),
        ),
        ("LEGACY_PASSWORD_HMAC_KEY", legacy),
        ("ALLOWED_ORIGINS", "https://app.example.com".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[derive(Clone)]
pub struct TestApp {
    pub router: Router,
    pub clock: ManualClock,
    pub stores: Stores,
    /// The adapter's ports without content sealing: what is really stored.
    pub unsealed: Stores,
    pub ip: SocketAddr,
    parts: Arc<Parts>,
    db: Option<Arc<TempDb>>,
    /// The chat part's count of running streamed turns.
    streamed: Option<bastion_chat_fn::StreamedTurns>,
}

/// What an app was built from, kept so `replacing` rebuilds the same app on other ports.
struct Parts {
    env: HashMap<String, String>,
    chat: bool,
    sandbox: Option<TempTree>,
    /// Where auth's mails land (`TestApp::outbox`).
    outbox: TempTree,
}

/// A directory tree (the exec sandbox root) removed when the last `TestApp` clone drops.
struct TempTree(PathBuf);

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh SQLite database file, removed with its `-wal`/`-shm` files when the last `TestApp`
/// clone drops. Stores that are not a file (DynamoDB on moto) have none.
struct TempDb(PathBuf);

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

/// A unique path in the temporary directory.
fn temp_path(prefix: &str, suffix: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "{prefix}{}{suffix}",
        bastion_core::RequestId::generate()
    ))
}

/// How a `TestApp` is put together: `TestApp::builder()`, then any of `env`, `stores`, `chat`
/// and `exec`, then `build`. The auth routes are always there; chat and exec are optional parts
/// served under the same edge, as `bastion-local` serves them.
pub struct TestAppBuilder {
    env: HashMap<String, String>,
    stores: Option<Stores>,
    chat: bool,
    exec: Option<Vec<(String, String)>>,
}

impl TestAppBuilder {
    /// The configuration (`base_env()` unless given), including any chat settings (`LLM_*`,
    /// `PLAN_*`, `CHAT_RATE_LIMIT`) and webhook secrets.
    pub fn env(mut self, env: HashMap<String, String>) -> Self {
        self.env = env;
        self
    }

    /// These stores (e.g. DynamoDB on moto) instead of a fresh SQLite file.
    pub fn stores(mut self, stores: Stores) -> Self {
        self.stores = Some(stores);
        self
    }

    /// Adds the chat and webhooks routes with one chat engine: plans come from Stripe billing
    /// and channel messages are answered by the engine. Content is sealed as in every
    /// deployment, with the local key format.
    pub fn chat(mut self) -> Self {
        self.chat = true;
        self
    }

    /// Adds the exec routes with a fresh sandbox root and `extra` exec settings (e.g.
    /// `EXEC_ALLOWED_COMMANDS`).
    pub fn exec(mut self, extra: &[(&str, &str)]) -> Self {
        let extra = extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        self.exec = Some(extra.collect());
        self
    }

    pub async fn build(self) -> TestApp {
        let mut env = self.env;
        let sandbox = self.exec.map(|extra| {
            let root = temp_path("bastion-e2e-sandbox-", "");
            env.insert("EXEC_SANDBOX_KEY".to_owned(), EXEC_KEY_B64.to_owned());
            env.insert(
                "SANDBOX_ROOT".to_owned(),
                root.join("runs").display().to_string(),
            );
            env.extend(extra);
            TempTree(root)
        });
        let (stores, db) = match self.stores {
            Some(stores) => (stores, None),
            None => {
                let path = temp_path("bastion-e2e-", ".db");
                let store = Arc::new(SqliteStore::open(&path).unwrap());
                (Stores::from_adapter(store), Some(Arc::new(TempDb(path))))
            }
        };
        let parts = Parts {
            env,
            chat: self.chat,
            sandbox,
            outbox: TempTree(temp_path("bastion-e2e-outbox-", "")),
        };
        TestApp::assemble(Arc::new(parts), stores, ManualClock::new(START), db)
    }
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The error envelope's code, panicking with the whole body when there is none.
    pub fn code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {}", self.text))
    }

    /// Asserts the exact envelope (the request id must match `X-Request-Id`).
    pub fn assert_error(&self, status: u16, code: &str, message: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        let request_id = self.header("x-request-id").unwrap().to_owned();
        assert_eq!(
            self.body,
            json!({"error": {"code": code, "message": message, "request_id": request_id}})
        );
    }
}

/// A request `TestApp::call` prepared, sent when awaited.
pub struct Call<'a> {
    app: &'a TestApp,
    request: http::request::Builder,
    body: Option<Value>,
}

impl Call<'_> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request = self.request.header(name, value);
        self
    }
}

impl<'a> IntoFuture for Call<'a> {
    type Output = TestResponse;
    type IntoFuture = Pin<Box<dyn Future<Output = TestResponse> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        let request = match self.body {
            Some(b) => self
                .request
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => self.request.body(Body::empty()),
        };
        Box::pin(self.app.send(request.unwrap()))
    }
}

/// A registered user with a live session.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub access: String,
    pub refresh: String,
}

impl TestApp {
    /// The auth routes on a fresh SQLite store with `base_env()`.
    pub async fn new() -> Self {
        Self::builder().build().await
    }

    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            env: base_env(),
            stores: None,
            chat: false,
            exec: None,
        }
    }

    /// The one place an app is wired: one edge over `unsealed` (sealed when chat is part of
    /// it), each part's state from its function's own constructor, every route under the edge.
    fn assemble(
        parts: Arc<Parts>,
        unsealed: Stores,
        clock: ManualClock,
        db: Option<Arc<TempDb>>,
    ) -> Self {
        let env = &parts.env;
        // Sealed as in every deployment (chat content, TOTP secrets), with the local key format.
        let keys = LocalContentKeys::parse(TEST_CONTENT_KEK).unwrap();
        let sealer = ContentSealer::new(Arc::new(keys), Arc::new(clock.clone()));
        let stores = unsealed.clone().with_content_sealing(Arc::new(sealer));
        let edge = Edge::new(
            EdgeConfig::from_env(env).unwrap(),
            stores.clone(),
            Arc::new(clock.clone()),
        );
        let outbox = OutboxSender::new(parts.outbox.0.clone(), Arc::new(clock.clone()));
        let mut auth = AuthState::from_env(edge.clone(), env).unwrap().with_email(
            Arc::new(outbox),
            LinkBase::parse("EMAIL_LINK_BASE", LINK_BASE).unwrap(),
        );
        let mut exec = None;
        if let Some(TempTree(root)) = &parts.sandbox {
            let config = ExecConfig::from_env(env, root.join("runs")).unwrap();
            let workspaces = Arc::new(DirWorkspaces::new(root.join("workspaces")));
            let state = ExecState::new(edge.clone(), config, workspaces).unwrap();
            // As bastion-local wires it: account deletion purges the workspace in-process.
            auth = auth.with_account_files(Arc::new(InProcess(state.clone())));
            exec = Some(state);
        }
        let mut routes = bastion_auth::routes(auth);
        let mut streamed = None;
        if parts.chat {
            let chat = ChatSetup::from_env(env, RuntimeMode::Lambda).unwrap();
            let mut engine = chat.into_engine(edge.stores.clone(), edge.clock.clone());
            // With exec part of the app, the agent's tools run in it, as in bastion-local.
            if let Some(exec) = &exec {
                engine = engine.with_tools(Arc::new(InProcessTools(exec.clone())));
            }
            let webhooks = WebhooksState::new(
                edge.clone(),
                WebhooksConfig::from_env(env).unwrap(),
                Arc::new(engine.clone()),
                bastion_webhooks::outbound::http_client().unwrap(),
            );
            let state = ChatState::new(edge.clone(), engine);
            streamed = Some(state.streamed.clone());
            routes = routes
                .merge(bastion_chat_fn::routes(state))
                .merge(bastion_webhooks::routes(webhooks));
        }
        if let Some(exec) = exec {
            routes = routes.merge(bastion_exec::routes(exec));
        }
        Self {
            router: bastion_http::with_edge(routes, edge),
            clock,
            stores,
            unsealed,
            ip: "203.0.113.7:40000".parse().unwrap(),
            parts,
            db,
            streamed,
        }
    }

    /// How many streamed chat turns are still running (0 without the chat part).
    pub fn streamed_turns_running(&self) -> usize {
        self.streamed
            .as_ref()
            .map_or(0, bastion_chat_fn::StreamedTurns::running)
    }

    /// The same app (same parts, clock and database) with some ports replaced, e.g. a failing
    /// counter store.
    pub fn replacing(&self, f: impl FnOnce(&mut Stores)) -> Self {
        let mut stores = self.unsealed.clone();
        f(&mut stores);
        Self::assemble(
            self.parts.clone(),
            stores,
            self.clock.clone(),
            self.db.clone(),
        )
    }

    /// The SQLite database file, for tests that read what is really on disk.
    pub fn database_path(&self) -> Option<PathBuf> {
        self.db.as_ref().map(|d| d.0.clone())
    }

    /// Every mail auth sent, oldest first, as the outbox wrote it (`{"to","subject","text"}`).
    pub fn outbox(&self) -> Vec<Value> {
        let Ok(dir) = std::fs::read_dir(&self.parts.outbox.0) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = dir
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap())
            .collect()
    }

    /// The token of the newest mailed link to `page` (`verify-email`, `reset-password`) sent to `to`.
    pub fn mailed_token(&self, to: &str, page: &str) -> String {
        let prefix = format!("{LINK_BASE}/{page}#token=");
        self.outbox()
            .iter()
            .rev()
            .filter(|m| m["to"] == to)
            .find_map(|m| {
                let text = m["text"].as_str()?;
                let line = text.lines().find(|l| l.starts_with(&prefix))?;
                Some(line[prefix.len()..].to_owned())
            })
            .unwrap_or_else(|| panic!("no {page} link mailed to {to}: {:?}", self.outbox()))
    }

    /// The code an authenticator holding `secret` (base32) shows `steps` time steps from now.
    pub fn totp_code(&self, secret: &str, steps: i64) -> String {
        use bastion_core::Clock as _;
        use bastion_core::crypto::totp::{TotpSecret, step_at};
        let step = step_at(self.clock.now()).checked_add_signed(steps).unwrap();
        TotpSecret::from_base32(secret).unwrap().code_at(step)
    }

    /// Where the exec part keeps users' workspaces (one directory per owner), if it has one.
    pub fn workspace_root(&self) -> Option<PathBuf> {
        let TempTree(root) = self.parts.sandbox.as_ref()?;
        Some(root.join("workspaces"))
    }

    /// The same app as seen from another client address.
    pub fn seen_from(&self, ip: &str) -> Self {
        let mut app = self.clone();
        app.ip = format!("{ip}:40000").parse().unwrap();
        app
    }

    /// The response as the router gives it, its body unread (a stream is read as it comes).
    pub async fn open(&self, req: Request<Body>) -> http::Response<Body> {
        let mut req = req;
        req.extensions_mut().insert(ConnectInfo(self.ip));
        self.router.clone().oneshot(req).await.unwrap()
    }

    pub async fn send(&self, req: Request<Body>) -> TestResponse {
        let mut req = req;
        req.extensions_mut().insert(ConnectInfo(self.ip));
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        TestResponse {
            status,
            headers,
            body,
            text,
        }
    }

    /// A request as a test user's client sends it: `token` as a bearer token, `body` as JSON.
    /// Awaiting it sends it; `.header(..)` first adds a header (a cookie, for instance).
    pub fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Call<'_> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("user-agent", "bastion-tests/1.0");
        if let Some(t) = token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        Call {
            app: self,
            request,
            body,
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> TestResponse {
        self.call(Method::POST, path, None, Some(body)).await
    }

    pub async fn get(&self, path: &str, token: &str) -> TestResponse {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// `POST /exec/run` with `body` as `token`.
    pub async fn exec(&self, token: &str, body: Value) -> TestResponse {
        self.call(Method::POST, "/exec/run", Some(token), Some(body))
            .await
    }

    /// A raw-body request to the file routes.
    pub async fn file(&self, method: Method, path: &str, token: &str, body: &[u8]) -> TestResponse {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/octet-stream")
            .body(Body::from(body.to_vec()))
            .unwrap();
        self.send(req).await
    }

    pub async fn register(&self, email: &str) -> TestResponse {
        self.post(
            "/auth/register",
            json!({"email": email, "password": PASSWORD}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> TestResponse {
        self.post("/auth/login", json!({"email": email, "password": password}))
            .await
    }

    pub async fn refresh(&self, token: &str) -> TestResponse {
        self.post("/auth/refresh", json!({"refresh_token": token}))
            .await
    }

    /// Registers `email` and returns its session, asserting success.
    pub async fn signed_up(&self, email: &str) -> Session {
        let r = self.register(email).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        session_of(&r)
    }

    /// Logs in and returns the new session, asserting success.
    pub async fn signed_in(&self, email: &str) -> Session {
        let r = self.login(email, PASSWORD).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        session_of(&r)
    }

    /// Kinds of the user's audit events, newest first.
    pub async fn audit_kinds(&self, user_id: &str) -> Vec<String> {
        let user = bastion_core::UserId::parse(user_id).unwrap();
        let page = self
            .stores
            .audit
            .list_for_user(&user, None, 100, self.clock.now())
            .await
            .unwrap()
            .unwrap();
        page.items
            .iter()
            .map(|e| e.kind.as_str().to_owned())
            .collect()
    }

    /// Today's (by the test clock) audit events of `kind`, newest first, with or without a
    /// user: events about unknown callers are only reachable by day.
    pub async fn audit_of_kind(&self, kind: &str) -> Vec<bastion_core::audit::AuditEvent> {
        let now = self.clock.now();
        let page = self
            .stores
            .audit_days
            .list_for_day(now, None, 100, now)
            .await
            .unwrap()
            .unwrap();
        page.items
            .into_iter()
            .filter(|e| e.kind.as_str() == kind)
            .collect()
    }
}

/// (user id, detail) of each event, for exact comparisons.
pub fn subjects_and_details(
    events: &[bastion_core::audit::AuditEvent],
) -> Vec<(Option<String>, Option<String>)> {
    events
        .iter()
        .map(|e| {
            (
                e.user_id.as_ref().map(|u| u.as_str().to_owned()),
                e.detail.clone(),
            )
        })
        .collect()
}

pub fn session_of(r: &TestResponse) -> Session {
    Session {
        user_id: r.body["user"]["id"].as_str().unwrap().to_owned(),
        access: r.body["access_token"].as_str().unwrap().to_owned(),
        refresh: r.body["refresh_token"].as_str().unwrap().to_owned(),
    }
}
