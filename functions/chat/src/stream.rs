//! `POST /chat` streamed as server-sent events. The turn runs in its own task so that what it
//! refuses before its first credit is taken (quota, a busy or unknown conversation, a model
//! not allowed) still answers with the usual status and envelope; from `event: turn` on, the
//! answer is the stream, and a failure is its last event. The task owns the sending half of
//! the turn's events: when the client goes away the response body, and with it the receiving
//! half, is dropped, the turn sees the channel closed and stops, stores what it generated and
//! ends, so nothing outlives it.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bastion_chat::{TurnEvent, TurnEvents, TurnReply};
use bastion_http::{ApiError, ErrorKind, RequestMeta};
use serde_json::{Value, json};
use tokio::sync::mpsc::Receiver;
use tokio::task::JoinHandle;

use crate::ChatState;
use crate::dto::MessageView;
use crate::turn::{self, ChatTurn};

type TurnTask = JoinHandle<Result<TurnReply, ApiError>>;

/// How many streamed turns' tasks are running: each one counts from its start until it has
/// stored its turn (or failed) and ended, whether or not its client stayed.
#[derive(Debug, Clone, Default)]
pub struct StreamedTurns(Arc<AtomicUsize>);

impl StreamedTurns {
    pub fn running(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    fn enter(&self) -> Running {
        self.0.fetch_add(1, Ordering::SeqCst);
        Running(self.0.clone())
    }
}

/// One running turn; dropped when its task ends, however it ends.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Starts the turn; answers the stream once it has begun, or the error that stopped it first.
pub async fn send(
    state: ChatState,
    meta: RequestMeta,
    turn: ChatTurn,
) -> Result<Response, ApiError> {
    let (events, mut rx) = TurnEvents::channel();
    let keepalive = state.engine.config().agent.keepalive;
    let task_meta = meta.clone();
    let task = tokio::spawn(async move {
        let _running = state.streamed.enter();
        turn::run(&state, &task_meta, &turn, Some(&events)).await
    });
    match rx.recv().await {
        Some(first) => Ok(sse_response(Feed {
            first: Some(first),
            rx,
            task: Some(task),
            keepalive,
            meta,
        })),
        // The turn ended without beginning: its error is the response.
        None => match task.await {
            Ok(Err(e)) => Err(e),
            // The engine starts every streamed turn before its first model call, so an answer
            // without a start is a defect, not something to stream.
            Ok(Ok(_)) => Err(ApiError::new(ErrorKind::Internal, "internal error")
                .with_log("a streamed turn answered without its start event")),
            Err(e) => Err(ApiError::internal(&e)),
        },
    }
}

/// The response body's source: the events as they come, a comment when there has been nothing
/// to say for `keepalive`, then `done` or `error` from the turn's result.
struct Feed {
    first: Option<TurnEvent>,
    rx: Receiver<TurnEvent>,
    /// `None` once the last event is out.
    task: Option<TurnTask>,
    keepalive: Duration,
    meta: RequestMeta,
}

/// A comment line: ignored by every SSE client, and bytes on the wire for every proxy.
const KEEPALIVE: &[u8] = b": keep-alive\n\n";

fn sse_response(feed: Feed) -> Response {
    let body = futures_util::stream::unfold(feed, |mut feed| async move {
        if let Some(event) = feed.first.take() {
            return Some((Ok::<_, Infallible>(frame_of(event)), feed));
        }
        let task = feed.task.as_mut()?;
        let next = match tokio::time::timeout(feed.keepalive, feed.rx.recv()).await {
            Ok(Some(event)) => frame_of(event),
            Ok(None) => {
                let result = task.await;
                feed.task = None;
                last_frame(result, &feed.meta)
            }
            Err(_) => Bytes::from_static(KEEPALIVE),
        };
        Some((Ok(next), feed))
    });
    let mut res = (StatusCode::OK, Body::from_stream(body)).into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Tells a buffering proxy in front (nginx and kin) to pass each event on at once.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    res
}

fn frame_of(event: TurnEvent) -> Bytes {
    match event {
        TurnEvent::Started { conversation_id } => frame(
            "turn",
            &json!({"conversation_id": conversation_id.to_string()}),
        ),
        TurnEvent::Delta(text) => frame("delta", &json!({ "text": text })),
        TurnEvent::ToolCall(step) => frame("tool_call", &step.to_json()),
        TurnEvent::ToolResult(step) => frame("tool_result", &step.to_json()),
    }
}

/// `done` with the stored answer, or `error` in the envelope's code and message; a failure
/// after the stream began is logged here, since the request's own log line already said 200.
fn last_frame(
    result: Result<Result<TurnReply, ApiError>, tokio::task::JoinError>,
    meta: &RequestMeta,
) -> Bytes {
    let err = match result {
        Ok(Ok(reply)) => return frame("done", &done_of(reply)),
        Ok(Err(e)) => e,
        Err(e) => ApiError::internal(&e),
    };
    let request_id = &meta.request_id;
    if err.kind().status().is_server_error() {
        tracing::error!(%request_id, code = %err.code(), cause = err.cause().unwrap_or(""), "streamed chat turn failed after the stream began");
    } else {
        tracing::info!(%request_id, code = %err.code(), "streamed chat turn refused after the stream began");
    }
    frame(
        "error",
        &json!({"code": err.code(), "message": err.message(), "request_id": request_id.as_str()}),
    )
}

/// What `done` carries: the stored answer and the turn's counts (its steps went out as events).
pub fn done_of(reply: TurnReply) -> Value {
    json!({
        "message": MessageView::bare(reply.message),
        "usage": reply.usage,
        "credits_remaining": reply.credits_remaining,
        "stop_reason": reply.stop_reason.as_str(),
        "provider": reply.served_by.as_str(),
    })
}

/// One event: its name and its data on one line (compact JSON holds no newline).
fn frame(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}
