//! The exec function as a Lambda: files and a run through REST events (one with a base64
//! body), a command off the allowlist refused, per-IP limits on the gateway's source IP, a
//! run whose environment, read from `/proc` while it runs, holds no secret and no AWS
//! credential, and two instances sharing the table and the workspace bucket.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bastion_lambda_tests::deployment::{default_secrets, exec_secrets};
use bastion_lambda_tests::function::{ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN};
use bastion_lambda_tests::{Deployment, Function, RestEvent};
use serde_json::{Value, json};

use crate::{assert_rate_limited, put_file, signed_up, statuses_from};

fn run(access: &str, body: Value) -> RestEvent {
    RestEvent::post_json("/exec/run", &body).bearer(access)
}

async fn exec_user(d: &Deployment) -> (Function, String) {
    let auth = d.start("auth").await;
    let (_, access) = signed_up(&auth, "runner@example.com").await;
    (d.start("exec").await, access)
}

#[tokio::test]
async fn a_file_put_with_a_base64_body_is_sorted_by_a_run() {
    let d = Deployment::new().await;
    let (exec, access) = exec_user(&d).await;
    let put = exec
        .call(&put_file("data/in.txt", &access, b"b\na\n"))
        .await;
    assert_eq!(put.status, 201, "{}", put.text());

    let r = exec
        .call(&run(&access, json!({"argv": ["sort", "data/in.txt"]})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["stdout"], json!("a\nb\n"));
    assert_eq!(body["exit_code"], json!(0));
}

#[tokio::test]
async fn a_pipeline_runs_through_exec_run() {
    let d = Deployment::new().await;
    let (exec, access) = exec_user(&d).await;
    let r = exec
        .call(&run(
            &access,
            json!({"command": "printf 'b\\na\\n' | sort | head -n 1"}),
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["stdout"], json!("a\n"));
    assert_eq!(body["exit_code"], json!(0));
    assert_eq!(
        body["stages"][2],
        json!({"command": "head", "exit_code": 0, "signal": null})
    );
}

#[tokio::test]
async fn a_command_off_the_allowlist_is_refused_with_the_exact_envelope() {
    let d = Deployment::new().await;
    let (exec, access) = exec_user(&d).await;
    let r = exec.call(&run(&access, json!({"argv": ["env"]}))).await;
    r.assert_error(400, "command_not_allowed", "command \"env\" is not allowed");
}

#[tokio::test]
async fn exec_requests_are_limited_per_source_ip_whatever_x_forwarded_for_says() {
    let d = Deployment::new().await;
    let exec = d
        .start_with("exec", &d.env("exec").set("RATE_LIMIT_DEFAULT_IP", "3/60"))
        .await;
    // Without a token each run is refused, but only after the per-IP counter has counted it.
    let anonymous = RestEvent::post_json("/exec/run", &json!({"argv": ["echo", "hi"]}));
    assert_eq!(
        statuses_from(&exec, &anonymous, "203.0.113.80", 3).await,
        vec![401, 401, 401]
    );
    assert_rate_limited(
        &exec
            .call(&anonymous.clone().source_ip("203.0.113.80"))
            .await,
    );
    assert_eq!(
        statuses_from(&exec, &anonymous, "203.0.113.81", 1).await,
        vec![401],
        "another source IP has its own allowance"
    );
}

/// Every process below `ancestor`, from `/proc/*/stat` (field 4 is the parent).
fn descendants(ancestor: u32) -> Vec<u32> {
    let mut parent = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        if let Some(ppid) = after_name
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
        {
            parent.insert(pid, ppid);
        }
    }
    parent
        .keys()
        .copied()
        .filter(|&pid| {
            let mut at = pid;
            while let Some(&up) = parent.get(&at) {
                if up == ancestor {
                    return true;
                }
                if up <= 1 {
                    return false;
                }
                at = up;
            }
            false
        })
        .collect()
}

/// The first process named `name` below `ancestor`, waited for up to 15 s.
pub(crate) async fn running(ancestor: u32, name: &str) -> Option<u32> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        for pid in descendants(ancestor) {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == name {
                return Some(pid);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// The environment of process `pid`.
fn environment_of(pid: u32) -> Option<Vec<(String, String)>> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let kv = String::from_utf8_lossy(kv);
                let (k, v) = kv.split_once('=').unwrap_or((&kv, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect(),
    )
}

/// Enough commands for these tests, `sleep` among them, for runs that must still be running when looked at.
pub(crate) const WITH_SLEEP: &str = "echo,cat,cp,sort,ls,sleep";

#[tokio::test]
async fn a_run_sees_no_secret_and_no_aws_credential_in_its_environment() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let (_, access) = signed_up(&auth, "runner@example.com").await;
    let exec = d
        .start_with(
            "exec",
            &d.env("exec").set("EXEC_ALLOWED_COMMANDS", WITH_SLEEP),
        )
        .await;
    let reader = async {
        let pid = running(exec.pid, "sleep").await?;
        environment_of(pid)
    };
    let sleeping = run(&access, json!({"argv": ["sleep", "2"]}));
    let (environment, r) = tokio::join!(reader, exec.call(&sleeping));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["exit_code"], json!(0));

    let environment = environment.expect("the run's process was found under the function");
    let names: BTreeSet<&str> = environment.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["HOME", "LANG", "PATH", "TMPDIR"]),
        "{environment:?}"
    );
    let mut forbidden: Vec<String> = vec![
        ACCESS_KEY_ID.to_owned(),
        SECRET_ACCESS_KEY.to_owned(),
        SESSION_TOKEN.to_owned(),
    ];
    let main = default_secrets();
    let exec = exec_secrets(&main);
    for (_, v) in main
        .as_object()
        .unwrap()
        .iter()
        .chain(exec.as_object().unwrap())
    {
        forbidden.push(v.as_str().unwrap().to_owned());
    }
    for (name, value) in &environment {
        for secret in &forbidden {
            assert!(!value.contains(secret.as_str()), "{name} holds a secret");
        }
    }
}

/// A second exec instance of the deployment: its own process and `/tmp`, the same table and
/// bucket.
async fn second_instance(d: &Deployment) -> Function {
    let root = d.scratch.join("instance-b-sandbox");
    d.start_with(
        "exec",
        &d.env("exec")
            .set("SANDBOX_ROOT", &root.display().to_string())
            .set("EXEC_ALLOWED_COMMANDS", WITH_SLEEP),
    )
    .await
}

#[tokio::test]
async fn a_file_uploaded_through_one_instance_is_listed_read_and_run_through_another() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let (_, access) = signed_up(&auth, "two@example.com").await;
    let a = d
        .start_with(
            "exec",
            &d.env("exec").set("EXEC_ALLOWED_COMMANDS", WITH_SLEEP),
        )
        .await;
    let b = second_instance(&d).await;
    let put = a.call(&put_file("data/in.txt", &access, b"b\na\n")).await;
    assert_eq!(put.status, 201, "{}", put.text());

    let listed = b.call(&RestEvent::get("/exec/files").bearer(&access)).await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(
        listed.json()["files"],
        json!([{"path": "data/in.txt", "size": 4}])
    );
    let read = b
        .call(&RestEvent::get("/exec/files/data/in.txt").bearer(&access))
        .await;
    assert_eq!((read.status, read.text()), (200, "b\na\n".to_owned()));
    let sorted = b
        .call(&run(&access, json!({"argv": ["sort", "data/in.txt"]})))
        .await;
    assert_eq!(
        sorted.json()["stdout"],
        json!("a\nb\n"),
        "{}",
        sorted.text()
    );

    // A file a run writes through B is there for A's next run.
    let r = b
        .call(&run(
            &access,
            json!({"argv": ["cp", "data/in.txt", "data/out.txt"]}),
        ))
        .await;
    assert_eq!(r.json()["files_saved"], json!(true), "{}", r.text());
    let r = a
        .call(&run(&access, json!({"argv": ["cat", "data/out.txt"]})))
        .await;
    assert_eq!(r.json()["stdout"], json!("b\na\n"), "{}", r.text());
}

#[tokio::test]
async fn a_second_concurrent_run_through_another_instance_gets_409_and_a_later_one_succeeds() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let (_, access) = signed_up(&auth, "busy@example.com").await;
    let a = d
        .start_with(
            "exec",
            &d.env("exec").set("EXEC_ALLOWED_COMMANDS", WITH_SLEEP),
        )
        .await;
    let b = second_instance(&d).await;
    let long = run(&access, json!({"argv": ["sleep", "3"]}));
    let second = async {
        // Sent only once A's run is seen running, so A holds the lease by then.
        running(a.pid, "sleep").await.expect("A's run started");
        b.call(&run(&access, json!({"argv": ["echo", "hi"]}))).await
    };
    let (first, second) = tokio::join!(a.call(&long), second);
    second.assert_error(
        409,
        "run_in_progress",
        "another run of yours is in progress",
    );
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.json()["exit_code"], json!(0));

    let after = b.call(&run(&access, json!({"argv": ["echo", "hi"]}))).await;
    assert_eq!(after.status, 200, "{}", after.text());
    assert_eq!(after.json()["stdout"], json!("hi\n"));
}
