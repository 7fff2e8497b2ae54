//! Process containment: the deadline kills the whole group, nothing detaches or leaves the group,
//! a run dies with its server, and a child cannot signal the server or change its limits.

use std::path::PathBuf;
use std::time::Duration;

use bastion_sandbox::remove_tree;

use crate::harness::{run, run_with, sandbox, text, which};

#[test]
fn a_sleeping_child_is_killed_at_the_deadline_with_its_group() {
    let sb = sandbox("sleep");
    let out = run_with(&sb, &["sleep", "30"], 300, 1 << 20, b"");
    assert!(out.timed_out);
    assert_eq!((out.exit_code, out.signal), (None, Some(9)));
}

#[test]
fn a_child_that_forks_and_detaches_does_not_outlive_the_run() {
    let sb = sandbox("detach");
    let out = run(
        &sb,
        &[
            "sh",
            "-c",
            "sleep 30 & sleep 31 </dev/null >/dev/null 2>&1 & echo started",
        ],
    );
    assert_eq!(text(&out.stdout), "started\n");
    assert!(!out.timed_out, "the run ends when the command does");
}

#[test]
fn a_child_cannot_leave_its_process_group() {
    let sb = sandbox("setsid");
    let out = run(&sb, &["sh", "-c", "setsid sleep 30; echo rc=$?"]);
    assert_eq!(text(&out.stdout), "rc=1\n");
    assert_eq!(
        text(&out.stderr),
        "setsid: setsid failed: Function not implemented\n"
    );
}

const ORPHAN_VAR: &str = "BASTION_ESCAPE_TEST_ORPHAN";

/// Re-runs this test binary as a stand-in server whose run execs a long `sleep`, then SIGKILLs
/// that server mid-run: the sleep must die with it instead of being adopted and living on.
#[test]
fn a_run_dies_with_the_server_killed_in_the_middle_of_it() {
    const NAME: &str = "orphan";
    if std::env::var(ORPHAN_VAR).is_ok() {
        let sb = sandbox(NAME);
        println!("sandbox={}", sb.path().display());
        run_with(
            &sb,
            &["sh", "-c", "echo $$ > pid; exec sleep 30"],
            30_000,
            1 << 20,
            b"",
        );
        return;
    }
    let mut server = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "processes::a_run_dies_with_the_server_killed_in_the_middle_of_it",
            "--exact",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(ORPHAN_VAR, "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(server.stdout.take().unwrap());
    let sandbox = std::io::BufRead::lines(out)
        .map(Result::unwrap)
        // libtest prints the test's name on the same line first.
        .find_map(|l| l.split_once("sandbox=").map(|(_, p)| PathBuf::from(p)))
        .expect("the server names its sandbox");
    let pid = within_ten_seconds(|| {
        std::fs::read_to_string(sandbox.join("pid"))
            .ok()
            .filter(|s| s.ends_with('\n'))
            .and_then(|s| s.trim().parse::<u32>().ok())
    })
    .expect("the sleep reports its pid");
    assert!(alive(pid), "the sleep runs while its server lives");
    server.kill().unwrap();
    server.wait().unwrap();
    let died = within_ten_seconds(|| (!alive(pid)).then_some(())).is_some();
    if !died {
        let _ = std::process::Command::new(which("kill"))
            .args(["-9", &pid.to_string()])
            .status();
    }
    if let Some(root) = sandbox.parent() {
        let _ = remove_tree(root, NAME);
        let _ = std::fs::remove_dir(root);
    }
    assert!(died, "sleep {pid} outlived the server that started it");
}

/// Polls `f` until it yields, for at most ten seconds (a bound on waiting, not a timing check).
fn within_ten_seconds<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` is a running process (a zombie waiting for its reaper counts as dead).
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rsplit_once(") ").map(|(_, rest)| &rest[..1]);
    !matches!(state, Some("Z" | "X") | None)
}

#[test]
fn a_child_cannot_signal_the_server_or_change_its_limits() {
    let sb = sandbox("signal");
    let out = run(
        &sb,
        &[
            "sh",
            "-c",
            "kill -STOP $PPID; echo rc=$?; prlimit --pid $PPID --nofile=1:1",
        ],
    );
    assert_eq!(text(&out.stdout), "rc=1\n");
    assert!(
        text(&out.stderr).contains("Function not implemented"),
        "{}",
        text(&out.stderr)
    );
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    assert!(
        !limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.contains(" 1 ")),
        "{limits}"
    );
}
