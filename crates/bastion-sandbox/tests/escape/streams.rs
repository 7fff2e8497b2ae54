//! The child's standard streams: output comes back byte for byte and is capped at the hard cap,
//! standard input is delivered and closed.

use crate::harness::{run, run_with, sandbox, text};

#[test]
fn echo_runs_in_the_sandbox_with_exit_code_zero() {
    let sb = sandbox("echo");
    let out = run(&sb, &["echo", "hi"]);
    assert_eq!(
        (text(&out.stdout), out.exit_code, out.signal),
        ("hi\n", Some(0), None)
    );
    assert!(!out.timed_out && !out.stdout_truncated);
}

#[test]
fn an_output_flood_is_capped_and_killed_at_the_hard_cap() {
    let sb = sandbox("flood");
    let out = run_with(&sb, &["yes"], 10_000, 1 << 20, b"");
    assert!(out.output_limit_exceeded && out.stdout_truncated);
    assert_eq!(out.stdout.len(), 64 * 1024);
    assert_eq!(out.signal, Some(9));
    assert!(!out.timed_out);
}

#[test]
fn stdin_is_delivered_and_closed() {
    let sb = sandbox("stdin");
    let input = vec![b'x'; 200_000];
    let out = run_with(&sb, &["wc", "-c"], 10_000, 1 << 20, &input);
    assert_eq!(text(&out.stdout), "200000\n");
}

#[test]
fn a_stdin_reader_run_without_stdin_sees_eof_at_once() {
    let sb = sandbox("no-stdin");
    for argv in [&["sort"][..], &["cat"], &["wc", "-c"]] {
        let out = run_with(&sb, argv, 10_000, 1 << 20, b"");
        assert!(!out.timed_out, "{argv:?} waited for its deadline");
        assert_eq!((out.exit_code, out.signal), (Some(0), None), "{argv:?}");
    }
    let out = run_with(&sb, &["wc", "-c"], 10_000, 1 << 20, b"");
    assert_eq!(text(&out.stdout), "0\n");
}

#[test]
fn non_utf8_output_comes_back_byte_for_byte() {
    let sb = sandbox("bytes");
    let out = run(&sb, &["printf", "\\377\\376a"]);
    assert_eq!(out.stdout, [0xff, 0xfe, b'a']);
}
