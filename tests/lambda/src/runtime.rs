//! A stand-in for the Lambda Runtime API (`2018-06-01`) on 127.0.0.1: the function polls
//! `invocation/next`, posts a response (buffered, or streamed: see [`crate::stream`]) or an
//! error per invocation, or an init error. The test side queues events with `invoke` and waits
//! for the outcome (for a streamed response, until its prelude is in); so does the Lambda
//! Invoke API stand-in ([`crate::invoke`]) through a clone of the handle.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::stream::{self, Streamed};

const PREFIX: &str = "/2018-06-01/runtime";
/// Lambda's cap on a buffered response payload.
const MAX_BUFFERED_BYTES: usize = 6 * 1024 * 1024;

/// What the function answered for one invocation.
#[derive(Debug)]
pub enum Outcome {
    /// A buffered response document.
    Response(Value),
    /// A streamed response, its prelude read and its body still arriving.
    Streamed(Streamed),
    /// A streamed response API Gateway could not pass on (it answers 502), and why.
    Fault(String),
    /// An invocation error.
    Error(Value),
}

struct Pending {
    id: String,
    event: Value,
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    first_poll: OnceLock<Instant>,
    polled: Notify,
    init_error: Mutex<Option<InitError>>,
}

/// What the function posted to `init/error`.
#[derive(Debug, Clone)]
pub struct InitError {
    /// The `Lambda-Runtime-Function-Error-Type` header, if sent.
    pub error_type: Option<String>,
    pub body: Value,
    /// The body exactly as received.
    pub raw: String,
}

/// The running stand-in; the server stops when the test's runtime ends. A clone is another
/// handle on the same function's queue.
#[derive(Clone)]
pub struct RuntimeApi {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    sender: mpsc::UnboundedSender<Pending>,
    next_id: Arc<AtomicU64>,
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(receiver),
            waiting: Mutex::new(HashMap::new()),
            first_poll: OnceLock::new(),
            polled: Notify::new(),
            init_error: Mutex::new(None),
        });
        let app = Router::new()
            .route(&format!("{PREFIX}/invocation/next"), get(next))
            .route(
                &format!("{PREFIX}/invocation/{{id}}/response"),
                post(respond),
            )
            .route(&format!("{PREFIX}/invocation/{{id}}/error"), post(fail))
            .route(&format!("{PREFIX}/init/error"), post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            addr,
            shared,
            sender,
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// Queues `event` and waits for the function's answer (or `None` after `timeout`).
    pub async fn invoke_within(&self, event: Value, timeout: Duration) -> Option<Outcome> {
        let id = format!(
            "00000000-0000-4000-8000-{:012}",
            self.next_id.fetch_add(1, Ordering::Relaxed)
        );
        let (tx, rx) = oneshot::channel();
        self.shared.waiting.lock().unwrap().insert(id.clone(), tx);
        self.sender.send(Pending { id, event }).unwrap();
        tokio::time::timeout(timeout, rx).await.ok()?.ok()
    }

    /// Queues `event` and waits up to 30 s for the answer, failing the test otherwise.
    pub async fn invoke(&self, event: Value) -> Outcome {
        self.invoke_within(event, Duration::from_secs(30))
            .await
            .expect("the function answered the invocation within 30 s")
    }

    /// When the function first asked for an invocation: the end of its init.
    pub async fn first_poll_within(&self, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.shared.polled.notified();
            if let Some(at) = self.shared.first_poll.get() {
                return Some(*at);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            let _ = tokio::time::timeout(left, notified).await;
        }
    }

    /// The body of an `init/error` post, if the function made one.
    pub fn init_error(&self) -> Option<Value> {
        self.init_error_report().map(|e| e.body)
    }

    /// The whole `init/error` post (header and body), if the function made one.
    pub fn init_error_report(&self) -> Option<InitError> {
        self.shared.init_error.lock().unwrap().clone()
    }
}

// The stand-in plays the Lambda service, whose deadline header is real wall-clock time.
#[allow(clippy::disallowed_methods)]
async fn next(State(shared): State<Arc<Shared>>) -> Response {
    if shared.first_poll.set(Instant::now()).is_ok() {
        shared.polled.notify_waiters();
    }
    let Some(pending) = shared.queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() + 30_000)
        .unwrap_or(0);
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        headers.insert(name, HeaderValue::from_str(&value).unwrap());
    };
    put("lambda-runtime-aws-request-id", pending.id);
    put("lambda-runtime-deadline-ms", deadline.to_string());
    put(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:bastion-test".to_owned(),
    );
    put(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned(),
    );
    put("content-type", "application/json".to_owned());
    (StatusCode::OK, headers, pending.event.to_string()).into_response()
}

fn settle(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    match shared.waiting.lock().unwrap().remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

fn json_or_text(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn respond(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !stream::is_streaming(&headers) {
        return match axum::body::to_bytes(body, MAX_BUFFERED_BYTES).await {
            Ok(body) => {
                settle(&shared, &id, Outcome::Response(json_or_text(&body))).into_response()
            }
            Err(_) => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        };
    }
    let mut status = StatusCode::BAD_REQUEST;
    let read_to_end = stream::receive(&headers, body, |answer| {
        let outcome = match answer {
            Ok(streamed) => Outcome::Streamed(streamed),
            Err(fault) => Outcome::Fault(fault),
        };
        status = settle(&shared, &id, outcome);
    })
    .await;
    if read_to_end {
        return status.into_response();
    }
    // The client went away: the connection is closed under the function's stream, which is how
    // its next write learns of it.
    (status, [(header::CONNECTION, "close")]).into_response()
}

async fn fail(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    settle(&shared, &id, Outcome::Error(json_or_text(&body)))
}

async fn init_error(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let error_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    *shared.init_error.lock().unwrap() = Some(InitError {
        error_type,
        body: json_or_text(&body),
        raw: String::from_utf8_lossy(&body).into_owned(),
    });
    StatusCode::ACCEPTED
}
