//! The agent's tools through the exec binary's real entry, as the chat function invokes them
//! (a direct invoke of `{"bastion_tool_invocation": …}`): a run in the user's workspace that
//! HTTP reads back, no argument reaching another user's files, an API Gateway event carrying
//! the document handled as the HTTP request it is, malformed documents refused, the run limit
//! and the lease shared with HTTP runs, and a megabyte of output capped exactly as over HTTP.

use std::sync::atomic::{AtomicU64, Ordering};

use bastion_lambda_tests::{Deployment, Function, Outcome, RestEvent};
use serde_json::{Value, json};

use crate::exec::{WITH_SLEEP, running};
use crate::{put_file, signed_up};

const KEY: &str = "bastion_tool_invocation";

/// A request id (32 hex digits) no other invocation of this run has used.
fn request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:016x}{:016x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The event chat invokes exec with.
fn invocation(user: &str, tool: &str, arguments: Value) -> Value {
    json!({KEY: {"user_id": user, "request_id": request_id(), "tool": tool, "arguments": arguments}})
}

/// What the function answers a direct invoke of `document`.
async fn answer(exec: &Function, document: Value) -> Value {
    match exec.invoke(document).await {
        Outcome::Response(v) => v,
        other => panic!("the invocation failed: {other:?}"),
    }
}

async fn tool(exec: &Function, user: &str, tool: &str, arguments: Value) -> Value {
    answer(exec, invocation(user, tool, arguments)).await
}

fn refused(code: &str, message: &str) -> Value {
    json!({"ok": false, "error": {"code": code, "message": message}})
}

fn without_duration(mut output: Value) -> Value {
    assert!(output["duration_ms"].is_u64(), "{output}");
    output.as_object_mut().unwrap().remove("duration_ms");
    output
}

/// The user's files as `GET /exec/files` lists them.
async fn listed(exec: &Function, access: &str) -> Value {
    let r = exec
        .call(&RestEvent::get("/exec/files").bearer(access))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["files"].clone()
}

#[tokio::test]
async fn a_direct_invocation_runs_in_the_users_workspace_and_http_reads_back_what_it_did() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let (user, access) = signed_up(&auth, "agent@example.com").await;
    let exec = d.start("exec").await;
    assert_eq!(
        tool(
            &exec,
            &user,
            "write_file",
            json!({"path": "notes.txt", "content": "b\na\n"})
        )
        .await,
        json!({"ok": true, "output": {"path": "notes.txt", "size": 4, "created": true}})
    );
    let ran = tool(
        &exec,
        &user,
        "run_command",
        json!({"command": "sort notes.txt"}),
    )
    .await;
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
    let ran = tool(
        &exec,
        &user,
        "run_command",
        json!({"command": "cp notes.txt copy.txt"}),
    )
    .await;
    assert_eq!(ran["output"]["exit_code"], json!(0), "{ran}");

    let read = exec
        .call(&RestEvent::get("/exec/files/copy.txt").bearer(&access))
        .await;
    assert_eq!((read.status, read.text()), (200, "b\na\n".to_owned()));
    assert_eq!(
        tool(&exec, &user, "read_file", json!({"path": "copy.txt"})).await,
        json!({"ok": true, "output": {"path": "copy.txt", "size": 4, "encoding": "utf8", "content": "b\na\n"}})
    );
    let http = exec
        .call(&RestEvent::get("/exec/files").bearer(&access))
        .await;
    assert_eq!(
        tool(&exec, &user, "list_files", json!({})).await,
        json!({"ok": true, "output": http.json()})
    );
}

#[tokio::test]
async fn no_argument_of_an_invocation_reaches_another_users_files() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let (attacker, _) = signed_up(&auth, "attacker@example.com").await;
    let (_, victim) = signed_up(&auth, "victim@example.com").await;
    let exec = d.start("exec").await;
    let r = exec
        .call(&put_file("secret.txt", &victim, b"the victim's"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let parent = "path must not contain '..'";
    let cases = [
        (
            "read_file",
            json!({"path": "secret.txt"}),
            refused("not_found", "no such file"),
        ),
        (
            "read_file",
            json!({"path": "../secret.txt"}),
            refused("invalid_path", parent),
        ),
        (
            "read_file",
            json!({"path": "/tmp/sandbox/secret.txt"}),
            refused("invalid_path", "path must be relative to the sandbox"),
        ),
        (
            "list_files",
            json!({"prefix": "../"}),
            refused("invalid_path", parent),
        ),
        (
            "run_command",
            json!({"command": "cat ../secret.txt"}),
            refused("invalid_path", "argument 1: path must not contain '..'"),
        ),
    ];
    for (name, arguments, expected) in cases {
        assert_eq!(
            tool(&exec, &attacker, name, arguments.clone()).await,
            expected,
            "{arguments}"
        );
    }
    let all = tool(&exec, &attacker, "list_files", json!({})).await;
    assert_eq!(all["output"]["files"], json!([]), "{all}");
    // An argument naming the victim is no argument at all.
    let named = tool(
        &exec,
        &attacker,
        "read_file",
        json!({"path": "secret.txt", "user_id": "0123456789abcdef0123456789abcdef"}),
    )
    .await;
    assert_eq!(
        named,
        refused("invalid_invocation", "the tool invocation is not valid")
    );
    assert_eq!(
        listed(&exec, &victim).await,
        json!([{"path": "secret.txt", "size": 12}])
    );
}

#[tokio::test]
async fn an_api_gateway_event_carrying_an_invocation_is_handled_as_the_http_request_it_is() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let (user, access) = signed_up(&auth, "smuggler@example.com").await;
    let exec = d.start("exec").await;
    let smuggled = invocation(
        &user,
        "write_file",
        json!({"path": "pwned.txt", "content": "x"}),
    );
    let text = smuggled.to_string();
    let in_body = RestEvent::post_json("/exec/run", &smuggled);
    let in_header =
        RestEvent::post_json("/exec/run", &json!({"argv": ["echo"]})).header(KEY, &text);
    let in_query = RestEvent::post_json("/exec/run", &json!({"argv": ["echo"]})).query(KEY, &text);
    for event in [&in_body, &in_header, &in_query] {
        exec.call(event)
            .await
            .assert_error(401, "unauthorized", "missing bearer token");
    }
    let in_path = RestEvent::get(&format!("/exec/files/{KEY}")).bearer(&access);
    exec.call(&in_path)
        .await
        .assert_error(404, "not_found", "no such file");
    let as_route = RestEvent::post_json(&format!("/{KEY}"), &smuggled).bearer(&access);
    assert_eq!(exec.call(&as_route).await.status, 404);
    // With the user's token the body is a run request, and not a valid one.
    let r = exec.call(&in_body.clone().bearer(&access)).await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (400, json!("invalid_request")),
        "{}",
        r.text()
    );
    assert_eq!(listed(&exec, &access).await, json!([]), "nothing ran");
}

#[tokio::test]
async fn a_document_with_the_key_and_anything_beside_or_inside_it_is_refused() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let (user, access) = signed_up(&auth, "strict@example.com").await;
    let exec = d.start("exec").await;
    let valid = invocation(
        &user,
        "write_file",
        json!({"path": "pwned.txt", "content": "x"}),
    );
    let mut with_gateway = RestEvent::post_json("/exec/run", &json!({"argv": ["echo"]}))
        .bearer(&access)
        .to_json();
    with_gateway[KEY] = valid[KEY].clone();
    let mut inner_field = valid.clone();
    inner_field[KEY]["workspace"] = json!("someone-else");
    let mut argument_field = valid.clone();
    argument_field[KEY]["arguments"]["quota_bytes"] = json!(1_000_000_000);
    let invalid = refused("invalid_invocation", "the tool invocation is not valid");
    for document in [with_gateway, inner_field, argument_field] {
        assert_eq!(answer(&exec, document.clone()).await, invalid, "{document}");
    }
    assert_eq!(
        listed(&exec, &access).await,
        json!([]),
        "nothing was written"
    );
    assert!(
        exec.output().contains("tool_invocation_refused"),
        "a refused invocation is logged"
    );
}

#[tokio::test]
async fn the_run_limit_applies_to_invocations_and_http_runs_together() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let (user, access) = signed_up(&auth, "limited@example.com").await;
    let exec = d
        .start_with("exec", &d.env("exec").set("EXEC_RUNS_PER_MINUTE", "1"))
        .await;
    let ran = tool(&exec, &user, "run_command", json!({"command": "echo one"})).await;
    assert_eq!(ran["output"]["stdout"], json!("one\n"), "{ran}");
    assert_eq!(
        tool(&exec, &user, "run_command", json!({"command": "echo two"})).await,
        refused("rate_limited", "too many requests; retry later")
    );
    let r = exec
        .call(&RestEvent::post_json("/exec/run", &json!({"argv": ["echo"]})).bearer(&access))
        .await;
    r.assert_error(429, "rate_limited", "too many requests; retry later");
}

#[tokio::test]
async fn an_invocation_while_an_http_run_holds_the_users_lease_is_turned_away() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let (user, access) = signed_up(&auth, "leased@example.com").await;
    let env = d.env("exec").set("EXEC_ALLOWED_COMMANDS", WITH_SLEEP);
    let a = d.start_with("exec", &env).await;
    let root = d.scratch.join("instance-b-sandbox");
    let b = d
        .start_with(
            "exec",
            &env.clone().set("SANDBOX_ROOT", &root.display().to_string()),
        )
        .await;
    let long = RestEvent::post_json("/exec/run", &json!({"argv": ["sleep", "3"]})).bearer(&access);
    let second = async {
        // Sent only once A's run is seen running, so A holds the lease by then.
        running(a.pid, "sleep").await.expect("A's run started");
        tool(&b, &user, "run_command", json!({"command": "echo hi"})).await
    };
    let (first, second) = tokio::join!(a.call(&long), second);
    assert_eq!(
        second,
        refused("run_in_progress", "another run of yours is in progress")
    );
    assert_eq!(first.status, 200, "{}", first.text());
    let after = tool(&b, &user, "run_command", json!({"command": "echo hi"})).await;
    assert_eq!(after["output"]["stdout"], json!("hi\n"), "{after}");
}

#[tokio::test]
async fn a_megabyte_of_command_output_comes_back_capped_exactly_as_over_http() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let (user, access) = signed_up(&auth, "flood@example.com").await;
    let exec = d.start("exec").await;
    let megabyte: Vec<u8> = (0..1024 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let r = exec.call(&put_file("big.txt", &access, &megabyte)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let ran = tool(
        &exec,
        &user,
        "run_command",
        json!({"command": "cat big.txt"}),
    )
    .await;
    let http = exec
        .call(
            &RestEvent::post_json("/exec/run", &json!({"command": "cat big.txt"})).bearer(&access),
        )
        .await;
    assert_eq!(http.status, 200, "{}", http.text());
    let output = without_duration(ran["output"].clone());
    assert_eq!(output, without_duration(http.json()));
    assert_eq!(
        output["stdout"].as_str().unwrap().as_bytes(),
        &megabyte[..65536]
    );
    assert_eq!(output["stdout_truncated"], json!(true));
}
