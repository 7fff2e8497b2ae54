//! What a child can learn about its parent: the environment it is given, a secret in the
//! server's environment, and the `/proc` files that would expose one.

use crate::harness::{contained, run, sandbox, text};

#[test]
fn the_child_environment_is_exactly_the_four_clean_variables() {
    let sb = sandbox("env");
    let out = run(&sb, &["env"]);
    let home = sb.path().display().to_string();
    assert_eq!(
        text(&out.stdout),
        format!("HOME={home}\nLANG=C.UTF-8\nPATH=/usr/bin:/bin\nTMPDIR={home}\n")
    );
}

const SECRET_VAR: &str = "BASTION_ESCAPE_TEST_SECRET";
const SECRET: &str = "s3cr3t-parent-value-7d1f";

/// Re-runs this test binary with a secret in its environment; the inner run looks for it in
/// everything a child can read.
#[test]
fn a_secret_in_the_parent_environment_reaches_no_child() {
    if std::env::var(SECRET_VAR).is_err() {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "environment::a_secret_in_the_parent_environment_reaches_no_child",
                "--exact",
                "--test-threads=1",
            ])
            .env(SECRET_VAR, SECRET)
            .status()
            .unwrap();
        assert!(status.success());
        return;
    }
    let sb = sandbox("secret");
    let parent = std::process::id().to_string();
    for argv in [
        vec!["env"],
        vec!["cat", "/proc/self/environ"],
        vec!["cat", "/proc/1/environ"],
        vec![
            "sh",
            "-c",
            "cat /proc/$PPID/environ; tr '\\0' '\\n' < /proc/self/environ",
        ],
        vec!["cat", &format!("/proc/{parent}/environ")],
        vec!["grep", "-r", SECRET, "/proc/self/"],
    ] {
        let out = run(&sb, &argv);
        for stream in [&out.stdout, &out.stderr] {
            assert!(
                !String::from_utf8_lossy(stream).contains(SECRET),
                "{argv:?} leaked it"
            );
        }
    }
}

#[test]
fn proc_environ_of_the_child_and_the_parent_is_unreadable() {
    let sb = sandbox("proc");
    let parent = format!("/proc/{}/environ", std::process::id());
    for path in ["/proc/self/environ", parent.as_str(), "/proc/1/environ"] {
        contained(
            &sb,
            &["cat", path],
            &format!("cat: {path}: Permission denied\n"),
        );
    }
    // Without Landlock too: the parent is non-dumpable and the child holds no capability.
    let out = run(&sb, &["cat", &parent]);
    assert_eq!(
        (text(&out.stderr), out.exit_code),
        (
            format!("cat: {parent}: Permission denied\n").as_str(),
            Some(1)
        )
    );
    assert!(out.stdout.is_empty());
}
