//! The exec function's side of the agent's tools, on an in-memory SQLite store: which
//! documents the Lambda claims as a tool invocation (only one keyed `bastion_tool_invocation`
//! at the top level, and only exactly shaped), that the combined claim still hands the table's
//! stream to its handler, and that a failure inside exec (the workspace store, the rate-limit
//! counters) is a generic `unavailable` result that tells nothing of its cause.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bastion_core::tools::{
    INVOCATION_KEY, ListFilesArgs, ReadFileArgs, RunCommandArgs, ToolCall, ToolInvocation,
    WriteFileArgs,
};
use bastion_core::{ManualClock, RequestId, Timestamp, UserId};
use bastion_exec::purge::stream::AccountDeletions;
use bastion_exec::tools::{FirstClaim, ToolInvocations};
use bastion_exec::workspace::{DirWorkspaces, StoredFile, WorkspaceError, WorkspaceStore};
use bastion_exec::{ExecConfig, ExecState};
use bastion_http::side_events::SideEvents;
use bastion_http::{Edge, EdgeConfig};
use bastion_sandbox::SandboxPath;
use bastion_store::sqlite::SqliteStore;
use bastion_store::{CounterStore, StoreError, Stores, WindowCounts};
use serde_json::{Value, json};

/// A fresh directory under the temporary one, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("bastion-exec-tools-{}", RequestId::generate()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn env(runs: &std::path::Path) -> HashMap<String, String> {
    [
        (
            "JWT_VERIFY_KEYS",
            "k1:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",
        ),
        (
            "EXEC_SANDBOX_KEY",
            "ZXhlYy1zYW5kYm94LWtleS1mb3ItdGVzdHMtb25seSE=",
        ),
        ("SANDBOX_ROOT", runs.to_str().unwrap()),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

fn state(scratch: &Scratch, stores: Stores, workspaces: Arc<dyn WorkspaceStore>) -> ExecState {
    let runs = scratch.0.join("runs");
    let env = env(&runs);
    let edge = Edge::new(
        EdgeConfig::from_env(&env).unwrap(),
        stores,
        Arc::new(ManualClock::new(Timestamp(1_800_000_000))),
    );
    ExecState::new(edge, ExecConfig::from_env(&env, runs).unwrap(), workspaces).unwrap()
}

fn sqlite() -> Stores {
    Stores::from_adapter(Arc::new(SqliteStore::open_in_memory().unwrap()))
}

fn on_disk(scratch: &Scratch) -> ExecState {
    let workspaces = Arc::new(DirWorkspaces::new(scratch.0.join("workspaces")));
    state(scratch, sqlite(), workspaces)
}

/// The exec Lambda's side events as main.rs combines them.
fn side(state: &ExecState) -> FirstClaim {
    FirstClaim(vec![
        Box::new(ToolInvocations::new(state.clone())),
        Box::new(AccountDeletions::new(
            state.clone(),
            "bastion-test".to_owned(),
        )),
    ])
}

fn write(user: &UserId, path: &str, content: &str) -> ToolInvocation {
    ToolInvocation {
        user_id: user.clone(),
        request_id: RequestId::generate(),
        call: ToolCall::WriteFile(WriteFileArgs {
            path: path.to_owned(),
            content: content.to_owned(),
        }),
    }
}

async fn answer(side: &FirstClaim, document: &Value) -> Value {
    let handled = side
        .claim(&document.to_string())
        .unwrap_or_else(|| panic!("not claimed: {document}"));
    handled.await.unwrap()
}

/// A REST event as API Gateway builds it, carrying `smuggled` in every string a client sets.
fn rest_event(smuggled: &str) -> Value {
    json!({
        "resource": "/{proxy+}", "path": format!("/exec/files/{smuggled}"), "httpMethod": "POST",
        "headers": {"x-bastion-tool-invocation": smuggled, INVOCATION_KEY: smuggled},
        "multiValueHeaders": {INVOCATION_KEY: [smuggled]},
        "queryStringParameters": {INVOCATION_KEY: smuggled},
        "multiValueQueryStringParameters": {INVOCATION_KEY: [smuggled]},
        "pathParameters": {"proxy": smuggled}, "stageVariables": null,
        "requestContext": {"resourcePath": "/{proxy+}", "httpMethod": "POST", "stage": "Prod",
            "requestId": "r", "identity": {"sourceIp": "203.0.113.9"}},
        "body": smuggled, "isBase64Encoded": false
    })
}

#[tokio::test]
async fn a_valid_invocation_is_claimed_run_and_answered_with_its_outcome() {
    let scratch = Scratch::new();
    let exec = on_disk(&scratch);
    let user = UserId::generate();
    let document = write(&user, "a.txt", "hi").to_json();
    assert_eq!(
        answer(&side(&exec), &document).await,
        json!({"ok": true, "output": {"path": "a.txt", "size": 2, "created": true}})
    );
    let read = ToolInvocation {
        user_id: user,
        request_id: RequestId::generate(),
        call: ToolCall::ReadFile(ReadFileArgs {
            path: "a.txt".to_owned(),
        }),
    };
    assert_eq!(
        answer(&side(&exec), &read.to_json()).await,
        json!({"ok": true, "output": {"path": "a.txt", "size": 2, "encoding": "utf8", "content": "hi"}})
    );
}

#[tokio::test]
async fn an_api_gateway_event_carrying_an_invocation_in_its_strings_is_left_to_the_http_path() {
    let scratch = Scratch::new();
    let exec = on_disk(&scratch);
    let smuggled = write(&UserId::generate(), "pwned.txt", "x")
        .to_json()
        .to_string();
    assert!(
        side(&exec)
            .claim(&rest_event(&smuggled).to_string())
            .is_none()
    );
    // Nor is anything else without the key at the top level.
    let invocations = ToolInvocations::new(exec.clone());
    for other in [
        json!({"body": smuggled}),
        json!(smuggled),
        // serde would read the envelope's one field from an array's one item.
        json!([serde_json::from_str::<Value>(&smuggled).unwrap()[INVOCATION_KEY]]),
    ] {
        assert!(invocations.claim(&other.to_string()).is_none(), "{other}");
    }
    assert!(
        side(&exec)
            .claim(&json!({"body": smuggled}).to_string())
            .is_none()
    );
    assert_eq!(
        std::fs::read_dir(scratch.0.join("workspaces"))
            .map(|d| d.count())
            .unwrap_or(0),
        0,
        "nothing was written"
    );
}

#[tokio::test]
async fn a_document_with_the_key_that_is_not_exactly_an_invocation_runs_nothing() {
    let scratch = Scratch::new();
    let exec = on_disk(&scratch);
    let valid = write(&UserId::generate(), "pwned.txt", "x").to_json();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = valid.clone();
        f(&mut v);
        v
    };
    let invalid = [
        // The key beside an API Gateway event's fields, or a stream batch's.
        with(&|v| {
            let mut event = rest_event("x");
            event[INVOCATION_KEY] = v[INVOCATION_KEY].clone();
            *v = event;
        }),
        with(&|v| v["Records"] = json!([])),
        // Unknown fields, inside the invocation and inside the arguments.
        with(&|v| v[INVOCATION_KEY]["workspace"] = json!("someone-else")),
        with(&|v| v[INVOCATION_KEY]["limits"] = json!({"EXEC_RUNS_PER_MINUTE": 1000})),
        with(&|v| {
            v[INVOCATION_KEY]["arguments"]["user_id"] = json!(UserId::generate().to_string())
        }),
        // Not a user id, not a request id, not a tool, not an object.
        with(&|v| v[INVOCATION_KEY]["user_id"] = json!("../other")),
        with(&|v| v[INVOCATION_KEY]["request_id"] = json!("")),
        with(&|v| v[INVOCATION_KEY]["tool"] = json!("shell")),
        with(&|v| v[INVOCATION_KEY]["arguments"] = json!("{\"path\":\"x\"}")),
        json!({INVOCATION_KEY: "run rm -rf"}),
    ];
    for document in invalid {
        assert_eq!(
            answer(&side(&exec), &document).await,
            json!({"ok": false, "error": {"code": "invalid_invocation", "message": "the tool invocation is not valid"}}),
            "{document}"
        );
    }
    assert_eq!(
        std::fs::read_dir(scratch.0.join("workspaces"))
            .map(|d| d.count())
            .unwrap_or(0),
        0,
        "nothing was written"
    );
}

#[tokio::test]
async fn the_combined_claim_still_hands_the_tables_stream_to_its_handler() {
    let scratch = Scratch::new();
    let exec = on_disk(&scratch);
    assert_eq!(
        answer(&side(&exec), &json!({"Records": []})).await,
        json!({"batchItemFailures": []})
    );
}

/// A workspace store that is down, with internals in its error.
struct DownWorkspaces;

fn down() -> WorkspaceError {
    WorkspaceError::Unavailable("s3://bastion-internal-bucket/abc123 AccessDenied".to_owned())
}

#[async_trait]
impl WorkspaceStore for DownWorkspaces {
    async fn list(&self, _: &str) -> Result<Vec<StoredFile>, WorkspaceError> {
        Err(down())
    }
    async fn read(
        &self,
        _: &str,
        _: &SandboxPath,
    ) -> Result<Option<(Vec<u8>, String)>, WorkspaceError> {
        Err(down())
    }
    async fn write(&self, _: &str, _: &SandboxPath, _: Vec<u8>) -> Result<String, WorkspaceError> {
        Err(down())
    }
    async fn delete(&self, _: &str, _: &SandboxPath) -> Result<bool, WorkspaceError> {
        Err(down())
    }
    async fn purge(&self, _: &str) -> Result<u64, WorkspaceError> {
        Err(down())
    }
}

/// Counters that cannot be reached, with internals in the error.
struct DownCounters;

#[async_trait]
impl CounterStore for DownCounters {
    async fn hit(&self, _: &str, _: i64, _: Timestamp) -> Result<WindowCounts, StoreError> {
        Err(StoreError::Unavailable(
            "dynamodb.us-east-1.amazonaws.com: connection refused".into(),
        ))
    }
}

fn every_tool() -> Vec<ToolCall> {
    vec![
        ToolCall::RunCommand(RunCommandArgs {
            command: "echo hi".to_owned(),
        }),
        ToolCall::ReadFile(ReadFileArgs {
            path: "a.txt".to_owned(),
        }),
        ToolCall::WriteFile(WriteFileArgs {
            path: "a.txt".to_owned(),
            content: "x".to_owned(),
        }),
        ToolCall::ListFiles(ListFilesArgs { prefix: None }),
    ]
}

const UNAVAILABLE: &str = "the workspace is temporarily unavailable; try again later";

#[tokio::test]
async fn a_failing_workspace_store_is_an_unavailable_result_that_tells_nothing_of_its_cause() {
    let scratch = Scratch::new();
    let exec = state(&scratch, sqlite(), Arc::new(DownWorkspaces));
    for call in every_tool() {
        let name = call.name();
        let invocation = ToolInvocation {
            user_id: UserId::generate(),
            request_id: RequestId::generate(),
            call,
        };
        assert_eq!(
            exec.run_tool(&invocation).await.to_value(),
            json!({"ok": false, "error": {"code": "unavailable", "message": UNAVAILABLE}}),
            "{name}"
        );
    }
}

#[tokio::test]
async fn unreachable_rate_limit_counters_refuse_the_run_as_unavailable() {
    let scratch = Scratch::new();
    let mut stores = sqlite();
    stores.counters = Arc::new(DownCounters);
    let workspaces = Arc::new(DirWorkspaces::new(scratch.0.join("workspaces")));
    let exec = state(&scratch, stores, workspaces);
    let run = ToolInvocation {
        user_id: UserId::generate(),
        request_id: RequestId::generate(),
        call: every_tool().remove(0),
    };
    assert_eq!(
        exec.run_tool(&run).await.to_value(),
        json!({"ok": false, "error": {"code": "unavailable", "message": UNAVAILABLE}})
    );
}
