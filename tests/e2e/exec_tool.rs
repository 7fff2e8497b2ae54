//! The agent's tools run in-process on the SQLite store (the run limit, audit and lease on
//! DynamoDB too), as `bastion-local` runs them:
//! `ExecState::run_tool` writes, runs, reads and lists in the invocation user's workspace
//! exactly as the routes do (the same bodies, codes and messages, the same rate limit, lease,
//! output caps and audit), and no argument reaches another user's files or the host's.
//! (A failure inside exec as a generic `unavailable` result: functions/exec/tests/tools.rs.)
//!
//! The tools run on a second exec state over the app's store, clock and workspace directory:
//! two instances of one deployment, the HTTP one reading back what the tools did.

use std::collections::HashMap;
use std::sync::Arc;

use bastion_core::tools::{
    ListFilesArgs, ReadFileArgs, RunCommandArgs, ToolCall, ToolInvocation, WriteFileArgs,
};
use bastion_core::{Clock as _, RequestId, Timestamp, UserId};
use bastion_exec::workspace::{DirWorkspaces, WorkspaceStore};
use bastion_exec::{ExecConfig, ExecState};
use bastion_http::{Edge, EdgeConfig};
use bastion_store::Stores;
use http::Method;
use serde_json::{Value, json};

use crate::concurrency::dynamodb_stores;
use crate::helpers::{EXEC_KEY_B64, Session, TestApp, base_env};

/// An app with exec (and `extra` exec settings), a signed-up user, and the tools' exec state.
async fn app_user_tools(extra: &[(&str, &str)]) -> (TestApp, Session, ExecState) {
    app_user_tools_on(None, extra).await
}

/// [`app_user_tools`] on `stores` (DynamoDB on moto) instead of a fresh SQLite file.
async fn app_user_tools_on(
    stores: Option<Stores>,
    extra: &[(&str, &str)],
) -> (TestApp, Session, ExecState) {
    let mut builder = TestApp::builder().exec(extra);
    if let Some(stores) = stores {
        builder = builder.stores(stores);
    }
    let app = builder.build().await;
    let s = app.signed_up("agent@example.com").await;
    let workspaces = Arc::new(DirWorkspaces::new(app.workspace_root().unwrap()));
    let tools = tool_state(&app, extra, workspaces);
    (app, s, tools)
}

/// Exec as a second instance of the app's deployment: its store, clock and configuration, the
/// workspaces in `workspaces`, runs in a directory of its own.
fn tool_state(
    app: &TestApp,
    extra: &[(&str, &str)],
    workspaces: Arc<dyn WorkspaceStore>,
) -> ExecState {
    let root = app.workspace_root().unwrap();
    let mut env: HashMap<String, String> = base_env();
    env.insert("EXEC_SANDBOX_KEY".to_owned(), EXEC_KEY_B64.to_owned());
    let runs = root.parent().unwrap().join("tool-runs");
    env.insert("SANDBOX_ROOT".to_owned(), runs.display().to_string());
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let edge = Edge::new(
        EdgeConfig::from_env(&env).unwrap(),
        app.stores.clone(),
        Arc::new(app.clock.clone()),
    );
    let config = ExecConfig::from_env(&env, runs).unwrap();
    ExecState::new(edge, config, workspaces).unwrap()
}

fn invocation(user: &str, call: ToolCall) -> ToolInvocation {
    ToolInvocation {
        user_id: UserId::parse(user).unwrap(),
        request_id: RequestId::generate(),
        call,
    }
}

/// The outcome's JSON, as the chat function reads it back.
async fn tool(exec: &ExecState, user: &str, call: ToolCall) -> Value {
    exec.run_tool(&invocation(user, call)).await.to_value()
}

fn run_command(command: &str) -> ToolCall {
    ToolCall::RunCommand(RunCommandArgs {
        command: command.to_owned(),
    })
}

fn read_file(path: &str) -> ToolCall {
    ToolCall::ReadFile(ReadFileArgs {
        path: path.to_owned(),
    })
}

fn write_file(path: &str, content: &str) -> ToolCall {
    ToolCall::WriteFile(WriteFileArgs {
        path: path.to_owned(),
        content: content.to_owned(),
    })
}

fn list_files(prefix: Option<&str>) -> ToolCall {
    ToolCall::ListFiles(ListFilesArgs {
        prefix: prefix.map(str::to_owned),
    })
}

fn refused(code: &str, message: &str) -> Value {
    json!({"ok": false, "error": {"code": code, "message": message}})
}

/// A run's output without its wall-clock duration.
fn without_duration(mut output: Value) -> Value {
    assert!(output["duration_ms"].is_u64(), "{output}");
    output.as_object_mut().unwrap().remove("duration_ms");
    output
}

#[tokio::test]
async fn a_file_the_agent_writes_is_run_on_read_back_and_listed_as_the_routes_show_it() {
    let (app, s, exec) = app_user_tools(&[]).await;
    assert_eq!(
        tool(&exec, &s.user_id, write_file("notes/a.txt", "b\na\n")).await,
        json!({"ok": true, "output": {"path": "notes/a.txt", "size": 4, "created": true}})
    );
    let r = app.get("/exec/files/notes/a.txt", &s.access).await;
    assert_eq!((r.status.as_u16(), r.text.as_str()), (200, "b\na\n"));

    let ran = tool(&exec, &s.user_id, run_command("sort notes/a.txt")).await;
    assert_eq!(ran["ok"], json!(true), "{ran}");
    assert_eq!(
        without_duration(ran["output"].clone()),
        json!({
            "exit_code": 0, "signal": null, "stdout": "a\nb\n", "stderr": "",
            "stdout_encoding": "utf8", "stderr_encoding": "utf8",
            "stdout_truncated": false, "stderr_truncated": false,
            "timed_out": false, "output_limit_exceeded": false, "files_saved": true,
        })
    );
    let ran = tool(&exec, &s.user_id, run_command("cp notes/a.txt b.bin")).await;
    assert_eq!(ran["output"]["files_saved"], json!(true), "{ran}");

    assert_eq!(
        tool(&exec, &s.user_id, write_file("notes/a.txt", "é\n")).await,
        json!({"ok": true, "output": {"path": "notes/a.txt", "size": 3, "created": false}})
    );
    assert_eq!(
        tool(&exec, &s.user_id, read_file("notes/a.txt")).await,
        json!({"ok": true, "output": {"path": "notes/a.txt", "size": 3, "encoding": "utf8", "content": "é\n"}})
    );
    let r = app
        .file(Method::PUT, "/exec/files/raw.bin", &s.access, &[0xff, 0xfe])
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        tool(&exec, &s.user_id, read_file("raw.bin")).await,
        json!({"ok": true, "output": {"path": "raw.bin", "size": 2, "encoding": "base64", "content": "//4="}})
    );

    let listed = tool(&exec, &s.user_id, list_files(None)).await;
    let r = app.get("/exec/files", &s.access).await;
    assert_eq!(listed, json!({"ok": true, "output": r.body}));
    assert_eq!(
        listed["output"]["files"],
        json!([
            {"path": "b.bin", "size": 4},
            {"path": "notes/a.txt", "size": 3},
            {"path": "raw.bin", "size": 2},
        ])
    );
    let r = app.get("/exec/files?prefix=notes/", &s.access).await;
    assert_eq!(
        tool(&exec, &s.user_id, list_files(Some("notes/"))).await,
        json!({"ok": true, "output": r.body})
    );
}

#[tokio::test]
async fn the_agent_runs_the_toolset_and_pipelines_exactly_as_the_route_does() {
    let (app, s, exec) = app_user_tools(&[]).await;
    let data = r#"{"items":[{"name":"b","n":2},{"name":"a","n":1},{"name":"c","n":3}]}"#;
    assert_eq!(
        tool(&exec, &s.user_id, write_file("data.json", data)).await["ok"],
        json!(true)
    );
    let line = "jq -r '.items[] | .name' data.json | sort -r | head -n 2";
    let ran = tool(&exec, &s.user_id, run_command(line)).await;
    assert_eq!(ran["ok"], json!(true), "{ran}");
    let output = without_duration(ran["output"].clone());
    assert_eq!(output["stdout"], json!("c\nb\n"), "{ran}");
    assert_eq!(
        output["stages"],
        json!([
            {"command": "jq", "exit_code": 0, "signal": null},
            {"command": "sort", "exit_code": 0, "signal": null},
            {"command": "head", "exit_code": 0, "signal": null},
        ])
    );
    let r = app.exec(&s.access, json!({"command": line})).await;
    assert_eq!(without_duration(r.body), output);

    let ran = tool(
        &exec,
        &s.user_id,
        run_command("grep -c '\"n\"' data.json | awk '{print $1 * 10}'"),
    )
    .await;
    assert_eq!(ran["output"]["stdout"], json!("10\n"), "{ran}");
    let ran = tool(
        &exec,
        &s.user_id,
        run_command("find . -name '*.json' -type f | xargs wc -c"),
    )
    .await;
    assert_eq!(
        ran["output"]["stdout"],
        json!(format!("{} ./data.json\n", data.len())),
        "{ran}"
    );
    let ran = tool(
        &exec,
        &s.user_id,
        run_command("sed -n 's/.*\"c\".*/third/p' data.json"),
    )
    .await;
    assert_eq!(ran["output"]["stdout"], json!("third"), "{ran}");

    for (line, message) in [
        (
            "cat data.json | sh -c id",
            "stage 2: command \"sh\" is not allowed",
        ),
        (
            "cat data.json | sed 'w /tmp/x'",
            "stage 2: sed: the w command (reads or writes a file) is not allowed",
        ),
        (
            "find . -exec cat {} ;",
            "find: -exec is refused: it runs a program",
        ),
        (
            "ls | xargs sed",
            "stage 2: xargs: sed is refused as a command: an appended item would be a sed script",
        ),
        (
            "cat data.json | awk 'BEGIN { system(\"id\") }'",
            "stage 2: awk: system() runs a command",
        ),
    ] {
        assert_eq!(
            tool(&exec, &s.user_id, run_command(line)).await,
            refused("command_not_allowed", message),
            "{line}"
        );
    }
}

#[tokio::test]
async fn no_argument_reaches_another_users_files_or_the_hosts() {
    let (app, s, exec) = app_user_tools(&[]).await;
    let victim = app.signed_up("victim@example.com").await;
    let r = app
        .file(
            Method::PUT,
            "/exec/files/secret.txt",
            &victim.access,
            b"the victim's",
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // The victim's workspace directory, named as the store names it, as an attacker would guess.
    let victim_dir = std::fs::read_dir(app.workspace_root().unwrap())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    let up = format!("../{victim_dir}/secret.txt");
    let parent = "path must not contain '..'";
    let absolute = "path must be relative to the sandbox";
    let cases = [
        (
            read_file("secret.txt"),
            refused("not_found", "no such file"),
        ),
        (read_file(&up), refused("invalid_path", parent)),
        (read_file("/etc/passwd"), refused("invalid_path", absolute)),
        (
            read_file("/proc/self/environ"),
            refused("invalid_path", absolute),
        ),
        (write_file(&up, "x"), refused("invalid_path", parent)),
        (list_files(Some("../")), refused("invalid_path", parent)),
        (
            run_command(&format!("cat {up}")),
            refused("invalid_path", "argument 1: path must not contain '..'"),
        ),
        (
            run_command("cat /proc/self/environ"),
            refused(
                "invalid_path",
                "argument 1: path must be relative to the sandbox",
            ),
        ),
    ];
    for (call, expected) in cases {
        assert_eq!(
            tool(&exec, &s.user_id, call.clone()).await,
            expected,
            "{call:?}"
        );
    }
    let listed = tool(&exec, &s.user_id, list_files(None)).await;
    assert_eq!(listed["output"]["files"], json!([]), "{listed}");
    let ran = tool(&exec, &s.user_id, run_command("ls -a")).await;
    assert_eq!(ran["output"]["stdout"], json!(".\n..\n"), "{ran}");
    // The victim's file is untouched and still only theirs.
    let r = app.get("/exec/files/secret.txt", &victim.access).await;
    assert_eq!((r.status.as_u16(), r.text.as_str()), (200, "the victim's"));
}

#[tokio::test]
async fn refusals_are_results_with_the_codes_and_messages_the_routes_answer() {
    let quota = [("EXEC_SANDBOX_QUOTA_BYTES", "2048")];
    let (app, s, exec) = app_user_tools(&quota).await;
    let r = app
        .file(Method::PUT, "/exec/files/dir/inner", &s.access, b"x")
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let big = "x".repeat(3000);
    let over_a_mebibyte = "y".repeat(1024 * 1024 + 1);
    let cases = [
        (
            run_command("sh -c id"),
            refused("command_not_allowed", "command \"sh\" is not allowed"),
        ),
        (
            run_command("echo 'open"),
            refused("invalid_command", "unterminated single quote"),
        ),
        (
            run_command(""),
            refused("invalid_argv", "argv must have 1 to 64 items"),
        ),
        (
            read_file("dir"),
            refused("is_a_directory", "path names a directory"),
        ),
        (
            read_file("dir/inner/deeper"),
            refused("not_a_directory", "a parent of the path is not a directory"),
        ),
        (
            write_file("big.txt", &big),
            refused("sandbox_quota_exceeded", "sandbox storage quota exceeded"),
        ),
        (
            write_file("huge.txt", &over_a_mebibyte),
            refused("payload_too_large", "file exceeds 1 MiB"),
        ),
    ];
    for (call, expected) in cases {
        let name = call.name();
        assert_eq!(tool(&exec, &s.user_id, call).await, expected, "{name}");
    }
    // The same refusals over HTTP, for the two that are the tools' own input.
    let r = app.exec(&s.access, json!({"command": "sh -c id"})).await;
    r.assert_error(400, "command_not_allowed", "command \"sh\" is not allowed");
    let r = app
        .file(
            Method::PUT,
            "/exec/files/big.txt",
            &s.access,
            big.as_bytes(),
        )
        .await;
    r.assert_error(
        413,
        "sandbox_quota_exceeded",
        "sandbox storage quota exceeded",
    );
}

#[tokio::test]
async fn invocations_and_http_runs_share_the_users_run_limit_and_are_audited_with_the_invocations_request_id()
 {
    shared_limit_and_audit(None).await;
}

#[tokio::test]
async fn on_dynamodb_invocations_and_http_runs_share_the_run_limit_and_are_audited_alike() {
    shared_limit_and_audit(Some(dynamodb_stores().await)).await;
}

async fn shared_limit_and_audit(stores: Option<Stores>) {
    let (app, s, exec) = app_user_tools_on(stores, &[("EXEC_RUNS_PER_MINUTE", "1")]).await;
    let first = invocation(&s.user_id, run_command("echo one"));
    let ran = exec.run_tool(&first).await.to_value();
    assert_eq!(ran["output"]["stdout"], json!("one\n"), "{ran}");
    assert_eq!(
        tool(&exec, &s.user_id, run_command("echo two")).await,
        refused("rate_limited", "too many requests; retry later")
    );
    let r = app
        .exec(&s.access, json!({"argv": ["echo", "three"]}))
        .await;
    r.assert_error(429, "rate_limited", "too many requests; retry later");
    // Another user has an allowance of their own.
    let other = app.signed_up("other@example.com").await;
    let ran = tool(&exec, &other.user_id, run_command("echo mine")).await;
    assert_eq!(ran["output"]["stdout"], json!("mine\n"), "{ran}");

    let refused_run = invocation(&s.user_id, run_command("env"));
    app.clock.advance(120);
    assert_eq!(
        exec.run_tool(&refused_run).await.to_value(),
        refused("command_not_allowed", "command \"env\" is not allowed")
    );
    let mine: Vec<_> = app
        .audit_of_kind("exec_run")
        .await
        .into_iter()
        .filter(|e| e.user_id.as_ref().map(UserId::as_str) == Some(s.user_id.as_str()))
        .map(|e| {
            (
                e.outcome.as_str(),
                e.request_id.to_string(),
                e.ip,
                e.user_agent,
                e.detail.unwrap_or_default(),
            )
        })
        .collect();
    let one = &mine[1];
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert_eq!(
        (one.0, one.1.as_str(), one.2.as_str(), one.3.as_str()),
        (
            "success",
            first.request_id.as_str(),
            "",
            "bastion-chat-agent"
        )
    );
    assert!(
        one.4
            .starts_with("command=echo args=1 exit=0 signal=none timed_out=false"),
        "{}",
        one.4
    );
    assert_eq!(
        (mine[0].0, mine[0].1.as_str(), mine[0].4.as_str()),
        (
            "failure",
            refused_run.request_id.as_str(),
            "refused=command_not_allowed command=env args=0"
        )
    );
}

#[tokio::test]
async fn a_held_lease_turns_an_invocation_away_as_it_turns_a_run_away() {
    held_lease(None).await;
}

#[tokio::test]
async fn on_dynamodb_a_held_lease_turns_an_invocation_away() {
    held_lease(Some(dynamodb_stores().await)).await;
}

async fn held_lease(stores: Option<Stores>) {
    let (app, s, exec) = app_user_tools_on(stores, &[]).await;
    let user = UserId::parse(&s.user_id).unwrap();
    let now: Timestamp = app.clock.now();
    // Another instance's run holds the user's lease.
    assert!(
        app.stores
            .leases
            .acquire_lease(&format!("exec#{user}"), &RequestId::generate(), now, 76)
            .await
            .unwrap()
    );
    assert_eq!(
        tool(&exec, &s.user_id, run_command("echo hi")).await,
        refused("run_in_progress", "another run of yours is in progress")
    );
    assert_eq!(
        tool(&exec, &s.user_id, write_file("f.txt", "x")).await,
        refused(
            "workspace_busy",
            "a run or another change of your files is in progress; retry shortly"
        )
    );
    // Reading and listing take no lease, as over HTTP.
    let listed = tool(&exec, &s.user_id, list_files(None)).await;
    assert_eq!(listed["ok"], json!(true), "{listed}");
    app.clock.advance(76);
    let ran = tool(&exec, &s.user_id, run_command("echo hi")).await;
    assert_eq!(ran["output"]["stdout"], json!("hi\n"), "{ran}");
}

#[tokio::test]
async fn a_megabyte_of_output_comes_back_capped_exactly_as_over_http() {
    let (app, s, exec) = app_user_tools(&[]).await;
    let megabyte: Vec<u8> = (0..1024 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let r = app
        .file(Method::PUT, "/exec/files/big.txt", &s.access, &megabyte)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let ran = tool(&exec, &s.user_id, run_command("cat big.txt")).await;
    let over_http = app.exec(&s.access, json!({"command": "cat big.txt"})).await;
    assert_eq!(over_http.status, 200, "{}", over_http.text);
    let output = without_duration(ran["output"].clone());
    assert_eq!(output, without_duration(over_http.body));
    assert_eq!(
        output["stdout"].as_str().unwrap().as_bytes(),
        &megabyte[..65536]
    );
    assert_eq!(
        (
            output["stdout_truncated"].clone(),
            output["exit_code"].clone()
        ),
        (json!(true), json!(0))
    );
}

#[tokio::test]
async fn a_command_runs_at_the_configured_maximum_timeout() {
    let settings = [
        ("EXEC_ALLOWED_COMMANDS", "echo,sleep"),
        ("EXEC_TIMEOUT_MS", "300"),
    ];
    let (_, s, exec) = app_user_tools(&settings).await;
    let ran = tool(&exec, &s.user_id, run_command("sleep 5")).await;
    let output = &ran["output"];
    assert_eq!(
        (
            output["timed_out"].clone(),
            output["signal"].clone(),
            output["exit_code"].clone()
        ),
        (json!(true), json!(9), Value::Null),
        "{ran}"
    );
}

/// Waits until a `sleep` with exactly the arguments `args` runs on this host (this test's run:
/// no other test sleeps for that long).
async fn sleeping(args: &str) {
    let wanted = format!("\0{args}\0");
    loop {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if comm.trim() == "sleep" && String::from_utf8_lossy(&cmdline).ends_with(&wanted) {
                return;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_caller_that_stops_waiting_leaves_the_run_to_finish_and_release_the_lease() {
    // Enough runs a minute that only the lease can turn the retries below away.
    let settings = [
        ("EXEC_ALLOWED_COMMANDS", "echo,sleep"),
        ("EXEC_RUNS_PER_MINUTE", "1000"),
    ];
    let (_, s, exec) = app_user_tools(&settings).await;
    let long = invocation(&s.user_id, run_command("sleep 1.37"));
    // The caller gives up once the run is under way, the user's lease taken.
    tokio::select! {
        outcome = exec.run_tool(&long) => panic!("the run ended first: {outcome:?}"),
        () = sleeping("1.37") => {}
    }
    assert_eq!(
        tool(&exec, &s.user_id, run_command("echo hi")).await,
        refused("run_in_progress", "another run of yours is in progress"),
        "the abandoned run still holds the lease"
    );
    // The test clock never moves, so only the abandoned run's own release frees the lease.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let ran = tool(&exec, &s.user_id, run_command("echo hi")).await;
        if ran["ok"] == json!(true) {
            assert_eq!(ran["output"]["stdout"], json!("hi\n"));
            break;
        }
        assert_eq!(
            ran,
            refused("run_in_progress", "another run of yours is in progress")
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the lease was never released"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
