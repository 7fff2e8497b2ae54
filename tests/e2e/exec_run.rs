//! `POST /exec/run` and `/exec/health` through the full edge: exact bodies for results and
//! refusals, escape attempts that the policy refuses, floods, timeouts, limits and audit.

use http::Method;
use serde_json::{Value, json};

use crate::helpers::{Session, TestApp};

async fn app_and_user(extra: &[(&str, &str)]) -> (TestApp, Session) {
    let app = TestApp::builder().exec(extra).build().await;
    let s = app.signed_up("runner@example.com").await;
    (app, s)
}

/// The run body without its wall-clock duration.
fn without_duration(mut body: Value) -> Value {
    assert!(body["duration_ms"].is_u64(), "{body}");
    body.as_object_mut().unwrap().remove("duration_ms");
    body
}

fn result(stdout: &str, stderr: &str, exit_code: i64) -> Value {
    json!({
        "exit_code": exit_code, "signal": null,
        "stdout": stdout, "stderr": stderr,
        "stdout_encoding": "utf8", "stderr_encoding": "utf8",
        "stdout_truncated": false, "stderr_truncated": false,
        "timed_out": false, "output_limit_exceeded": false, "files_saved": true,
    })
}

#[tokio::test]
async fn echo_hi_returns_its_output_and_exit_code() {
    let (app, s) = app_and_user(&[]).await;
    let r = app.exec(&s.access, json!({"argv": ["echo", "hi"]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(without_duration(r.body), result("hi\n", "", 0));
}

#[tokio::test]
async fn a_command_line_is_split_without_any_expansion() {
    let (app, s) = app_and_user(&[]).await;
    let r = app
        .exec(
            &s.access,
            json!({"command": "echo 'a  b' $HOME \"$(id)\" `id` ; ls && rm -rf / '|' cat > x &"}),
        )
        .await;
    assert_eq!(
        without_duration(r.body),
        result(
            "a  b $HOME $(id) `id` ; ls && rm -rf / | cat > x &\n",
            "",
            0
        )
    );
    let r = app.exec(&s.access, json!({"command": "echo 'open"})).await;
    r.assert_error(400, "invalid_command", "unterminated single quote");
}

#[tokio::test]
async fn a_run_needs_a_bearer_token() {
    let (app, _) = app_and_user(&[]).await;
    let r = app
        .call(
            Method::POST,
            "/exec/run",
            None,
            Some(json!({"argv": ["echo", "hi"]})),
        )
        .await;
    r.assert_error(401, "unauthorized", "missing bearer token");
}

#[tokio::test]
async fn commands_and_options_off_the_allowlist_are_refused_by_name() {
    let (app, s) = app_and_user(&[]).await;
    let cases = [
        (json!(["sh", "-c", "id"]), "command \"sh\" is not allowed"),
        (
            json!(["/bin/cat", "x"]),
            "command \"/bin/cat\" is not allowed",
        ),
        (json!(["env"]), "command \"env\" is not allowed"),
        (
            json!(["find", ".", "-exec", "sh", ";"]),
            "find: -exec is refused: it runs a program",
        ),
        (
            json!(["sed", "e id"]),
            "sed: the e command (runs a program) is not allowed",
        ),
        (
            json!(["sed", "s/x/y/w ../../out", "a"]),
            "sed: the w flag of s (writes a file) is not allowed",
        ),
        (
            json!(["grep", "-R", "x", "."]),
            "option \"-R\" is not allowed for grep",
        ),
        (
            json!(["tar", "--to-command=sh", "-xf", "a"]),
            "command \"tar\" is not allowed",
        ),
        (
            json!(["ln", "-s", "/", "root"]),
            "command \"ln\" is not allowed",
        ),
        (
            json!(["sort", "--compress-program=sh", "a"]),
            "option \"--compress-program\" is not allowed for sort",
        ),
        (
            json!(["sort", "--compress-prog=sh", "a"]),
            "option \"--compress-prog\" is not allowed for sort",
        ),
        (
            json!(["cp", "-s", "a", "b"]),
            "option \"-s\" is not allowed for cp",
        ),
        (
            json!(["cp", "--symbolic-link", "a", "b"]),
            "option \"--symbolic-link\" is not allowed for cp",
        ),
        (
            json!(["diff", "--paginate", "a", "b"]),
            "option \"--paginate\" is not allowed for diff",
        ),
        (
            json!(["date", "--set=2020-01-01"]),
            "option \"--set\" is not allowed for date",
        ),
        (
            json!(["sha256sum", "-c", "sums"]),
            "option \"-c\" is not allowed for sha256sum",
        ),
    ];
    for (argv, message) in cases {
        let r = app.exec(&s.access, json!({"argv": argv})).await;
        r.assert_error(400, "command_not_allowed", message);
    }
}

#[tokio::test]
async fn file_arguments_obey_the_path_rules_in_every_spelling() {
    let (app, s) = app_and_user(&[]).await;
    let parent = "argument 1: path must not contain '..'";
    let absolute = "argument 1: path must be relative to the sandbox";
    // A value in its own word is named by its own position.
    let parent_2 = "argument 2: path must not contain '..'";
    let absolute_2 = "argument 2: path must be relative to the sandbox";
    let cases = [
        (json!(["cat", "../x"]), parent),
        (json!(["cat", "a/../../x"]), parent),
        (json!(["cat", ".."]), parent),
        (json!(["cat", "/proc/self/environ"]), absolute),
        (json!(["cat", "/proc/1/environ"]), absolute),
        (json!(["cat", "//etc/passwd"]), absolute),
        (json!(["cp", "-t", "/tmp", "a"]), absolute_2),
        (json!(["cp", "-t/tmp", "a"]), absolute),
        (json!(["mv", "--target-directory=../other", "a"]), parent),
        (json!(["sort", "-o", "/tmp/out", "a"]), absolute_2),
        // diff takes --unified's number only after `=`: the next word is a file.
        (
            json!(["diff", "--unified", "../../dev-secrets.env", "-"]),
            parent_2,
        ),
        (
            json!(["diff", "--unified", "..", "--unified", "x"]),
            parent_2,
        ),
        (json!(["diff", "--context", "../a", "b"]), parent_2),
        (json!(["ls", "--color", ".."]), parent_2),
        (
            json!(["cat", "a//b"]),
            "argument 1: path must not contain empty components",
        ),
    ];
    for (argv, message) in cases {
        let r = app.exec(&s.access, json!({"argv": argv})).await;
        r.assert_error(400, "invalid_path", message);
    }
    let r = app
        .exec(&s.access, json!({"argv": ["date", "010100002030"]}))
        .await;
    r.assert_error(400, "command_not_allowed", "date operands must be +FORMAT");
}

#[tokio::test]
async fn argv_and_stdin_and_timeout_are_bounded() {
    let (app, s) = app_and_user(&[]).await;
    let mut many = vec!["echo".to_owned()];
    many.extend((0..64).map(|i| i.to_string()));
    let r = app.exec(&s.access, json!({"argv": many})).await;
    r.assert_error(400, "invalid_argv", "argv must have 1 to 64 items");
    let r = app.exec(&s.access, json!({"argv": []})).await;
    r.assert_error(400, "invalid_argv", "argv must have 1 to 64 items");
    let r = app
        .exec(&s.access, json!({"argv": ["echo", "x".repeat(4097)]}))
        .await;
    r.assert_error(
        400,
        "invalid_argv",
        "each argument must be at most 4096 bytes",
    );
    let r = app
        .exec(&s.access, json!({"argv": ["echo", "a\u{0}b"]}))
        .await;
    r.assert_error(400, "invalid_argv", "arguments must not contain NUL");
    let r = app.exec(&s.access, json!({"command": "cat a\u{0}b"})).await;
    r.assert_error(400, "invalid_argv", "arguments must not contain NUL");
    let r = app
        .exec(
            &s.access,
            json!({"argv": ["cat"], "stdin": "x".repeat(65537)}),
        )
        .await;
    r.assert_error(400, "invalid_stdin", "stdin must be at most 65536 bytes");
    let r = app
        .exec(&s.access, json!({"argv": ["echo"], "timeout_ms": 10001}))
        .await;
    r.assert_error(
        400,
        "invalid_timeout",
        "timeout_ms must be between 1 and 10000",
    );
    let r = app
        .exec(&s.access, json!({"argv": ["echo"], "command": "echo"}))
        .await;
    r.assert_error(400, "invalid_request", "give argv or command, not both");
    let huge = "y".repeat(1024 * 1024 + 1);
    let r = app.exec(&s.access, json!({"command": huge})).await;
    r.assert_error(413, "payload_too_large", "request body exceeds 1 MiB");
}

#[tokio::test]
async fn stdin_reaches_the_command() {
    let (app, s) = app_and_user(&[]).await;
    let r = app
        .exec(&s.access, json!({"argv": ["sort"], "stdin": "b\na\nc\n"}))
        .await;
    assert_eq!(without_duration(r.body), result("a\nb\nc\n", "", 0));
}

#[tokio::test]
async fn a_stdin_reader_sent_no_stdin_ends_at_once_with_exit_zero() {
    let (app, s) = app_and_user(&[]).await;
    for argv in [json!(["sort"]), json!(["cat"])] {
        let r = app
            .exec(&s.access, json!({"argv": argv, "timeout_ms": 10000}))
            .await;
        assert_eq!(without_duration(r.body), result("", "", 0), "{argv}");
    }
}

#[tokio::test]
async fn non_utf8_output_is_returned_as_base64_and_flagged() {
    let (app, s) = app_and_user(&[]).await;
    let r = app
        .exec(&s.access, json!({"argv": ["printf", "\\377\\376ok"]}))
        .await;
    assert_eq!(r.body["stdout"], "//5vaw==");
    assert_eq!(r.body["stdout_encoding"], "base64");
    assert_eq!(r.body["stderr_encoding"], "utf8");
}

#[tokio::test]
async fn an_output_flood_is_truncated_and_killed_at_the_hard_cap() {
    let (app, s) = app_and_user(&[("EXEC_OUTPUT_HARD_CAP_BYTES", "1048576")]).await;
    let r = app
        .exec(&s.access, json!({"argv": ["seq", "1", "100000000"]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["stdout"].as_str().unwrap().len(), 65536);
    assert_eq!(r.body["stdout_truncated"], true);
    assert_eq!(r.body["output_limit_exceeded"], true);
    assert_eq!(r.body["signal"], 9);
    assert_eq!(r.body["exit_code"], Value::Null);
    assert_eq!(r.body["timed_out"], false);
}

#[tokio::test]
async fn a_sleeping_command_is_killed_at_its_timeout() {
    let (app, s) = app_and_user(&[("EXEC_ALLOWED_COMMANDS", "echo,sleep")]).await;
    let r = app
        .exec(
            &s.access,
            json!({"argv": ["sleep", "30"], "timeout_ms": 200}),
        )
        .await;
    assert_eq!(r.body["timed_out"], true, "{}", r.text);
    assert_eq!(r.body["signal"], 9);
    assert_eq!(r.body["exit_code"], Value::Null);
    let r = app.exec(&s.access, json!({"argv": ["cat", "x"]})).await;
    r.assert_error(400, "command_not_allowed", "command \"cat\" is not allowed");
}

#[tokio::test]
async fn runs_are_limited_to_twenty_a_minute_per_user() {
    let (app, s) = app_and_user(&[]).await;
    for _ in 0..20 {
        let r = app.exec(&s.access, json!({"argv": ["echo"]})).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = app.exec(&s.access, json!({"argv": ["echo"]})).await;
    r.assert_error(429, "rate_limited", "too many requests; retry later");
    let other = app.signed_up("other@example.com").await;
    let r = app.exec(&other.access, json!({"argv": ["echo"]})).await;
    assert_eq!(r.status, 200, "the limit is per user");
}

#[tokio::test]
async fn runs_are_audited_without_argument_contents() {
    let (app, s) = app_and_user(&[]).await;
    app.exec(&s.access, json!({"argv": ["echo", "hunter2", "x"]}))
        .await;
    app.exec(&s.access, json!({"argv": ["bash", "hunter2"]}))
        .await;
    let user = bastion_core::UserId::parse(&s.user_id).unwrap();
    let page = app
        .stores
        .audit
        .list_for_user(&user, None, 10, bastion_core::Clock::now(&app.clock))
        .await
        .unwrap()
        .unwrap();
    let runs: Vec<(&str, &str)> = page
        .items
        .iter()
        .filter(|e| e.kind.as_str() == "exec_run")
        .map(|e| (e.outcome.as_str(), e.detail.as_deref().unwrap()))
        .collect();
    assert_eq!(runs.len(), 2);
    let (ok, detail) = runs.iter().find(|(o, _)| *o == "success").unwrap();
    assert_eq!(*ok, "success");
    assert!(
        detail.starts_with(
            "command=echo args=2 exit=0 signal=none timed_out=false output_limit=false duration_ms="
        ),
        "{detail}"
    );
    assert!(runs.contains(&("failure", "refused=command_not_allowed command=bash args=1")));
    assert!(runs.iter().all(|(_, d)| !d.contains("hunter2")));
}

#[tokio::test]
async fn health_reports_the_layers_in_force_on_this_host() {
    let (app, s) = app_and_user(&[]).await;
    let r = app.get("/exec/health", &s.access).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["layers"],
        json!({
            "landlock": true, "seccomp": true, "no_new_privs": true, "rlimits": true,
            "new_session": true, "clean_environment": true, "openat2": true,
            "parent_undumpable": true, "child_subreaper": true,
        })
    );
    assert_eq!(r.body["missing"], json!([]));
    assert_eq!(r.body["unavailable"], json!([]));
    assert_eq!(
        r.body["commands"],
        json!([
            "echo",
            "printf",
            "cat",
            "head",
            "tail",
            "wc",
            "sort",
            "uniq",
            "cut",
            "tr",
            "ls",
            "mkdir",
            "rm",
            "cp",
            "mv",
            "diff",
            "seq",
            "date",
            "base64",
            "sha256sum",
            "grep",
            "sed",
            "jq",
            "awk",
            "find",
            "xargs",
            "python3",
        ])
    );
    assert_eq!(
        r.body["required"],
        json!(["seccomp", "no_new_privs", "rlimits"])
    );
    let r = app.call(Method::GET, "/exec/health", None, None).await;
    r.assert_error(401, "unauthorized", "missing bearer token");
}

#[tokio::test]
async fn an_unquoted_bar_runs_a_pipeline_and_a_refused_stage_is_named() {
    let (app, s) = app_and_user(&[]).await;
    let r = app
        .exec(
            &s.access,
            json!({"command": "printf 'b\\na\\n' | sort | head -n 1"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut expected = result("a\n", "", 0);
    expected["stages"] = json!([
        {"command": "printf", "exit_code": 0, "signal": null},
        {"command": "sort", "exit_code": 0, "signal": null},
        {"command": "head", "exit_code": 0, "signal": null},
    ]);
    assert_eq!(without_duration(r.body), expected);
    let r = app
        .exec(
            &s.access,
            json!({"pipeline": [["echo", "x;y"], ["wc", "-c"]]}),
        )
        .await;
    assert_eq!(r.body["stdout"], "4\n", "{}", r.text);
    let r = app
        .exec(&s.access, json!({"command": "cat f | sh -c id"}))
        .await;
    r.assert_error(
        400,
        "command_not_allowed",
        "stage 2: command \"sh\" is not allowed",
    );
    let r = app
        .exec(&s.access, json!({"command": "cat f | cat /etc/passwd"}))
        .await;
    r.assert_error(
        400,
        "invalid_path",
        "stage 2: argument 1: path must be relative to the sandbox",
    );
    let r = app
        .exec(&s.access, json!({"command": "cat f ||  wc"}))
        .await;
    r.assert_error(400, "invalid_command", "stage 2 of the pipeline is empty");
}
