//! `TestApp`: the auth router on a fresh SQLite store with a manual clock, and a small request
//! vocabulary so tests read as sentences.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bastion_auth::AuthState;
use bastion_core::envelope::{ContentSealer, LocalContentKeys};
use bastion_core::{ManualClock, Timestamp};
use bastion_http::{Edge, EdgeConfig};
use bastion_store::Stores;
use bastion_store::sqlite::SqliteStore;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

pub const START: Timestamp = Timestamp(1_800_000_000);
pub const PASSWORD: &str = "correct horse battery staple 42";
pub const JWT_KEY_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const LEGACY_KEY: &[u8] = b"the-old-systems-hmac-key";

pub fn base_env() -> HashMap<String, String> {
    use base64::Engine;
    let legacy = base64::engine::general_purpose::STANDARD.encode(LEGACY_KEY);
    [
        ("JWT_KEYS", format!("k1:{JWT_KEY_B64}")),
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
    _db: Arc<TempDb>,
    _sandbox: Option<Arc<TempTree>>,
}

/// A directory tree (the exec sandbox root) removed when the last `TestApp` clone drops.
struct TempTree(std::path::PathBuf);

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A database file removed when the last `TestApp` clone drops; `None` for stores that are not
/// a file (DynamoDB on moto), which once removed `-wal`/`-shm` files of the working directory.
struct TempDb(Option<std::path::PathBuf>);

impl Drop for TempDb {
    fn drop(&mut self) {
        let Some(path) = &self.0 else { return };
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
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

/// The key-encryption key of the chat apps' content sealing (`CONTENT_KEK` format).
pub const TEST_CONTENT_KEK: &str = "e2e:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

/// A registered user with a live session.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub access: String,
    pub refresh: String,
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_env(base_env()).await
    }

    pub async fn with_env(env: HashMap<String, String>) -> Self {
        let path = std::env::temp_dir().join(format!(
            "bastion-e2e-{}.db",
            bastion_core::RequestId::generate()
        ));
        let store = Arc::new(SqliteStore::open(&path).unwrap());
        Self::with_stores(env, Stores::from_adapter(store), TempDb(Some(path)))
    }

    /// The auth router on the given stores (e.g. DynamoDB on moto).
    pub fn on_stores(stores: Stores) -> Self {
        Self::with_stores(base_env(), stores, TempDb(None))
    }

    fn with_stores(env: HashMap<String, String>, stores: Stores, db: TempDb) -> Self {
        let clock = ManualClock::new(START);
        let edge = Edge::new(
            EdgeConfig::from_env(&env).unwrap(),
            stores.clone(),
            Arc::new(clock.clone()),
        );
        let state = AuthState::from_env(edge, &env).unwrap();
        Self {
            router: bastion_auth::router(state),
            clock,
            unsealed: stores.clone(),
            stores,
            ip: "203.0.113.7:40000".parse().unwrap(),
            _db: Arc::new(db),
            _sandbox: None,
        }
    }

    /// The auth, chat and webhooks routes under one edge with one chat engine, as
    /// `bastion-local` serves them: plans come from Stripe billing and channel messages are
    /// answered by the engine. `env` also carries the chat configuration (`LLM_*`, `PLAN_*`,
    /// `CHAT_RATE_LIMIT`) and any webhook secrets.
    pub async fn with_chat(env: HashMap<String, String>) -> Self {
        let path = std::env::temp_dir().join(format!(
            "bastion-e2e-{}.db",
            bastion_core::RequestId::generate()
        ));
        let store = Arc::new(SqliteStore::open(&path).unwrap());
        Self::with_chat_on(env, Stores::from_adapter(store), TempDb(Some(path)))
    }

    /// `with_chat` on the given stores (e.g. DynamoDB on moto).
    pub fn with_chat_on_stores(env: HashMap<String, String>, stores: Stores) -> Self {
        Self::with_chat_on(env, stores, TempDb(None))
    }

    fn with_chat_on(env: HashMap<String, String>, stores: Stores, db: TempDb) -> Self {
        let mut app = Self::with_stores(env.clone(), stores, db);
        // Chat content is sealed as in every deployment, with the local key format.
        let keys = LocalContentKeys::parse(TEST_CONTENT_KEK).unwrap();
        let sealer = ContentSealer::new(Arc::new(keys), Arc::new(app.clock.clone()));
        app.stores = app.stores.clone().with_content_sealing(Arc::new(sealer));
        let edge = Edge::new(
            EdgeConfig::from_env(&env).unwrap(),
            app.stores.clone(),
            Arc::new(app.clock.clone()),
        );
        let auth_state = AuthState::from_env(edge.clone(), &env).unwrap();
        let chat =
            bastion_chat::ChatSetup::from_env(&env, bastion_chat::RuntimeMode::Lambda).unwrap();
        let engine = chat.into_engine(app.stores.clone(), Arc::new(app.clock.clone()));
        let webhooks_state = bastion_webhooks::WebhooksState::new(
            edge.clone(),
            bastion_webhooks::WebhooksConfig::from_env(&env).unwrap(),
            Arc::new(engine.clone()),
            bastion_webhooks::outbound::http_client().unwrap(),
        );
        let chat_state = bastion_chat_fn::ChatState {
            edge: edge.clone(),
            engine,
        };
        app.router = bastion_http::with_edge(
            bastion_auth::routes(auth_state)
                .merge(bastion_chat_fn::routes(chat_state))
                .merge(bastion_webhooks::routes(webhooks_state)),
            edge,
        );
        app
    }

    /// The same app with some ports replaced (e.g. a failing counter store).
    pub fn replacing(&self, f: impl FnOnce(&mut Stores)) -> Self {
        let mut stores = self.stores.clone();
        f(&mut stores);
        let mut app = Self::with_stores(base_env(), stores, TempDb(None));
        app._db = self._db.clone();
        app.clock = self.clock.clone();
        app
    }

    /// The same app as seen from another client address.
    pub fn seen_from(&self, ip: &str) -> Self {
        let mut app = self.clone();
        app.ip = format!("{ip}:40000").parse().unwrap();
        app
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

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> TestResponse {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("user-agent", "bastion-tests/1.0");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        };
        self.send(req.unwrap()).await
    }

    /// A request with extra headers (cookies, for instance).
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("user-agent", "bastion-tests/1.0");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        };
        self.send(req.unwrap()).await
    }

    pub async fn post(&self, path: &str, body: Value) -> TestResponse {
        self.call(Method::POST, path, None, Some(body)).await
    }

    pub async fn get(&self, path: &str, token: &str) -> TestResponse {
        self.call(Method::GET, path, Some(token), None).await
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

use bastion_core::Clock as _;

/// A 32-byte key for naming sandboxes in tests.
pub const EXEC_KEY_B64: &str = "ZXhlYy1zYW5kYm94LWtleS1mb3ItdGVzdHMtb25seSE=";

impl TestApp {
    /// The auth and exec routes under one edge, with a fresh sandbox root and `extra` exec
    /// settings (e.g. `EXEC_ALLOWED_COMMANDS`).
    pub async fn with_exec(extra: &[(&str, &str)]) -> Self {
        let mut env = base_env();
        let root = std::env::temp_dir().join(format!(
            "bastion-e2e-sandbox-{}",
            bastion_core::RequestId::generate()
        ));
        env.insert("EXEC_SANDBOX_KEY".to_owned(), EXEC_KEY_B64.to_owned());
        env.insert(
            "SANDBOX_ROOT".to_owned(),
            root.join("runs").display().to_string(),
        );
        for (k, v) in extra {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        let mut app = Self::with_env(env.clone()).await;
        let edge = Edge::new(
            EdgeConfig::from_env(&env).unwrap(),
            app.stores.clone(),
            Arc::new(app.clock.clone()),
        );
        let auth_state = AuthState::from_env(edge.clone(), &env).unwrap();
        app._sandbox = Some(Arc::new(TempTree(root.clone())));
        let exec = bastion_exec::ExecConfig::from_env(&env, root.join("runs")).unwrap();
        let workspaces = Arc::new(bastion_exec::workspace::DirWorkspaces::new(
            root.join("workspaces"),
        ));
        let exec_state = bastion_exec::ExecState::new(edge.clone(), exec, workspaces).unwrap();
        app.router = bastion_http::with_edge(
            bastion_auth::routes(auth_state).merge(bastion_exec::routes(exec_state)),
            edge,
        );
        app
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
}
