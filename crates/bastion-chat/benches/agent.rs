//! Bench binary for the agent loop's own cost per step, beyond the model's time and the tool's
//! run time (both instant here): turns of one model call against turns of eight (seven tool
//! steps, then the answer) on a SQLite file store, the difference divided by the seven steps.
//! Each step is a debit, the prompt handed to the model, one call parsed, checked, run,
//! audited and capped, and its share of the stored steps. Run with
//! `cargo bench -p bastion-chat --bench agent`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bastion_chat::provider::{
    Completion, CompletionRequest, ModelToolCall, Provider, ProviderError,
};
use bastion_chat::{
    AgentConfig, ChatConfig, ChatEngine, ChatMessage, FreePlans, ToolAudit, ToolCallAudit,
    ToolRunner, TurnRequest, Usage,
};
use bastion_core::tools::{ToolInvocation, ToolName, ToolOutcome};
use bastion_core::{Owner, RequestId, SystemClock, UserId};
use bastion_store::{SqliteStore, StoreError, Stores};
use serde_json::json;

/// Asks for `list_files` until it has been called `tool_steps` times in the turn, then answers.
struct Looping {
    tool_steps: usize,
    calls: AtomicU32,
}

#[async_trait]
impl Provider for Looping {
    fn name(&self) -> &'static str {
        "looping"
    }

    async fn complete(&self, request: &CompletionRequest) -> Result<Completion, ProviderError> {
        let done = request
            .messages
            .iter()
            .filter(|m| !m.tool_calls.is_empty())
            .count();
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        let usage = Usage {
            prompt_tokens: 100,
            completion_tokens: 20,
        };
        if done >= self.tool_steps {
            return Ok(Completion {
                content: "the workspace holds notes.txt".to_owned(),
                tool_calls: Vec::new(),
                usage,
                served_by: Default::default(),
            });
        }
        Ok(Completion {
            content: String::new(),
            tool_calls: vec![ModelToolCall {
                id: format!("call_{n}"),
                name: "list_files".to_owned(),
                arguments: r#"{"prefix":""}"#.to_owned(),
            }],
            usage,
            served_by: Default::default(),
        })
    }
}

/// A listing of one file, at once.
struct Instant0;

#[async_trait]
impl ToolRunner for Instant0 {
    fn name(&self) -> &'static str {
        "instant"
    }

    async fn run(&self, _invocation: &ToolInvocation, _budget: Duration) -> ToolOutcome {
        ToolOutcome::Ok(json!({"files": [{"path": "notes.txt", "size": 12}], "truncated": false}))
    }
}

struct Discard;

#[async_trait]
impl ToolAudit for Discard {
    async fn record(&self, _call: &ToolCallAudit) -> Result<(), StoreError> {
        Ok(())
    }
}

fn engine(stores: &Stores, tool_steps: usize) -> ChatEngine {
    let provider = Arc::new(Looping {
        tool_steps,
        calls: AtomicU32::new(0),
    });
    let config = ChatConfig {
        free_daily_credits: 1_000_000,
        agent: AgentConfig::default(),
        ..ChatConfig::default()
    };
    ChatEngine::new(
        stores.clone(),
        provider,
        Arc::new(FreePlans),
        Arc::new(SystemClock),
        config,
    )
    .with_tools(Arc::new(Instant0))
}

async fn turns(engine: &ChatEngine, n: usize) -> Vec<Duration> {
    let message = ChatMessage::parse("what is in my workspace?").unwrap();
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        // A fresh owner each time: the credit counter and conversation start empty.
        let owner = Owner::User(UserId::generate());
        let started = Instant::now();
        let reply = engine
            .agent_turn(TurnRequest {
                owner: &owner,
                conversation: None,
                message: &message,
                model: None,
                tools: &ToolName::ALL,
                audit: &Discard,
                request_id: &RequestId::generate(),
            })
            .await
            .unwrap();
        samples.push(started.elapsed());
        assert_eq!(reply.message.content, "the workspace holds notes.txt");
    }
    samples
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let path =
        std::env::temp_dir().join(format!("bastion-agent-bench-{}.db", RequestId::generate()));
    let stores = Stores::from_adapter(Arc::new(SqliteStore::open(&path).unwrap()));
    let (plain, looping) = (engine(&stores, 0), engine(&stores, 7));
    turns(&plain, 50).await;
    turns(&looping, 50).await;
    let one = median(turns(&plain, 400).await);
    let eight = median(turns(&looping, 400).await);
    let per_step = eight.saturating_sub(one) / 7;
    println!("turn, 1 model call, no tool          p50={one:>10.1?}");
    println!("turn, 8 model calls, 7 tool steps    p50={eight:>10.1?}");
    println!("agent loop cost per step             {per_step:>10.1?} (goal <= 2 ms)");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
