//! The seccomp allow-list: sockets are refused, while every allowed command still does its
//! ordinary job under it.

use bastion_sandbox::SandboxPath;

use crate::harness::{policy, run, run_with, sandbox, text};

#[test]
fn network_sockets_are_refused() {
    let sb = sandbox("net");
    let out = run(&sb, &["bash", "-c", "echo hi > /dev/tcp/127.0.0.1/9"]);
    assert_eq!(out.exit_code, Some(1));
    assert!(
        text(&out.stderr).contains("socket: Function not implemented"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn every_allowed_command_does_its_ordinary_job_under_the_syscall_allow_list() {
    let sb = sandbox("allow-list");
    let p = |s: &str| SandboxPath::parse(s).unwrap();
    sb.write(&p("f1"), b"b\na\nc\na\n").unwrap();
    sb.write(&p("f2"), b"a\nx\n").unwrap();
    sb.write(&p("d/e/g"), b"z\n").unwrap();
    // Enough lines for sort to start a worker thread (clone3, refused, then clone).
    let big: Vec<u8> = (0..300_000u32)
        .flat_map(|i| format!("{}\n", i.wrapping_mul(2_654_435_761)).into_bytes())
        .collect();
    sb.write(&p("big"), &big).unwrap();
    let cases: &[&[&str]] = &[
        &["echo", "hi"],
        &["printf", "%s\\n", "a"],
        &["seq", "3"],
        &["cat", "-n", "f1", "f2"],
        &["head", "-n", "2", "f1"],
        &["tail", "-c", "3", "f1"],
        &["wc", "-l", "f1", "f2"],
        &["sort", "-u", "-o", "sorted", "f1", "f2"],
        &["sort", "-n", "-o", "big-sorted", "big"],
        &["sort", "-c", "sorted"],
        &["uniq", "-c", "sorted"],
        &["cut", "-c1", "f1"],
        &["tr", "a-z", "A-Z"],
        &["cat", "f1", "f2"],
        &["ls", "-laR", "--color=always"],
        &["mkdir", "-p", "x/y/z"],
        &["cp", "-a", "d", "d2"],
        &["cp", "-p", "f1", "f3"],
        &["mv", "f3", "f4"],
        &["rm", "-rf", "d2", "x", "f4"],
        &["diff", "-u", "f1", "f1"],
        &["diff", "d/e/g", "d/e/g"],
        &["date", "-u", "-d", "2020-01-01", "+%s"],
        &["base64", "f1"],
        &["sha256sum", "f1", "f2"],
        &["find", ".", "-name", "f*", "-type", "f", "-size", "-1k"],
        &["find", "d", "-mindepth", "1", "-newer", "f1", "-print0"],
        // xargs forks and execs the toolset's echo for the item on stdin.
        &["xargs", "-n", "1", "echo"],
    ];
    for argv in cases {
        let owned: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
        assert!(policy().check(&owned).is_ok(), "{argv:?}");
        let out = run_with(&sb, argv, 10_000, 1 << 20, b"z\n");
        assert_eq!(
            (out.exit_code, text(&out.stderr)),
            (Some(0), ""),
            "{argv:?}"
        );
    }
    let out = run(&sb, &["date", "-u", "-d", "2020-01-01", "+%s"]);
    assert_eq!(text(&out.stdout), "1577836800\n");
}
