//! What a streamed turn tells its client while it runs, and the channel it goes through. The
//! receiving side belongs to the client's connection: when it is dropped (the client went
//! away), the turn sees the channel closed and stops before its next model call or tool run.

use std::time::Duration;

use async_trait::async_trait;
use bastion_store::ConversationId;
use tokio::sync::mpsc;

use crate::agent::Step;
use crate::provider::TextSink;

/// Events a streamed turn may hold unsent before the model's text waits for the client: a
/// slow reader slows the provider read instead of growing memory.
pub const EVENT_BUFFER: usize = 64;

/// One thing that happened in a streamed turn, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnEvent {
    /// The first credit is taken and the first model call begins: from here on the turn
    /// answers in the stream, not with an error status.
    Started { conversation_id: ConversationId },
    /// A piece of the model's text as it writes it (of any model call of the turn).
    Delta(String),
    /// The model asked for a tool; the same object as the turn's `steps` entry.
    ToolCall(Step),
    /// A tool call's result, as in `steps`.
    ToolResult(Step),
}

/// The sending side: cheap to clone, held by the turn.
#[derive(Debug, Clone)]
pub struct TurnEvents {
    tx: mpsc::Sender<TurnEvent>,
}

impl TurnEvents {
    /// A channel for one turn: the turn sends through the first half, the client's connection
    /// reads the second.
    pub fn channel() -> (TurnEvents, mpsc::Receiver<TurnEvent>) {
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        (TurnEvents { tx }, rx)
    }

    /// Sends `event`, waiting while the client is behind; `false` when it has gone away.
    pub async fn send(&self, event: TurnEvent) -> bool {
        self.tx.send(event).await.is_ok()
    }

    /// Whether the client has gone away.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Resolves once the client has gone away.
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

/// A model call's text, forwarded as [`TurnEvent::Delta`] and kept, so a turn cut short by a
/// disconnect still stores what the client saw.
pub(crate) struct DeltaSink<'a> {
    pub events: &'a TurnEvents,
    pub text: String,
}

#[async_trait]
impl TextSink for DeltaSink<'_> {
    async fn text(&mut self, chunk: &str) {
        self.text.push_str(chunk);
        // A send that fails is a client gone: the loop notices through `closed`.
        let _ = self.events.send(TurnEvent::Delta(chunk.to_owned())).await;
    }
}

/// How often a stream with nothing to say sends a comment line, so that proxies and API
/// Gateway's idle timeout (30 s on an edge-optimized endpoint) keep it open while a tool runs.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(10);
