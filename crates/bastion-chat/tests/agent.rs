//! The agent loop against a scripted provider and a recording tool runner on SQLite: the order
//! of calls and results, the step cap, credits per model call (also across concurrent turns),
//! the deadline, malformed and unknown calls as results, refusals of what the turn does not
//! offer, identity that no argument can change, and a failed audit failing the turn.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bastion_chat::provider::{
    Completion, CompletionRequest, ModelToolCall, PromptRole, Provider, ProviderError,
};
use bastion_chat::{
    AgentConfig, ChatConfig, ChatEngine, ChatError, ChatMessage, FreePlans, StopReason, ToolAudit,
    ToolCallAudit, ToolRunner, TurnReply, TurnRequest, Usage,
};
use bastion_core::tools::{ToolCall, ToolError, ToolInvocation, ToolName, ToolOutcome};
use bastion_core::{ManualClock, Owner, RequestId, Timestamp, UserId};
use bastion_store::{SqliteStore, StoreError, Stores};
use serde_json::{Value, json};

const START: Timestamp = Timestamp(1_800_000_000);

/// One scripted model answer.
enum Says {
    Text(&'static str),
    Calls(Vec<(&'static str, String)>),
    Fails,
}

/// Answers from its script in order (text once it runs out), keeping every request.
#[derive(Default)]
struct Scripted {
    script: Mutex<VecDeque<Says>>,
    seen: Mutex<Vec<CompletionRequest>>,
    next_id: Mutex<u32>,
}

impl Scripted {
    fn new(script: Vec<Says>) -> Arc<Self> {
        Arc::new(Self {
            script: Mutex::new(script.into()),
            ..Self::default()
        })
    }

    fn requests(&self) -> Vec<CompletionRequest> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait]
impl Provider for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }

    async fn complete(&self, request: &CompletionRequest) -> Result<Completion, ProviderError> {
        self.seen.lock().unwrap().push(request.clone());
        let says = self.script.lock().unwrap().pop_front();
        let usage = Usage {
            prompt_tokens: 10,
            completion_tokens: 3,
        };
        let text = |t: &str| Completion {
            content: t.to_owned(),
            tool_calls: Vec::new(),
            usage,
            served_by: Default::default(),
        };
        match says {
            None => Ok(text("the end")),
            Some(Says::Text(t)) => Ok(text(t)),
            Some(Says::Fails) => Err(ProviderError::Status(503)),
            Some(Says::Calls(calls)) => {
                let mut next = self.next_id.lock().unwrap();
                let tool_calls = calls
                    .into_iter()
                    .map(|(name, arguments)| {
                        *next += 1;
                        ModelToolCall {
                            id: format!("call_{next}"),
                            name: name.to_owned(),
                            arguments,
                        }
                    })
                    .collect();
                Ok(Completion {
                    content: String::new(),
                    tool_calls,
                    usage,
                    served_by: Default::default(),
                })
            }
        }
    }
}

/// Runs nothing: answers each invocation with what it was asked, after `pause`.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<ToolInvocation>>,
    pause: Duration,
}

#[async_trait]
impl ToolRunner for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }

    async fn run(&self, invocation: &ToolInvocation, _budget: Duration) -> ToolOutcome {
        self.seen.lock().unwrap().push(invocation.clone());
        tokio::time::sleep(self.pause).await;
        match &invocation.call {
            ToolCall::RunCommand(a) if a.command == "false" => {
                ToolOutcome::Ok(json!({"exit_code": 1}))
            }
            ToolCall::ReadFile(a) if a.path.starts_with('/') => {
                ToolOutcome::Err(ToolError::new("invalid_path", "path must be relative"))
            }
            call => {
                ToolOutcome::Ok(json!({"ran": call.name().as_str(), "arguments": call.arguments()}))
            }
        }
    }
}

#[derive(Default)]
struct Audits {
    seen: Mutex<Vec<ToolCallAudit>>,
    down: bool,
}

#[async_trait]
impl ToolAudit for Audits {
    async fn record(&self, call: &ToolCallAudit) -> Result<(), StoreError> {
        if self.down {
            return Err(StoreError::Unavailable("audit table is down".to_owned()));
        }
        self.seen.lock().unwrap().push(call.clone());
        Ok(())
    }
}

struct Harness {
    engine: ChatEngine,
    provider: Arc<Scripted>,
    runner: Arc<Recorder>,
    audits: Audits,
    owner: Owner,
}

fn harness_with(script: Vec<Says>, agent: AgentConfig, credits: u64, pause: Duration) -> Harness {
    let provider = Scripted::new(script);
    let runner = Arc::new(Recorder {
        pause,
        ..Recorder::default()
    });
    let config = ChatConfig {
        agent,
        free_daily_credits: credits,
        ..ChatConfig::default()
    };
    let stores = Stores::from_adapter(Arc::new(SqliteStore::open_in_memory().unwrap()));
    let engine = ChatEngine::new(
        stores,
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
        audits: Audits::default(),
        owner: Owner::User(UserId::generate()),
    }
}

fn harness(script: Vec<Says>) -> Harness {
    harness_with(script, AgentConfig::default(), 50, Duration::ZERO)
}

fn args(v: Value) -> String {
    v.to_string()
}

impl Harness {
    async fn turn_offering(&self, text: &str, tools: &[ToolName]) -> Result<TurnReply, ChatError> {
        self.engine
            .agent_turn(TurnRequest {
                owner: &self.owner,
                conversation: None,
                message: &ChatMessage::parse(text).unwrap(),
                model: None,
                tools,
                audit: &self.audits,
                request_id: &RequestId::generate(),
            })
            .await
    }

    async fn turn(&self, text: &str) -> Result<TurnReply, ChatError> {
        self.turn_offering(text, &ToolName::ALL).await
    }

    fn steps(reply: &TurnReply) -> Vec<Value> {
        reply.steps.iter().map(|s| s.to_json()).collect()
    }

    fn ran(&self) -> Vec<ToolCall> {
        self.runner
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|i| i.call.clone())
            .collect()
    }
}

#[tokio::test]
async fn calls_run_in_order_and_their_results_go_back_only_as_tool_lines() {
    let h = harness(vec![
        Says::Calls(vec![
            (
                "write_file",
                args(json!({"path": "a.txt", "content": "hi"})),
            ),
            ("run_command", args(json!({"command": "cat a.txt"}))),
        ]),
        Says::Text("a.txt says hi"),
    ]);
    let reply = h.turn("what does a.txt say?").await.unwrap();
    assert_eq!(reply.stop_reason, StopReason::EndTurn);
    assert_eq!(reply.message.content, "a.txt says hi");
    assert_eq!(
        reply.usage,
        Usage {
            prompt_tokens: 20,
            completion_tokens: 6
        }
    );
    assert_eq!(reply.credits_remaining, 48, "two model calls, two credits");
    assert_eq!(
        Harness::steps(&reply),
        vec![
            json!({"type": "tool_call", "step": 1, "id": "call_1", "name": "write_file", "arguments": {"path": "a.txt", "content": "hi"}}),
            json!({"type": "tool_result", "step": 1, "id": "call_1", "name": "write_file", "ok": true, "output": {"ran": "write_file", "arguments": {"path": "a.txt", "content": "hi"}}}),
            json!({"type": "tool_call", "step": 1, "id": "call_2", "name": "run_command", "arguments": {"command": "cat a.txt"}}),
            json!({"type": "tool_result", "step": 1, "id": "call_2", "name": "run_command", "ok": true, "output": {"ran": "run_command", "arguments": {"command": "cat a.txt"}}}),
        ]
    );
    let second = &h.provider.requests()[1];
    let roles: Vec<PromptRole> = second.messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        vec![
            PromptRole::System,
            PromptRole::User,
            PromptRole::Assistant,
            PromptRole::Tool,
            PromptRole::Tool
        ]
    );
    assert_eq!(
        second.messages[1].content, "what does a.txt say?",
        "the user's text is untouched"
    );
    assert_eq!(
        second.messages[3].answers,
        Some(("call_1".to_owned(), "write_file".to_owned()))
    );
    assert!(second.messages[0].content == "You are a helpful assistant.");
    assert_eq!(second.tools, ToolName::ALL.to_vec());
    let audits = h.audits.seen.lock().unwrap().clone();
    assert_eq!(
        audits.iter().map(|a| (a.tool, a.ok)).collect::<Vec<_>>(),
        vec![("write_file", true), ("run_command", true)]
    );
}

#[tokio::test]
async fn the_step_cap_stops_the_turn_and_leaves_the_last_calls_unrun() {
    let call = || Says::Calls(vec![("list_files", args(json!({})))]);
    let agent = AgentConfig {
        max_steps: 3,
        ..AgentConfig::default()
    };
    let h = harness_with(
        vec![call(), call(), call(), call()],
        agent,
        50,
        Duration::ZERO,
    );
    let reply = h.turn("loop forever").await.unwrap();
    assert_eq!(reply.stop_reason, StopReason::MaxSteps);
    assert_eq!(h.provider.requests().len(), 3);
    assert_eq!(h.ran().len(), 2, "the third answer's call is not run");
    assert_eq!(reply.credits_remaining, 47);
    assert_eq!(
        Harness::steps(&reply)[5],
        json!({"type": "tool_result", "step": 3, "id": "call_3", "name": "list_files", "ok": false,
               "error": {"code": "not_run", "message": "the turn reached its step limit before this call ran"}})
    );
}

#[tokio::test]
async fn credits_running_out_mid_turn_stop_it_and_the_next_turn_is_refused() {
    let call = || Says::Calls(vec![("list_files", args(json!({})))]);
    let h = harness_with(
        vec![call(), call(), call()],
        AgentConfig::default(),
        2,
        Duration::ZERO,
    );
    let reply = h.turn("spend it all").await.unwrap();
    assert_eq!(reply.stop_reason, StopReason::CreditsExhausted);
    assert_eq!(h.provider.requests().len(), 2, "one model call per credit");
    assert_eq!(reply.credits_remaining, 0);
    assert!(matches!(
        h.turn("again").await,
        Err(ChatError::QuotaExceeded { allowance: 2, .. })
    ));
    assert_eq!(
        h.provider.requests().len(),
        2,
        "a refused turn calls no model"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_turns_never_make_more_model_calls_than_the_credits_held() {
    let script: Vec<Says> = (0..40)
        .map(|_| Says::Calls(vec![("list_files", args(json!({})))]))
        .collect();
    let h = Arc::new(harness_with(
        script,
        AgentConfig::default(),
        5,
        Duration::from_millis(5),
    ));
    let turns = (0..6).map(|i| {
        let h = h.clone();
        tokio::spawn(async move { h.turn(&format!("turn {i}")).await })
    });
    let mut stopped = 0;
    let mut refused = 0;
    for t in turns {
        match t.await.unwrap() {
            Ok(reply) => {
                assert_eq!(reply.stop_reason, StopReason::CreditsExhausted);
                stopped += 1;
            }
            Err(ChatError::QuotaExceeded { .. }) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(
        h.provider.requests().len(),
        5,
        "exactly the five credits' calls"
    );
    assert_eq!(stopped + refused, 6);
    assert!(stopped >= 1);
}

#[tokio::test]
async fn malformed_arguments_unknown_tools_and_smuggled_fields_are_error_results() {
    let h = harness(vec![
        Says::Calls(vec![
            ("read_file", "{\"path\": \"a.txt\"".to_owned()),
            ("delete_everything", args(json!({}))),
            (
                "read_file",
                args(json!({"path": "a.txt", "user_id": "someone-else"})),
            ),
            ("read_file", args(json!({"path": 7}))),
            ("read_file", args(json!({"path": "/etc/passwd"}))),
        ]),
        Says::Text("sorry"),
    ]);
    let reply = h.turn("go").await.unwrap();
    assert_eq!(reply.stop_reason, StopReason::EndTurn);
    let codes: Vec<Value> = Harness::steps(&reply)
        .iter()
        .filter(|s| s["type"] == "tool_result")
        .map(|s| s["error"]["code"].clone())
        .collect();
    assert_eq!(
        codes,
        vec![
            json!("invalid_arguments"),
            json!("unknown_tool"),
            json!("invalid_arguments"),
            json!("invalid_arguments"),
            json!("invalid_path")
        ]
    );
    assert_eq!(
        h.ran().len(),
        1,
        "only the well-formed call reached the runner"
    );
    assert_eq!(
        h.provider.requests()[1]
            .messages
            .iter()
            .filter(|m| m.role == PromptRole::Tool)
            .count(),
        5
    );
    let audits = h.audits.seen.lock().unwrap().clone();
    assert_eq!(audits.len(), 5);
    assert_eq!(audits[1].tool, "unknown");
    assert_eq!(audits[1].error.as_deref(), Some("unknown_tool"));
}

#[tokio::test]
async fn a_tool_the_turn_does_not_offer_is_refused_whatever_the_model_says() {
    let h = harness(vec![
        Says::Calls(vec![("run_command", args(json!({"command": "ls"})))]),
        Says::Text("ok"),
    ]);
    let reply = h
        .turn_offering("read only", &[ToolName::ReadFile])
        .await
        .unwrap();
    assert_eq!(
        Harness::steps(&reply)[1]["error"],
        json!({"code": "tool_not_offered", "message": "run_command is not available on this turn"})
    );
    assert!(h.ran().is_empty());
    assert_eq!(h.provider.requests()[0].tools, vec![ToolName::ReadFile]);
}

#[tokio::test]
async fn every_run_is_the_turns_user_whatever_the_arguments_name() {
    let h = harness(vec![
        Says::Calls(vec![
            ("list_files", args(json!({"prefix": "../other-user/"}))),
            (
                "run_command",
                args(json!({"command": "cat /proc/self/environ"})),
            ),
        ]),
        Says::Text("done"),
    ]);
    h.turn("check").await.unwrap();
    let seen = h.runner.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for invocation in seen {
        assert_eq!(Some(&invocation.user_id), h.owner.user_id());
    }
}

#[tokio::test]
async fn the_deadline_stops_a_turn_between_calls() {
    let call = || Says::Calls(vec![("list_files", args(json!({})))]);
    let agent = AgentConfig {
        deadline: Duration::from_millis(1_000),
        ..AgentConfig::default()
    };
    let h = harness_with(
        vec![call(), call(), call(), call()],
        agent,
        50,
        Duration::from_millis(700),
    );
    let reply = h.turn("slow tools").await.unwrap();
    assert_eq!(reply.stop_reason, StopReason::Deadline);
    assert_eq!(h.provider.requests().len(), 2);
    assert_eq!(
        Harness::steps(&reply)[3]["error"]["code"],
        json!("deadline"),
        "the second run was cut by the deadline"
    );
}

#[tokio::test]
async fn a_provider_failure_after_a_step_keeps_the_steps_and_gives_back_its_credit() {
    let h = harness(vec![
        Says::Calls(vec![("list_files", args(json!({})))]),
        Says::Fails,
    ]);
    let reply = h.turn("flaky").await.unwrap();
    assert_eq!(reply.stop_reason, StopReason::ProviderError);
    assert_eq!(reply.steps.len(), 2);
    assert_eq!(
        reply.credits_remaining, 48,
        "the failed call's credit was given back after"
    );
    let next = h.turn("again").await.unwrap();
    assert_eq!(
        next.credits_remaining, 48,
        "49 left before this turn's one call"
    );
}

#[tokio::test]
async fn a_first_call_that_fails_is_still_an_error_and_costs_nothing() {
    let h = harness(vec![Says::Fails]);
    assert!(matches!(
        h.turn("hi").await,
        Err(ChatError::ProviderFailed(ProviderError::Status(503)))
    ));
    assert_eq!(h.turn("hi").await.unwrap().credits_remaining, 49);
}

#[tokio::test]
async fn a_tool_call_that_cannot_be_audited_fails_the_turn_and_refunds_it() {
    let mut h = harness(vec![Says::Calls(vec![("list_files", args(json!({})))])]);
    h.audits.down = true;
    assert!(matches!(
        h.turn("unrecorded").await,
        Err(ChatError::Store(StoreError::Unavailable(_)))
    ));
    h.audits.down = false;
    // The failed turn's credit came back: this one-call turn leaves 49 of 50.
    assert_eq!(h.turn("recorded").await.unwrap().credits_remaining, 49);
}

#[tokio::test]
async fn at_most_sixteen_calls_of_one_answer_run() {
    let calls: Vec<(&str, String)> = (0..20).map(|_| ("list_files", args(json!({})))).collect();
    let h = harness(vec![Says::Calls(calls), Says::Text("ok")]);
    let reply = h.turn("many").await.unwrap();
    assert_eq!(h.ran().len(), 16);
    assert_eq!(
        Harness::steps(&reply)[39]["error"]["code"],
        json!("too_many_tool_calls")
    );
}

#[tokio::test]
async fn the_next_turn_replays_the_stored_steps_as_calls_and_results() {
    let h = harness(vec![
        Says::Calls(vec![("read_file", args(json!({"path": "a.txt"})))]),
        Says::Text("it says hi"),
        Says::Text("you are welcome"),
    ]);
    let first = h.turn("read a.txt").await.unwrap();
    let (_, page) = h
        .engine
        .messages(&h.owner, &first.conversation_id, None)
        .await
        .unwrap();
    assert_eq!(page.items[0].content, "it says hi");
    assert!(
        !page.items[0].steps.is_empty(),
        "the steps are stored with the answer"
    );
    let reply = h
        .engine
        .agent_turn(TurnRequest {
            owner: &h.owner,
            conversation: Some(&first.conversation_id),
            message: &ChatMessage::parse("thanks").unwrap(),
            model: None,
            tools: &ToolName::ALL,
            audit: &h.audits,
            request_id: &RequestId::generate(),
        })
        .await
        .unwrap();
    assert_eq!(reply.message.content, "you are welcome");
    let third = &h.provider.requests()[2];
    let shape: Vec<(PromptRole, usize)> = third
        .messages
        .iter()
        .map(|m| (m.role, m.tool_calls.len()))
        .collect();
    assert_eq!(
        shape,
        vec![
            (PromptRole::System, 0),
            (PromptRole::User, 0),
            (PromptRole::Assistant, 1),
            (PromptRole::Tool, 0),
            (PromptRole::Assistant, 0),
            (PromptRole::User, 0),
        ]
    );
    assert_eq!(third.messages[3].answers.as_ref().unwrap().0, "call_1");
}

#[tokio::test]
async fn a_failed_command_is_an_ok_result_with_its_exit_code_audited() {
    let h = harness(vec![
        Says::Calls(vec![("run_command", args(json!({"command": "false"})))]),
        Says::Text("it failed"),
    ]);
    h.turn("run false").await.unwrap();
    let audits = h.audits.seen.lock().unwrap().clone();
    assert_eq!(audits[0].exit_code, Some(1));
    assert!(audits[0].ok);
}
