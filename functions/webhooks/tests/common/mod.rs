//! `WebhookApp`: the webhooks router on a fresh SQLite store with a manual clock, a scripted
//! reply port, a recording audit log, and fake Telegram Bot API / Messenger Send API servers
//! on 127.0.0.1:0 that capture what the function sends.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::routing::post;
use bastion_core::audit::AuditEvent;
use bastion_core::{ManualClock, Owner, RequestId, Timestamp, UserId};
use bastion_http::{Edge, EdgeConfig};
use bastion_store::sqlite::SqliteStore;
use bastion_store::{AuditStore, Page, StoreError, Stores};
use bastion_webhooks::{Replier, ReplyError, WebhooksConfig, WebhooksState};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tower::ServiceExt;

pub const START: Timestamp = Timestamp(1_800_000_000);
pub const TELEGRAM_SECRET: &str = "tg-secret_0123456789";
pub const BOT_TOKEN: &str = "123456:AAbbCCddEEff";
pub const FB_VERIFY: &str = "fb-verify-token";
pub const FB_APP_SECRET: &str = "fb-app-secret-0123";
pub const FB_PAGE_TOKEN: &str = "EAAGpage-token";
pub const STRIPE_SECRET: &str = "whsec_current_0123456789";
pub const STRIPE_OLD_SECRET: &str = "whsec_previous_987654321";

/// One request a fake platform API received.
#[derive(Debug, Clone)]
pub struct Captured {
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
}

/// A fake Bot API / Send API: records every POST and answers with a settable status.
#[derive(Clone)]
pub struct FakeApi {
    pub base: String,
    captured: Arc<Mutex<Vec<Captured>>>,
    status: Arc<AtomicU16>,
}

async fn capture(
    State(api): State<FakeApi>,
    uri: http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, axum::Json<Value>) {
    api.captured.lock().unwrap().push(Captured {
        path: uri.path().to_owned(),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let status = StatusCode::from_u16(api.status.load(Ordering::SeqCst)).unwrap();
    (status, axum::Json(json!({"ok": status.is_success()})))
}

impl FakeApi {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let api = FakeApi {
            base: format!("http://{addr}"),
            captured: Arc::default(),
            status: Arc::new(AtomicU16::new(200)),
        };
        let app = Router::new()
            .fallback(post(capture))
            .with_state(api.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        api
    }

    pub fn captured(&self) -> Vec<Captured> {
        self.captured.lock().unwrap().clone()
    }

    pub fn answer_with(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
}

/// A scripted reply port: answers `You said: <text>` unless told otherwise, and records
/// every call.
#[derive(Default)]
pub struct FakeReplier {
    pub calls: Mutex<Vec<(Owner, String)>>,
    pub script: Mutex<VecDeque<Result<String, ReplyError>>>,
    /// When set, each call announces itself on `entered` and waits for `release`.
    pub gate: Mutex<Option<(Arc<Notify>, Arc<Notify>)>>,
}

#[async_trait]
impl Replier for FakeReplier {
    async fn reply(
        &self,
        owner: &Owner,
        text: &str,
        _delivery: &str,
        _request_id: &RequestId,
    ) -> Result<String, ReplyError> {
        self.calls
            .lock()
            .unwrap()
            .push((owner.clone(), text.to_owned()));
        let gate = self.gate.lock().unwrap().clone();
        if let Some((entered, release)) = gate {
            entered.notify_one();
            release.notified().await;
        }
        let scripted = self.script.lock().unwrap().pop_front();
        scripted.unwrap_or_else(|| Ok(format!("You said: {text}")))
    }
}

impl FakeReplier {
    pub fn calls(&self) -> Vec<(Owner, String)> {
        self.calls.lock().unwrap().clone()
    }

    pub fn then(&self, outcome: Result<String, ReplyError>) {
        self.script.lock().unwrap().push_back(outcome);
    }
}

/// Forwards to the real audit store and keeps a copy of every event, so tests can see
/// events about no account (rejected deliveries are keyed by IP).
pub struct RecordingAudit {
    inner: Arc<dyn AuditStore>,
    pub events: Mutex<Vec<AuditEvent>>,
}

#[async_trait]
impl AuditStore for RecordingAudit {
    async fn append(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.inner.append(event).await?;
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }

    async fn list_for_user(
        &self,
        user: &UserId,
        cursor: Option<&str>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Option<Page<AuditEvent>>, StoreError> {
        self.inner.list_for_user(user, cursor, limit, now).await
    }
}

pub struct WebhookApp {
    pub router: Router,
    pub clock: ManualClock,
    pub stores: Stores,
    pub replier: Arc<FakeReplier>,
    pub audit: Arc<RecordingAudit>,
    pub telegram: FakeApi,
    pub messenger: FakeApi,
    pub ip: SocketAddr,
    /// The state behind `router` and the environment it was built from, for rotation tests.
    pub state: WebhooksState,
    pub env: HashMap<String, String>,
    db: std::path::PathBuf,
}

impl Drop for WebhookApp {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.db.display()));
        }
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the exact error envelope.
    pub fn assert_error(&self, status: u16, code: &str, message: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        let request_id = self.header("x-request-id").unwrap().to_owned();
        assert_eq!(
            self.body,
            json!({"error": {"code": code, "message": message, "request_id": request_id}})
        );
    }

    pub fn assert_ok(&self, status: &str) {
        assert_eq!(self.status, StatusCode::OK, "body: {}", self.text);
        assert_eq!(self.body, json!({ "status": status }));
    }
}

/// Every platform configured against the fake APIs.
pub fn full_env(telegram: &FakeApi, messenger: &FakeApi) -> HashMap<String, String> {
    [
        (
            "JWT_VERIFY_KEYS",
            "k1:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",
        ),
        ("TELEGRAM_WEBHOOK_SECRET", TELEGRAM_SECRET),
        ("TELEGRAM_BOT_TOKEN", BOT_TOKEN),
        ("TELEGRAM_API_BASE", &telegram.base),
        ("FACEBOOK_VERIFY_TOKEN", FB_VERIFY),
        ("FACEBOOK_APP_SECRET", FB_APP_SECRET),
        ("FACEBOOK_PAGE_ACCESS_TOKEN", FB_PAGE_TOKEN),
        ("FACEBOOK_GRAPH_BASE", &messenger.base),
        (
            "STRIPE_WEBHOOK_SECRETS",
            &format!("{STRIPE_SECRET},{STRIPE_OLD_SECRET}"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

impl WebhookApp {
    pub async fn new() -> Self {
        Self::with(|_| {}).await
    }

    /// An app whose environment `edit` may change (remove a secret, add an allowlist…).
    pub async fn with(edit: impl FnOnce(&mut HashMap<String, String>)) -> Self {
        let telegram = FakeApi::start().await;
        let messenger = FakeApi::start().await;
        let mut env = full_env(&telegram, &messenger);
        edit(&mut env);
        let db =
            std::env::temp_dir().join(format!("bastion-webhooks-{}.db", RequestId::generate()));
        let mut stores = Stores::from_adapter(Arc::new(SqliteStore::open(&db).unwrap()));
        let audit = Arc::new(RecordingAudit {
            inner: stores.audit.clone(),
            events: Mutex::default(),
        });
        stores.audit = audit.clone();
        let clock = ManualClock::new(START);
        let edge = Edge::new(
            EdgeConfig::from_env(&env).unwrap(),
            stores.clone(),
            Arc::new(clock.clone()),
        );
        let replier = Arc::new(FakeReplier::default());
        let state = WebhooksState::new(
            edge,
            WebhooksConfig::from_env(&env).unwrap(),
            replier.clone(),
            bastion_webhooks::outbound::http_client().unwrap(),
        );
        Self {
            router: bastion_webhooks::router(state.clone()),
            state,
            env,
            clock,
            stores,
            replier,
            audit,
            telegram,
            messenger,
            ip: "198.51.100.9:40000".parse().unwrap(),
            db,
        }
    }

    pub async fn send(&self, req: Request<Body>) -> Reply {
        let mut req = req;
        if req
            .extensions()
            .get::<lambda_http::request::RequestContext>()
            .is_none()
        {
            req.extensions_mut().insert(ConnectInfo(self.ip));
        }
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    /// POSTs `body` bytes to `path` with `headers`.
    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut req = Request::post(path).header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req.body(Body::from(body.to_vec())).unwrap())
            .await
    }

    /// `detail` of every audit event, in order.
    pub fn audit_details(&self) -> Vec<String> {
        self.audit
            .events
            .lock()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{} {} {}",
                    e.kind.as_str(),
                    e.ip,
                    e.detail.as_deref().unwrap_or("-")
                )
            })
            .collect()
    }

    /// Creates an account and returns its id.
    pub async fn user(&self, email: &str) -> UserId {
        let user = bastion_store::UserRecord {
            id: UserId::generate(),
            email: bastion_core::Email::parse(email).unwrap(),
            display_name: None,
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
            roles: vec![bastion_core::Role::User],
            created_at: START,
            disabled: false,
            session_epoch: 0,
            email_verified: false,
        };
        self.stores.users.create_user(&user).await.unwrap();
        user.id
    }
}
