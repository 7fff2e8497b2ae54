//! A streamed agent turn in the engine, on SQLite: its events in order, nothing sent for a turn
//! refused before it began, and a client that goes away — while the model writes, while a tool
//! runs, or before anything happened — stopping the turn at once with what it generated stored
//! as `client_disconnected` and its credits kept (or, with nothing generated, refunded).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bastion_chat::provider::{
    Completion, CompletionRequest, ModelToolCall, Provider, ProviderError, TextSink,
};
use bastion_chat::{
    AgentConfig, ChatConfig, ChatEngine, ChatError, ChatMessage, FreePlans, StopReason, ToolAudit,
    ToolCallAudit, ToolRunner, TurnEvent, TurnEvents, TurnReply, TurnRequest, Usage,
};
use bastion_core::tools::{ToolInvocation, ToolName, ToolOutcome};
use bastion_core::{ManualClock, Owner, RequestId, Timestamp, UserId};
use bastion_store::{ConversationId, SqliteStore, StoreError, Stores};
use serde_json::json;
use tokio::sync::{Notify, mpsc};

const START: Timestamp = Timestamp(1_800_000_000);

/// One scripted model answer: text in these pieces, then (optionally) these calls; or text
/// that never finishes.
enum Says {
    Pieces(Vec<&'static str>, Vec<(&'static str, &'static str)>),
    Hangs(&'static str),
}

#[derive(Default)]
struct Streamer {
    script: Mutex<VecDeque<Says>>,
    calls: Mutex<u32>,
}

#[async_trait]
impl Provider for Streamer {
    fn name(&self) -> &'static str {
        "streamer"
    }

    async fn complete(&self, _r: &CompletionRequest) -> Result<Completion, ProviderError> {
        panic!("a streamed turn streams")
    }

    async fn stream(
        &self,
        _r: &CompletionRequest,
        sink: &mut dyn TextSink,
    ) -> Result<Completion, ProviderError> {
        *self.calls.lock().unwrap() += 1;
        let says = self.script.lock().unwrap().pop_front();
        let (pieces, calls) = match says {
            Some(Says::Pieces(p, c)) => (p, c),
            Some(Says::Hangs(first)) => {
                sink.text(first).await;
                std::future::pending::<()>().await;
                unreachable!()
            }
            None => (vec!["the end"], Vec::new()),
        };
        for p in &pieces {
            sink.text(p).await;
        }
        let n = *self.calls.lock().unwrap();
        Ok(Completion {
            content: pieces.concat(),
            tool_calls: calls
                .into_iter()
                .enumerate()
                .map(|(i, (name, arguments))| ModelToolCall {
                    id: format!("call_{n}_{i}"),
                    name: name.to_owned(),
                    arguments: arguments.to_owned(),
                })
                .collect(),
            usage: Usage {
                prompt_tokens: 10,
                completion_tokens: 3,
            },
            served_by: Default::default(),
        })
    }
}

/// Runs nothing; each call waits until the test lets it finish.
#[derive(Default)]
struct Gated {
    ran: Mutex<u32>,
    started: Notify,
    release: Notify,
}

#[async_trait]
impl ToolRunner for Gated {
    fn name(&self) -> &'static str {
        "gated"
    }

    async fn run(&self, _invocation: &ToolInvocation, _budget: Duration) -> ToolOutcome {
        *self.ran.lock().unwrap() += 1;
        self.started.notify_one();
        self.release.notified().await;
        ToolOutcome::Ok(json!({"files": []}))
    }
}

struct NoAudit;

#[async_trait]
impl ToolAudit for NoAudit {
    async fn record(&self, _call: &ToolCallAudit) -> Result<(), StoreError> {
        Ok(())
    }
}

struct Harness {
    engine: ChatEngine,
    provider: Arc<Streamer>,
    runner: Arc<Gated>,
    stores: Stores,
    owner: Owner,
}

fn harness(script: Vec<Says>, credits: u64) -> Harness {
    let provider = Arc::new(Streamer {
        script: Mutex::new(script.into()),
        ..Streamer::default()
    });
    let runner = Arc::new(Gated::default());
    let config = ChatConfig {
        agent: AgentConfig::default(),
        free_daily_credits: credits,
        ..ChatConfig::default()
    };
    let stores = Stores::from_adapter(Arc::new(SqliteStore::open_in_memory().unwrap()));
    let engine = ChatEngine::new(
        stores.clone(),
        provider.clone(),
        Arc::new(FreePlans),
        Arc::new(ManualClock::new(START)),
        config,
    )
    .with_tools(runner.clone());
    Harness {
        engine,
        provider,
        runner,
        stores,
        owner: Owner::User(UserId::generate()),
    }
}

impl Harness {
    /// Starts a streamed turn; its events and its outcome.
    fn start(
        &self,
    ) -> (
        mpsc::Receiver<TurnEvent>,
        tokio::task::JoinHandle<Result<TurnReply, ChatError>>,
    ) {
        let (events, rx) = TurnEvents::channel();
        let engine = self.engine.clone();
        let owner = self.owner.clone();
        let turn = tokio::spawn(async move {
            engine
                .agent_turn_streamed(
                    TurnRequest {
                        owner: &owner,
                        conversation: None,
                        message: &ChatMessage::parse("go").unwrap(),
                        model: None,
                        tools: &ToolName::ALL,
                        audit: &NoAudit,
                        request_id: &RequestId::generate(),
                    },
                    &events,
                )
                .await
        });
        (rx, turn)
    }

    async fn stored_stop_reason(&self, id: &ConversationId) -> String {
        let page = self
            .stores
            .conversations
            .list_messages(&self.owner, id, None, 10)
            .await
            .unwrap()
            .unwrap();
        page.items[0].stop_reason.clone()
    }

    fn model_calls(&self) -> u32 {
        *self.provider.calls.lock().unwrap()
    }
}

fn started(event: Option<TurnEvent>) -> ConversationId {
    match event {
        Some(TurnEvent::Started { conversation_id }) => conversation_id,
        other => panic!("expected the start, got {other:?}"),
    }
}

#[tokio::test]
async fn events_come_in_order_text_piece_by_piece_and_steps_as_they_run() {
    let h = harness(
        vec![
            Says::Pieces(vec!["Let me ", "look."], vec![("list_files", "{}")]),
            Says::Pieces(vec!["No ", "files."], Vec::new()),
        ],
        50,
    );
    let (mut rx, turn) = h.start();
    let id = started(rx.recv().await);
    let mut rest = Vec::new();
    // The tool waits for the test: everything before it has already arrived.
    h.runner.started.notified().await;
    while let Ok(e) = rx.try_recv() {
        rest.push(e);
    }
    assert_eq!(rest.len(), 3, "{rest:?}");
    assert_eq!(rest[0], TurnEvent::Delta("Let me ".into()));
    assert_eq!(rest[1], TurnEvent::Delta("look.".into()));
    let TurnEvent::ToolCall(call) = &rest[2] else {
        panic!("{rest:?}")
    };
    assert_eq!(call.to_json()["name"], "list_files");
    h.runner.release.notify_one();
    while let Some(e) = rx.recv().await {
        rest.push(e);
    }
    assert!(matches!(rest[3], TurnEvent::ToolResult(_)), "{rest:?}");
    assert_eq!(
        rest[4..],
        [
            TurnEvent::Delta("No ".into()),
            TurnEvent::Delta("files.".into())
        ]
    );
    let reply = turn.await.unwrap().unwrap();
    assert_eq!(reply.conversation_id, id);
    assert_eq!(reply.message.content, "No files.");
    assert_eq!(reply.stop_reason, StopReason::EndTurn);
    assert_eq!(h.stored_stop_reason(&id).await, "end_turn");
}

#[tokio::test]
async fn a_turn_refused_for_quota_sends_no_event_at_all() {
    let h = harness(vec![], 0);
    let (mut rx, turn) = h.start();
    assert!(matches!(
        turn.await.unwrap(),
        Err(ChatError::QuotaExceeded { .. })
    ));
    assert_eq!(rx.recv().await, None);
    assert_eq!(h.model_calls(), 0);
}

#[tokio::test]
async fn a_client_leaving_while_a_tool_runs_leaves_the_next_call_unrun_and_the_model_unasked() {
    let h = harness(
        vec![Says::Pieces(
            vec![],
            vec![("list_files", "{}"), ("read_file", r#"{"path":"a"}"#)],
        )],
        50,
    );
    let (mut rx, turn) = h.start();
    let id = started(rx.recv().await);
    h.runner.started.notified().await;
    drop(rx);
    h.runner.release.notify_one();
    let reply = turn.await.unwrap().unwrap();
    assert_eq!(reply.stop_reason, StopReason::ClientDisconnected);
    assert_eq!(
        *h.runner.ran.lock().unwrap(),
        1,
        "the second call never ran"
    );
    assert_eq!(h.model_calls(), 1, "no model call after the client left");
    let steps: Vec<_> = reply.steps.iter().map(|s| s.to_json()).collect();
    assert_eq!(steps.len(), 4);
    assert_eq!(steps[1]["ok"], true);
    assert_eq!(
        steps[3]["error"],
        json!({"code": "not_run", "message": "the client went away before this call ran"})
    );
    assert_eq!(reply.credits_remaining, 49, "its one credit stays taken");
    assert_eq!(h.stored_stop_reason(&id).await, "client_disconnected");
}

#[tokio::test]
async fn a_client_leaving_while_the_model_writes_stores_the_text_it_saw() {
    let h = harness(vec![Says::Hangs("Half an ans")], 50);
    let (mut rx, turn) = h.start();
    let id = started(rx.recv().await);
    assert_eq!(
        rx.recv().await,
        Some(TurnEvent::Delta("Half an ans".into()))
    );
    drop(rx);
    // The model call never ends by itself: only the disconnect can end the turn.
    let reply = turn.await.unwrap().unwrap();
    assert_eq!(reply.stop_reason, StopReason::ClientDisconnected);
    assert_eq!(reply.message.content, "Half an ans");
    assert_eq!(reply.credits_remaining, 49);
    assert_eq!(h.stored_stop_reason(&id).await, "client_disconnected");
}

#[tokio::test]
async fn a_client_gone_before_anything_happened_costs_nothing_and_stores_nothing() {
    let h = harness(vec![], 50);
    let (rx, turn) = h.start();
    drop(rx);
    assert!(matches!(turn.await.unwrap(), Err(ChatError::ClientGone)));
    assert_eq!(h.model_calls(), 0);
    let listed = h
        .stores
        .conversations
        .list_conversations(&h.owner, None, 10)
        .await
        .unwrap()
        .unwrap();
    assert!(listed.items.is_empty());
    // The credit is all there: a full allowance still answers.
    let h2 = &h;
    let (mut rx, turn) = h2.start();
    started(rx.recv().await);
    while rx.recv().await.is_some() {}
    assert_eq!(turn.await.unwrap().unwrap().credits_remaining, 49);
}
