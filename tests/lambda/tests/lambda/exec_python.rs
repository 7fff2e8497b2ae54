//! python3 through the exec function as a Lambda: a `POST /exec/run` of `python3 -c` using the
//! standard library, a script trying a socket, a host file and a shell getting the exact
//! refusals, and the function still serving after a script exhausts its memory.
//!
//! The launcher refuses to run where the kernel has no Landlock (nothing else would keep
//! `open("/etc/passwd")` in), so each test reads the layers from `/exec/health` and, without
//! Landlock, checks that refusal instead.

use bastion_lambda_tests::{Deployment, Function, RestEvent};
use serde_json::{Value, json};

use crate::signed_up;

/// What the launcher prints, with exit 126, when no Landlock ruleset is in force.
const REFUSED: &str = "python3: refusing to run: files outside the run directory are readable \
                       here (no Landlock sandbox is in force)\n";

/// The exec function (default allowlist, python3 on it), a user's access token, and whether
/// the function's runs are under Landlock.
async fn python_exec(d: &Deployment) -> (Function, String, bool) {
    let auth = d.start("auth").await;
    let (_, access) = signed_up(&auth, "python@example.com").await;
    let exec = d.start("exec").await;
    let health = exec
        .call(&RestEvent::get("/exec/health").bearer(&access))
        .await;
    assert_eq!(health.status, 200, "{}", health.text());
    let health = health.json();
    assert!(
        health["commands"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("python3"))),
        "python3 is on the default allowlist: {health}"
    );
    let landlock = !health["landlock_abi"].is_null();
    (exec, access, landlock)
}

/// `python3 -c code` through `POST /exec/run`: the response body.
async fn python(exec: &Function, access: &str, code: &str) -> Value {
    let r = exec
        .call(
            &RestEvent::post_json("/exec/run", &json!({"argv": ["python3", "-c", code]}))
                .bearer(access),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// The run printed `stdout` and exited `code` under Landlock; without it, the launcher refused.
fn expect(body: &Value, landlock: bool, stdout: &str, code: i32) {
    let got = (&body["stdout"], &body["stderr"], &body["exit_code"]);
    if landlock {
        assert_eq!(
            (got.0, got.2),
            (&json!(stdout), &json!(code)),
            "stderr: {}",
            got.1
        );
    } else {
        assert_eq!(got, (&json!(""), &json!(REFUSED), &json!(126)));
    }
}

const STDLIB: &str = r#"
import json, re, hashlib
doc = json.loads('{"items": ["a1", "b22", "c333"], "n": 3}')
digits = [int(m) for m in re.findall(r"\d+", " ".join(doc["items"]))]
print(json.dumps({"digits": digits, "sum": sum(digits)}, sort_keys=True))
print(hashlib.sha256(b"bastion").hexdigest())
print(hashlib.md5(b"").hexdigest(), re.sub(r"(\w)(\w*)", r"\2\1", "hello world"))
"#;

#[tokio::test]
async fn python3_c_runs_json_re_and_hashlib_through_exec_run() {
    let d = Deployment::new().await;
    let (exec, access, landlock) = python_exec(&d).await;
    let body = python(&exec, &access, STDLIB).await;
    expect(
        &body,
        landlock,
        "{\"digits\": [1, 22, 333], \"sum\": 356}\n\
         a1c509df21cec49af6685ab8e3dbad60dfcb037cc0ab3b0b52c612f2ae6ecca4\n\
         d41d8cd98f00b204e9800998ecf8427e elloh orldw\n",
        0,
    );
}

const ESCAPES: &str = r#"
import os
try:
    import socket
    print("socket imported")
except ImportError as e:
    print(type(e).__name__, e)
try:
    open("/etc/passwd").read()
    print("read /etc/passwd")
except OSError as e:
    print(type(e).__name__, e.errno)
print("system", os.system("echo escaped"))
try:
    os.fork()
    print("forked")
except OSError as e:
    print("fork", type(e).__name__, e.errno)
"#;

#[tokio::test]
async fn a_script_trying_a_socket_a_host_file_and_a_shell_is_refused_each() {
    let d = Deployment::new().await;
    let (exec, access, landlock) = python_exec(&d).await;
    let body = python(&exec, &access, ESCAPES).await;
    // No socket module is built in; Landlock denies the read (EACCES); the shell never starts
    // (os.system's 127 << 8) and fork is off the launcher's seccomp allow-list (ENOSYS).
    expect(
        &body,
        landlock,
        "ModuleNotFoundError No module named '_socket'\n\
         PermissionError 13\n\
         system 32512\n\
         fork OSError 38\n",
        0,
    );
}

#[tokio::test]
async fn the_function_keeps_serving_after_a_script_exhausts_its_memory() {
    let d = Deployment::new().await;
    let (exec, access, landlock) = python_exec(&d).await;
    let bomb = python(
        &exec,
        &access,
        "x = []\nwhile True:\n    x.append(bytearray(1 << 24))",
    )
    .await;
    if landlock {
        // The allocator fails under the run's 512 MiB address-space limit and the process ends
        // (abort's SIGABRT to itself is off the allow-list, so it faults instead); the size
        // that failed varies from run to run.
        let stderr = bomb["stderr"].as_str().unwrap_or_default();
        assert_eq!(
            (&bomb["exit_code"], &bomb["signal"], &bomb["timed_out"]),
            (&Value::Null, &json!(11), &json!(false)),
            "{stderr}"
        );
        assert!(
            stderr.starts_with("memory allocation of ") && stderr.contains(" bytes failed\n"),
            "{stderr:?}"
        );
    } else {
        expect(&bomb, false, "", 0);
    }
    let next = python(&exec, &access, "print(sum(range(10)))").await;
    expect(&next, landlock, "45\n", 0);
    let sorted = exec
        .call(
            &RestEvent::post_json("/exec/run", &json!({"argv": ["sort"], "stdin": "b\na\n"}))
                .bearer(&access),
        )
        .await;
    assert_eq!(
        sorted.json()["stdout"],
        json!("a\nb\n"),
        "{}",
        sorted.text()
    );
}
