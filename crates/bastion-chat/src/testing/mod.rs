//! Fake model servers for tests, on 127.0.0.1:0: an OpenAI-compatible Chat Completions one
//! ([`FakeLlm::start`]) and an Anthropic Messages one ([`FakeLlm::start_anthropic`]). Each
//! checks its format's headers, model and body as strictly as the real API (tool shapes, role
//! order, every tool call answered by a result in the right place), records what it accepted
//! and why it refused the rest, and answers from a script (text, tool calls, 429/5xx, slow,
//! malformed, streamed slowly, stalled, broken mid-stream) or, with no script, with a reply
//! that quotes the last user text. A request with `stream: true` is answered in the format's
//! server-sent events (see `stream`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod anthropic;
mod openai;
mod stream;

pub use stream::{Breakage, ChunkGate};

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use serde_json::Value;

/// The key the fakes expect (`Authorization: Bearer <key>` or `x-api-key: <key>`).
pub const FAKE_KEY: &str = "sk-test-fake-llm-key";
/// Models the fakes accept.
pub const FAKE_MODELS: [&str; 2] = ["fake-small", "fake-large"];

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 200 with this text and usage 11/7.
    Reply(String),
    /// 200 with these tool calls (the fake numbers their ids `call_1`, `call_2`, … across the
    /// server's life), after the text if any, and usage 11/7. The arguments are the text an
    /// OpenAI-format model sends; the Anthropic fake sends them as the `input` value they
    /// parse to (or, when they are not JSON, as a JSON string, so a malformed call still
    /// reaches the loop as one).
    Tools {
        text: Option<String>,
        calls: Vec<(String, String)>,
    },
    /// A bare error status with the format's error body.
    Status(u16),
    /// Waits this long, then answers like the default.
    Slow(Duration),
    /// 200 with a body that is not a completion.
    Malformed,
    /// 200 with exactly this body (`text/event-stream` when the request streams).
    Body(String),
    /// The default reply's usage and these text pieces, with `pause` before each after the
    /// first (a model that streams slowly); buffered, the pieces joined.
    Streamed {
        chunks: Vec<String>,
        pause: Duration,
    },
    /// The default reply's opening and its first `after_chunks` text chunks (at most all of
    /// them, never its end), then nothing, the connection held open until the client goes
    /// away; buffered, no answer at all.
    Stall { after_chunks: usize },
    /// A stream that breaks after its first text chunk; buffered, like `Malformed`.
    Broken(Breakage),
}

/// Which API a fake speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenAi,
    Anthropic,
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Answer>,
    seen: Vec<Value>,
    refused: Vec<String>,
    /// The last tool call id handed out.
    calls: u64,
}

/// A request the fake refuses, as the real API would: the status and why.
struct Refusal {
    status: StatusCode,
    why: String,
}

impl Refusal {
    fn new(status: StatusCode, why: impl Into<String>) -> Self {
        Self {
            status,
            why: why.into(),
        }
    }

    fn bad(why: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, why)
    }
}

/// What an accepted request's answer is made of, before the format renders it.
struct Reply {
    model: String,
    text: Option<String>,
    /// `(id, name, arguments text)`.
    calls: Vec<(String, String, String)>,
}

/// The running fake; dropping it leaves the server running until the test's runtime ends.
#[derive(Clone)]
pub struct FakeLlm {
    /// The `LLM_BASE_URL` that reaches it.
    pub base_url: String,
    pub format: Format,
    inner: Arc<Mutex<Inner>>,
    streams: Arc<stream::Streams>,
}

impl FakeLlm {
    /// A Chat Completions server; its base URL ends in `/v1`.
    pub async fn start() -> Self {
        Self::serve(Format::OpenAi, "/v1/chat/completions", "/v1").await
    }

    /// A Messages server; its base URL is the root (`/v1/messages` is appended).
    pub async fn start_anthropic() -> Self {
        Self::serve(Format::Anthropic, "/v1/messages", "").await
    }

    async fn serve(format: Format, route: &str, base_path: &str) -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let streams = Arc::new(stream::Streams::default());
        let app = Router::new().route(route, post(complete)).with_state((
            format,
            inner.clone(),
            streams.clone(),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Each event goes out as it is written, as a streaming server sends it, not held
        // back by Nagle until the previous one is acknowledged.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base_url: format!("http://{addr}{base_path}"),
            format,
            inner,
            streams,
        }
    }

    /// Streamed response bodies not yet dropped by their client (a stalled stream stays
    /// open until the client goes away).
    pub fn open_connections(&self) -> usize {
        self.streams.open()
    }

    /// Waits until no streamed body is open; panics after 10 s rather than hang a test.
    pub async fn until_connections_closed(&self) {
        self.streams.until_closed().await;
    }

    /// Text chunks written so far, over the server's life.
    pub fn chunks_sent(&self) -> u64 {
        self.streams.sent()
    }

    /// Waits until `n` text chunks have been written; panics after 10 s.
    pub async fn until_chunks_sent(&self, n: u64) {
        self.streams.until_sent(n).await;
    }

    /// When each text chunk was written, in order, over the server's life.
    pub fn chunk_times(&self) -> Vec<std::time::Instant> {
        self.streams.sent_at()
    }

    /// From now on, each stream's second and later text chunks wait for one
    /// [`ChunkGate::allow_one`] each: a client that buffered instead of streaming never sees
    /// the first chunk, so never opens the gate.
    pub fn gate_chunks(&self) -> ChunkGate {
        self.streams.gate()
    }

    /// The variables a test sets to use this fake: `LLM_PROVIDER`, `LLM_BASE_URL`,
    /// `LLM_API_KEY` and `LLM_MODEL` (`fake-small`).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let provider = match self.format {
            Format::OpenAi => "openai",
            Format::Anthropic => "anthropic",
        };
        vec![
            ("LLM_PROVIDER", provider.to_owned()),
            ("LLM_BASE_URL", self.base_url.clone()),
            ("LLM_API_KEY", FAKE_KEY.to_owned()),
            ("LLM_MODEL", FAKE_MODELS[0].to_owned()),
        ]
    }

    /// Queues answers for the next requests, in order.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.inner.lock().unwrap().script.extend(answers);
    }

    /// Every well-formed request body received, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.inner.lock().unwrap().seen.clone()
    }

    /// Why requests were refused (bad key, unknown model, bad order…), in order.
    pub fn refusals(&self) -> Vec<String> {
        self.inner.lock().unwrap().refused.clone()
    }

    /// The `i`th request's transcript as `(role, text)`, the same in both formats: `system`
    /// (Anthropic's top-level prompt included), `user`, `assistant` (its text, empty when it
    /// only called tools) and `tool` (a result's content).
    pub fn transcript_of(&self, i: usize) -> Vec<(String, String)> {
        let body = &self.requests()[i];
        match self.format {
            Format::OpenAi => openai::transcript(body),
            Format::Anthropic => anthropic::transcript(body),
        }
    }

    /// The same as [`Self::transcript_of`] (its older name).
    pub fn messages_of(&self, i: usize) -> Vec<(String, String)> {
        self.transcript_of(i)
    }

    /// The tool results the `i`th request carried, in order, as `(tool_call_id, content)`.
    pub fn tool_results_of(&self, i: usize) -> Vec<(String, String)> {
        let body = &self.requests()[i];
        match self.format {
            Format::OpenAi => openai::tool_results(body),
            Format::Anthropic => anthropic::tool_results(body),
        }
    }

    /// The assistant tool calls the `i`th request carried back, in order, as
    /// `(id, name, arguments text)` (Anthropic's `input` serialised).
    pub fn tool_calls_of(&self, i: usize) -> Vec<(String, String, String)> {
        let body = &self.requests()[i];
        match self.format {
            Format::OpenAi => openai::tool_calls(body),
            Format::Anthropic => anthropic::tool_calls(body),
        }
    }

    /// The names of the tools the `i`th request offered, in order.
    pub fn tools_of(&self, i: usize) -> Vec<String> {
        let body = &self.requests()[i];
        let tools = body["tools"].as_array().cloned().unwrap_or_default();
        tools
            .iter()
            .map(|t| match self.format {
                Format::OpenAi => t["function"]["name"].as_str().unwrap().to_owned(),
                Format::Anthropic => t["name"].as_str().unwrap().to_owned(),
            })
            .collect()
    }
}

/// What the fake answers when no script is queued.
pub fn default_reply(last_user: &str) -> String {
    format!("fake answer to: {last_user}")
}

type Shared = (Format, Arc<Mutex<Inner>>, Arc<stream::Streams>);

async fn complete(
    State((format, inner, streams)): State<Shared>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let body = match accept(format, &inner, &headers, &raw) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    let streamed = body["stream"] == true;
    let last_user = match format {
        Format::OpenAi => openai::last_user_text(&body),
        Format::Anthropic => anthropic::last_user_text(&body),
    };
    let answer = {
        let mut guard = inner.lock().unwrap();
        guard.seen.push(body);
        guard.script.pop_front()
    };
    let text = |t: String| Reply {
        model: model.clone(),
        text: Some(t),
        calls: Vec::new(),
    };
    let answer = match answer {
        Some(a) if streamed => {
            match stream_only(format, &streams, a, text(default_reply(&last_user))) {
                Ok(response) => return response,
                Err(a) => Some(a),
            }
        }
        Some(a) => match buffered_only(format, a).await {
            Ok(response) => return response,
            Err(a) => Some(a),
        },
        None => None,
    };
    let (reply, chunks) = match answer {
        None => (text(default_reply(&last_user)), None),
        Some(Answer::Reply(content)) => (text(content), None),
        Some(Answer::Tools { text, calls }) => {
            let calls = numbered(&inner, calls);
            let reply = Reply {
                model: model.clone(),
                text,
                calls,
            };
            (reply, None)
        }
        Some(Answer::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap();
            return error_response(format, status, "scripted failure");
        }
        Some(Answer::Slow(pause)) => {
            tokio::time::sleep(pause).await;
            (text(default_reply(&last_user)), None)
        }
        Some(Answer::Streamed { chunks, pause }) => (text(chunks.concat()), Some((chunks, pause))),
        Some(other) => panic!("{other:?} is answered before"),
    };
    if streamed {
        let (chunks, pause) = chunks.unwrap_or_else(|| {
            let words = reply.text.as_deref().map(stream::words).unwrap_or_default();
            (words, Duration::ZERO)
        });
        let chunks = chunks.into_iter().filter(|c| !c.is_empty()).collect();
        let pieces = stream::render(format, &reply, chunks);
        return stream::respond(streams, pieces, pause, stream::End::Close);
    }
    let rendered = match format {
        Format::OpenAi => openai::render(&reply),
        Format::Anthropic => anthropic::render(&reply),
    };
    json_response(StatusCode::OK, rendered.to_string())
}

/// The body of a request the format's checks accept, or the refusal (recorded).
fn accept(
    format: Format,
    inner: &Mutex<Inner>,
    headers: &HeaderMap,
    raw: &[u8],
) -> Result<Value, Box<Response>> {
    let checked = serde_json::from_slice::<Value>(raw)
        .map_err(|_| Refusal::bad("the body is not JSON"))
        .and_then(|body| {
            match format {
                Format::OpenAi => openai::check(headers, &body),
                Format::Anthropic => anthropic::check(headers, &body),
            }?;
            Ok(body)
        });
    checked.map_err(|refusal| {
        inner.lock().unwrap().refused.push(refusal.why.clone());
        Box::new(error_response(format, refusal.status, &refusal.why))
    })
}

/// The calls with the ids the fake hands out: `call_1`, `call_2`, … over its life.
fn numbered(inner: &Mutex<Inner>, calls: Vec<(String, String)>) -> Vec<(String, String, String)> {
    let mut guard = inner.lock().unwrap();
    calls
        .into_iter()
        .map(|(name, arguments)| {
            guard.calls += 1;
            (format!("call_{}", guard.calls), name, arguments)
        })
        .collect()
}

/// The answers a streamed request gets in its own way; any other is handed back.
fn stream_only(
    format: Format,
    streams: &Arc<stream::Streams>,
    answer: Answer,
    default: Reply,
) -> Result<Response, Answer> {
    let (pieces, end) = match answer {
        Answer::Malformed => (stream::malformed(format), stream::End::Close),
        Answer::Body(body) => (vec![stream::Piece::Raw(body)], stream::End::Close),
        Answer::Stall { after_chunks } => {
            let words = stream::words(default.text.as_deref().unwrap_or_default());
            let pieces = stream::render(format, &default, words);
            (
                stream::cut_after_text(pieces, after_chunks),
                stream::End::Hold,
            )
        }
        Answer::Broken(how) => {
            let words = stream::words(default.text.as_deref().unwrap_or_default());
            let pieces = stream::render(format, &default, words);
            (stream::broken(format, pieces, &how), stream::End::Close)
        }
        other => return Err(other),
    };
    Ok(stream::respond(
        streams.clone(),
        pieces,
        Duration::ZERO,
        end,
    ))
}

/// The answers a buffered request gets in its own way; any other is handed back.
async fn buffered_only(format: Format, answer: Answer) -> Result<Response, Answer> {
    match answer {
        Answer::Malformed | Answer::Broken(_) => Ok(malformed_response(format)),
        Answer::Body(body) => Ok(json_response(StatusCode::OK, body)),
        // A buffered call has no chunk to stall after: it never gets an answer.
        Answer::Stall { .. } => std::future::pending().await,
        other => Err(other),
    }
}

fn malformed_response(format: Format) -> Response {
    let body = match format {
        Format::OpenAi => r#"{"choices": "surprise"}"#,
        Format::Anthropic => r#"{"type": "message", "content": "surprise"}"#,
    };
    json_response(StatusCode::OK, body.to_owned())
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [("content-type", "application/json")], body).into_response()
}

fn error_response(format: Format, status: StatusCode, message: &str) -> Response {
    let body = match format {
        Format::OpenAi => openai::error_body(status, message),
        Format::Anthropic => anthropic::error_body(status, message),
    };
    json_response(status, body.to_string())
}

/// `^[a-zA-Z0-9_-]{1,64}$`, the tool-name rule of both APIs.
fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Refuses any key of `object` outside `allowed`, naming it as the APIs do.
fn only_keys(object: &Value, allowed: &[&str], what: &str) -> Result<(), Refusal> {
    let Some(map) = object.as_object() else {
        return Err(Refusal::bad(format!("{what} is not an object")));
    };
    // The first unexpected key in sorted order, so the refusal reads the same every time.
    match map.keys().filter(|k| !allowed.contains(&k.as_str())).min() {
        Some(extra) => Err(Refusal::bad(format!("{what}: unexpected field {extra}"))),
        None => Ok(()),
    }
}

/// A JSON Schema a tool may declare: an object schema.
fn object_schema(schema: &Value) -> bool {
    schema.is_object() && schema["type"] == "object"
}
