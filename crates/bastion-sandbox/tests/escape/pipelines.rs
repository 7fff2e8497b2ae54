//! Pipelines without a shell (`a | b | c`): the stages' streams are wired as a shell wires them,
//! and the deadline, the output hard cap and the reaping hold for the pipeline as a whole.

use crate::harness::{run_pipeline_with, sandbox, text};

fn statuses(out: &bastion_sandbox::RunOutput) -> Vec<(Option<i32>, Option<i32>)> {
    out.stages.iter().map(|s| (s.exit_code, s.signal)).collect()
}

#[test]
fn each_stage_reads_the_previous_ones_output() {
    let sb = sandbox("pipe-sort-head");
    let out = run_pipeline_with(
        &sb,
        &[&["printf", "b\\na\\n"], &["sort"], &["head", "-n", "1"]],
        10_000,
        1 << 20,
        b"",
    );
    assert_eq!(text(&out.stdout), "a\n");
    assert_eq!(text(&out.stderr), "");
    assert_eq!((out.exit_code, out.signal), (Some(0), None));
    assert_eq!(statuses(&out), [(Some(0), None); 3]);
    assert!(!out.timed_out && !out.output_limit_exceeded);
}

#[test]
fn stdin_goes_to_the_first_stage() {
    let sb = sandbox("pipe-stdin");
    let out = run_pipeline_with(
        &sb,
        &[&["sort", "-r"], &["wc", "-l"]],
        10_000,
        1 << 20,
        b"x\ny\nz\n",
    );
    assert_eq!(text(&out.stdout), "3\n");
}

#[test]
fn every_stage_writes_into_the_one_stderr() {
    let sb = sandbox("pipe-stderr");
    let out = run_pipeline_with(
        &sb,
        &[
            &["sh", "-c", "echo one >&2; echo data"],
            &["sh", "-c", "cat; echo two >&2"],
        ],
        10_000,
        1 << 20,
        b"",
    );
    assert_eq!(text(&out.stdout), "data\n");
    assert_eq!(text(&out.stderr), "one\ntwo\n");
}

#[test]
fn the_exit_status_is_the_last_stages() {
    let sb = sandbox("pipe-exit");
    let out = run_pipeline_with(
        &sb,
        &[&["cat", "missing"], &["wc", "-c"]],
        10_000,
        1 << 20,
        b"",
    );
    assert_eq!(text(&out.stdout), "0\n");
    assert_eq!(statuses(&out), [(Some(1), None), (Some(0), None)]);
    assert_eq!((out.exit_code, out.signal), (Some(0), None));
    let out = run_pipeline_with(
        &sb,
        // The last stage reads its input before exiting: one that exits first can kill echo
        // with SIGPIPE mid-write (13), which is a race, not what this test is about.
        &[&["echo", "a"], &["sh", "-c", "read line; exit 3"]],
        10_000,
        1 << 20,
        b"",
    );
    assert_eq!(statuses(&out), [(Some(0), None), (Some(3), None)]);
    assert_eq!((out.exit_code, out.signal), (Some(3), None));
}

#[test]
fn an_early_stage_dies_of_sigpipe_when_the_reader_is_gone() {
    let sb = sandbox("pipe-sigpipe");
    let out = run_pipeline_with(&sb, &[&["yes"], &["head", "-n", "2"]], 10_000, 1 << 20, b"");
    assert_eq!(text(&out.stdout), "y\ny\n");
    assert_eq!(statuses(&out), [(None, Some(13)), (Some(0), None)]);
    assert!(!out.timed_out && !out.output_limit_exceeded);
}

#[test]
fn a_pipeline_past_its_deadline_is_killed_whole() {
    let sb = sandbox("pipe-sleep");
    let out = run_pipeline_with(
        &sb,
        &[
            &["sleep", "30"],
            &["sh", "-c", "sleep 31 & sleep 32"],
            &["sleep", "33"],
        ],
        300,
        1 << 20,
        b"",
    );
    assert!(out.timed_out);
    assert_eq!(statuses(&out), [(None, Some(9)); 3]);
    assert_eq!((out.exit_code, out.signal), (None, Some(9)));
}

#[test]
fn a_flooding_middle_stage_is_killed_at_the_hard_cap_with_the_rest() {
    let sb = sandbox("pipe-flood");
    let out = run_pipeline_with(
        &sb,
        &[&["sleep", "30"], &["yes"], &["cat"]],
        10_000,
        1 << 20,
        b"",
    );
    assert!(out.output_limit_exceeded && out.stdout_truncated);
    assert_eq!(out.stdout.len(), 64 * 1024);
    assert!(!out.timed_out);
    assert_eq!(statuses(&out), [(None, Some(9)); 3]);
}

#[test]
fn a_middle_stage_flooding_stderr_is_killed_at_the_hard_cap() {
    let sb = sandbox("pipe-flood-stderr");
    let out = run_pipeline_with(
        &sb,
        &[&["sleep", "30"], &["sh", "-c", "yes >&2"], &["cat"]],
        10_000,
        1 << 20,
        b"",
    );
    assert!(out.output_limit_exceeded && out.stderr_truncated);
    assert_eq!(out.stderr.len(), 64 * 1024);
    assert_eq!(text(&out.stdout), "");
    assert!(!out.timed_out);
    assert_eq!(statuses(&out), [(None, Some(9)); 3]);
}
