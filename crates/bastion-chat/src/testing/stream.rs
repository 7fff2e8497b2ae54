//! The fakes' streamed answers: a scripted answer rendered as the real wire's server-sent
//! events (Chat Completions chunks ending in `[DONE]`, or Messages events ending in
//! `message_stop`, tool arguments always split across several fragments), sent piece by
//! piece by a task that counts the chunks it wrote, can be held back by a gate, and counts
//! the response bodies still open until the client drops them.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use http_body_util::channel::{Channel, Sender};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, oneshot, watch};

use super::{Format, Reply};

/// How a streamed answer goes wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Breakage {
    /// After the first text chunk, a `data:` line that is not JSON.
    BadJson,
    /// After the first text chunk, the connection closes without `[DONE]`/`message_stop`.
    Truncated,
    /// After the first text chunk, an error of this type (`overloaded_error`…): Anthropic's
    /// `error` event, or the `{"error": …}` chunk some compatible servers send.
    ErrorEvent(String),
}

/// One piece of a streamed body.
pub(super) enum Piece {
    /// A text chunk: counted, gated and paced.
    Text(String),
    /// Framing that carries no answer text.
    Raw(String),
}

/// What the sender does after its last piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    Close,
    /// Keeps the connection open, sending nothing, until the client goes away.
    Hold,
}

/// What a test can watch of the streams a fake sends.
pub(super) struct Streams {
    open: watch::Sender<usize>,
    sent: watch::Sender<u64>,
    sent_at: Mutex<Vec<Instant>>,
    gate: Mutex<Option<Arc<Semaphore>>>,
}

impl Default for Streams {
    fn default() -> Self {
        Self {
            open: watch::Sender::new(0),
            sent: watch::Sender::new(0),
            sent_at: Mutex::new(Vec::new()),
            gate: Mutex::new(None),
        }
    }
}

/// Lets a gated fake send its next text chunk; see [`super::FakeLlm::gate_chunks`].
#[derive(Clone)]
pub struct ChunkGate(Arc<Semaphore>);

impl ChunkGate {
    /// One more text chunk may go.
    pub fn allow_one(&self) {
        self.0.add_permits(1);
    }
}

impl Streams {
    pub(super) fn open(&self) -> usize {
        *self.open.borrow()
    }

    pub(super) fn sent(&self) -> u64 {
        *self.sent.borrow()
    }

    pub(super) fn sent_at(&self) -> Vec<Instant> {
        self.sent_at.lock().unwrap().clone()
    }

    pub(super) fn gate(&self) -> ChunkGate {
        let gate = Arc::new(Semaphore::new(0));
        *self.gate.lock().unwrap() = Some(gate.clone());
        ChunkGate(gate)
    }

    pub(super) async fn until_sent(&self, n: u64) {
        let mut rx = self.sent.subscribe();
        wait(rx.wait_for(|sent| *sent >= n), "chunks to be sent").await;
    }

    pub(super) async fn until_closed(&self) {
        let mut rx = self.open.subscribe();
        wait(rx.wait_for(|open| *open == 0), "streams to close").await;
    }
}

/// A wait that a broken test ends with a message instead of hanging.
async fn wait<F: std::future::Future>(f: F, what: &str) {
    if tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .is_err()
    {
        panic!("the fake waited 10 s for {what}");
    }
}

/// Counts a body as open from its creation until the client side drops it.
struct OpenBody {
    streams: Arc<Streams>,
    _closed: oneshot::Sender<()>,
}

impl Drop for OpenBody {
    fn drop(&mut self) {
        self.streams.open.send_modify(|n| *n -= 1);
    }
}

/// A 200 `text/event-stream` response whose body a task sends piece by piece.
pub(super) fn respond(
    streams: Arc<Streams>,
    pieces: Vec<Piece>,
    pause: Duration,
    end: End,
) -> Response {
    let (tx, channel) = Channel::<Bytes, Infallible>::new(1);
    let (closed_tx, closed) = oneshot::channel();
    streams.open.send_modify(|n| *n += 1);
    let guard = OpenBody {
        streams: streams.clone(),
        _closed: closed_tx,
    };
    let body = channel.map_frame(move |frame| {
        let _ = &guard;
        frame
    });
    tokio::spawn(pump(streams, pieces, pause, end, tx, closed));
    (
        [
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache"),
        ],
        Body::new(body),
    )
        .into_response()
}

async fn pump(
    streams: Arc<Streams>,
    pieces: Vec<Piece>,
    pause: Duration,
    end: End,
    mut tx: Sender<Bytes, Infallible>,
    closed: oneshot::Receiver<()>,
) {
    let gate = streams.gate.lock().unwrap().clone();
    let mut texts = 0;
    for piece in pieces {
        let wire = match piece {
            Piece::Raw(wire) => wire,
            Piece::Text(wire) => {
                if texts > 0 {
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                    if let Some(gate) = &gate {
                        gate.acquire().await.unwrap().forget();
                    }
                }
                texts += 1;
                // Counted as it is handed to the body, so a client that has read chunk n
                // always sees at least n counted.
                streams.sent_at.lock().unwrap().push(Instant::now());
                streams.sent.send_modify(|n| *n += 1);
                if tx.send_data(Bytes::from(wire)).await.is_err() {
                    return;
                }
                continue;
            }
        };
        if tx.send_data(Bytes::from(wire)).await.is_err() {
            return;
        }
    }
    if end == End::Hold {
        // Resolves only when the body is dropped: the client went away.
        let _ = closed.await;
    }
}

/// `text` in the pieces a model would send it: word by word, spaces kept.
pub(super) fn words(text: &str) -> Vec<String> {
    text.split_inclusive(' ').map(str::to_owned).collect()
}

/// `text` in three fragments (fewer when shorter), cut at character boundaries.
fn fragments(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let size = chars.len().div_ceil(3).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

fn data(value: &Value) -> String {
    format!("data: {value}\n\n")
}

fn event(value: &Value) -> String {
    format!(
        "event: {}\ndata: {value}\n\n",
        value["type"].as_str().unwrap()
    )
}

/// The whole answer as Chat Completions chunks: a role chunk, the text chunks, each call's
/// fragments (id and name first, arguments in pieces), the finish, the usage, `[DONE]`.
pub(super) fn openai(reply: &Reply, chunks: Vec<String>) -> Vec<Piece> {
    let chunk = |delta: Value, finish: Value| {
        data(&json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "model": reply.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }))
    };
    let mut pieces = vec![Piece::Raw(chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    ))];
    for text in chunks {
        pieces.push(Piece::Text(chunk(json!({"content": text}), Value::Null)));
    }
    for (i, (id, name, arguments)) in reply.calls.iter().enumerate() {
        let first = json!({"tool_calls": [{"index": i, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]});
        pieces.push(Piece::Raw(chunk(first, Value::Null)));
        for part in fragments(arguments) {
            let more = json!({"tool_calls": [{"index": i, "function": {"arguments": part}}]});
            pieces.push(Piece::Raw(chunk(more, Value::Null)));
        }
    }
    let finish = if reply.calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    pieces.push(Piece::Raw(chunk(json!({}), json!(finish))));
    pieces.push(Piece::Raw(data(&json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "model": reply.model,
        "choices": [],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }))));
    pieces.push(Piece::Raw("data: [DONE]\n\n".to_owned()));
    pieces
}

/// The whole answer as Messages events: `message_start`, a `ping`, a text block of the text
/// chunks, each call as a `tool_use` block with its input in `input_json_delta` fragments,
/// `message_delta` with the stop reason and usage, `message_stop`.
pub(super) fn anthropic(reply: &Reply, chunks: Vec<String>) -> Vec<Piece> {
    let mut pieces = vec![
        Piece::Raw(event(&json!({
            "type": "message_start",
            "message": {"id": "msg_fake", "type": "message", "role": "assistant", "model": reply.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 11, "output_tokens": 1}},
        }))),
        Piece::Raw(event(&json!({"type": "ping"}))),
    ];
    let mut index = 0;
    if !chunks.is_empty() {
        pieces.push(Piece::Raw(event(&json!({
            "type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""},
        }))));
        for text in chunks {
            pieces.push(Piece::Text(event(&json!({
                "type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text},
            }))));
        }
        pieces.push(Piece::Raw(event(
            &json!({"type": "content_block_stop", "index": 0}),
        )));
        index = 1;
    }
    for (id, name, arguments) in &reply.calls {
        pieces.push(Piece::Raw(event(&json!({
            "type": "content_block_start", "index": index,
            "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}},
        }))));
        // The buffered fake's rule: text that is not JSON arrives as a JSON string.
        let input = match serde_json::from_str::<Value>(arguments) {
            Ok(_) => arguments.clone(),
            Err(_) => Value::String(arguments.clone()).to_string(),
        };
        for part in fragments(&input) {
            pieces.push(Piece::Raw(event(&json!({
                "type": "content_block_delta", "index": index,
                "delta": {"type": "input_json_delta", "partial_json": part},
            }))));
        }
        pieces.push(Piece::Raw(event(
            &json!({"type": "content_block_stop", "index": index}),
        )));
        index += 1;
    }
    let stop = if reply.calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    };
    pieces.push(Piece::Raw(event(&json!({
        "type": "message_delta",
        "delta": {"stop_reason": stop, "stop_sequence": null},
        "usage": {"output_tokens": 7},
    }))));
    pieces.push(Piece::Raw(event(&json!({"type": "message_stop"}))));
    pieces
}

/// The answer's pieces for `format`.
pub(super) fn render(format: Format, reply: &Reply, chunks: Vec<String>) -> Vec<Piece> {
    match format {
        Format::OpenAi => openai(reply, chunks),
        Format::Anthropic => anthropic(reply, chunks),
    }
}

/// The pieces up to and including the `n`th text chunk (none: only the opening framing), and
/// never the end: with fewer than `n` text chunks, up to the last of them.
pub(super) fn cut_after_text(pieces: Vec<Piece>, n: usize) -> Vec<Piece> {
    let mut texts = 0;
    let mut kept = Vec::new();
    let mut after_last_text = 0;
    for piece in pieces {
        if matches!(piece, Piece::Text(_)) {
            if texts == n {
                return kept;
            }
            texts += 1;
            after_last_text = kept.len() + 1;
        }
        kept.push(piece);
    }
    kept.truncate(after_last_text);
    kept
}

/// The pieces of a broken stream: the first text chunk, then the breakage.
pub(super) fn broken(format: Format, pieces: Vec<Piece>, how: &Breakage) -> Vec<Piece> {
    let mut pieces = cut_after_text(pieces, 1);
    match how {
        Breakage::Truncated => {}
        Breakage::BadJson => pieces.push(Piece::Raw(match format {
            Format::OpenAi => "data: {\"choices\": [{\"delta\": \n\n".to_owned(),
            Format::Anthropic => {
                "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \n\n"
                    .to_owned()
            }
        })),
        Breakage::ErrorEvent(kind) => {
            let error = json!({"type": kind, "message": "scripted stream failure"});
            pieces.push(Piece::Raw(match format {
                Format::OpenAi => data(&json!({"error": error})),
                Format::Anthropic => event(&json!({"type": "error", "error": error})),
            }));
        }
    }
    pieces
}

/// A streamed request's answer of `Answer::Malformed`: events of the right framing whose
/// data is not a chunk.
pub(super) fn malformed(format: Format) -> Vec<Piece> {
    vec![Piece::Raw(match format {
        Format::OpenAi => "data: {\"choices\": \"surprise\"}\n\n".to_owned(),
        Format::Anthropic => {
            "event: message_start\ndata: {\"type\": \"message_start\", \"message\": \"surprise\"}\n\n"
                .to_owned()
        }
    })]
}
