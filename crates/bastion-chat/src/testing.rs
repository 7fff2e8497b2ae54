//! A fake OpenAI-compatible Chat Completions server for tests, on 127.0.0.1:0. It checks the
//! Authorization header, the model and the message order, records what it was sent, and
//! answers from a script (200, 429, 500, slow, malformed) or, with no script, with a reply that
//! quotes the last user message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// The key the fake expects as `Authorization: Bearer <key>`.
pub const FAKE_KEY: &str = "sk-test-fake-llm-key";
/// Models the fake accepts.
pub const FAKE_MODELS: [&str; 2] = ["fake-small", "fake-large"];

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 200 with this content and usage 11/7.
    Reply(String),
    /// A bare error status with an OpenAI-style error body.
    Status(u16),
    /// Waits this long, then answers like the default.
    Slow(Duration),
    /// 200 with a body that is not a completion.
    Malformed,
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Answer>,
    seen: Vec<Value>,
    refused: Vec<String>,
}

/// The running fake; dropping it leaves the server running until the test's runtime ends.
#[derive(Clone)]
pub struct FakeLlm {
    pub base_url: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeLlm {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/v1/chat/completions", post(complete))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base_url: format!("http://{addr}/v1"),
            inner,
        }
    }

    /// Queues answers for the next requests, in order.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.inner.lock().unwrap().script.extend(answers);
    }

    /// Every well-formed request body received, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.inner.lock().unwrap().seen.clone()
    }

    /// Why requests were refused (bad key, unknown model, bad order), in order.
    pub fn refusals(&self) -> Vec<String> {
        self.inner.lock().unwrap().refused.clone()
    }

    /// The messages of the `i`th request as `(role, content)` pairs.
    pub fn messages_of(&self, i: usize) -> Vec<(String, String)> {
        self.requests()[i]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["role"].as_str().unwrap().to_owned(),
                    m["content"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

/// What the fake answers when no script is queued.
pub fn default_reply(last_user: &str) -> String {
    format!("fake answer to: {last_user}")
}

fn refuse(inner: &Mutex<Inner>, status: StatusCode, why: String) -> Response {
    inner.lock().unwrap().refused.push(why.clone());
    (status, Json(json!({"error": {"message": why}}))).into_response()
}

/// System first (optional), then user/assistant alternating, ending with a user message.
fn order_is_valid(messages: &[Value]) -> bool {
    let roles: Vec<&str> = messages.iter().filter_map(|m| m["role"].as_str()).collect();
    if roles.len() != messages.len() || roles.is_empty() {
        return false;
    }
    let body = if roles[0] == "system" {
        &roles[1..]
    } else {
        &roles[..]
    };
    !body.is_empty()
        && body
            .iter()
            .enumerate()
            .all(|(i, r)| *r == if i % 2 == 0 { "user" } else { "assistant" })
        && body.last() == Some(&"user")
}

async fn complete(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("Bearer {FAKE_KEY}") {
        return refuse(&inner, StatusCode::UNAUTHORIZED, "bad authorization".into());
    }
    let model = body["model"].as_str().unwrap_or("");
    if !FAKE_MODELS.contains(&model) {
        return refuse(
            &inner,
            StatusCode::NOT_FOUND,
            format!("unknown model {model}"),
        );
    }
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    if !order_is_valid(&messages) {
        return refuse(&inner, StatusCode::BAD_REQUEST, "bad message order".into());
    }
    let last_user = messages
        .last()
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_owned();
    let answer = {
        let mut guard = inner.lock().unwrap();
        guard.seen.push(body.clone());
        guard.script.pop_front()
    };
    let reply = |content: String| {
        Json(json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
        }))
        .into_response()
    };
    match answer {
        None => reply(default_reply(&last_user)),
        Some(Answer::Reply(content)) => reply(content),
        Some(Answer::Status(code)) => (
            StatusCode::from_u16(code).unwrap(),
            Json(json!({"error": {"message": "scripted failure", "type": "server_error"}})),
        )
            .into_response(),
        Some(Answer::Slow(pause)) => {
            tokio::time::sleep(pause).await;
            reply(default_reply(&last_user))
        }
        Some(Answer::Malformed) => (
            StatusCode::OK,
            [("content-type", "application/json")],
            r#"{"choices": "surprise"}"#,
        )
            .into_response(),
    }
}
