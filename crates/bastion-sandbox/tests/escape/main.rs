//! Escape attempts against the isolation layers themselves. Most cases run programs the
//! command policy would never allow (sh, ln, env, yes, sleep) straight through the runner, to
//! show the kernel layers contain even what the policy is not there to stop.
//!
//! The suite runs twice: as is, and again (`the_whole_suite_passes_again_on_a_kernel_without_landlock`)
//! in a child process whose Landlock system calls answer `ENOSYS`, as on a kernel built without
//! Landlock (Lambda's may be one). There the runner takes its real "no Landlock" path, and what
//! Landlock alone contained must be refused by the command policy instead.
//!
//! The cases are grouped by theme, one module each; `harness` holds what they share. The two
//! tests about the suite itself stay here, at the top level: the re-run recognises a passing
//! suite by the name of the first one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod environment;
mod filesystem;
mod find;
mod harness;
mod pipelines;
mod processes;
mod python;
mod resources;
mod streams;
mod syscalls;
mod text;

use harness::{WITHOUT_LANDLOCK_VAR, layers_on, without_landlock};

#[test]
fn this_host_offers_every_layer_the_suite_relies_on() {
    let l = layers_on();
    assert_eq!(l.landlock_abi.is_none(), without_landlock(), "{l:?}");
    assert!(
        l.seccomp
            && l.no_new_privs
            && l.rlimits
            && l.openat2
            && l.parent_undumpable
            && l.child_subreaper,
        "{l:?}"
    );
    assert_eq!(l.missing_required(), Vec::<&str>::new());
}

#[test]
fn the_whole_suite_passes_again_on_a_kernel_without_landlock() {
    if without_landlock() {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .env(WITHOUT_LANDLOCK_VAR, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "without Landlock:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("test this_host_offers_every_layer_the_suite_relies_on ... ok"),
        "{stdout}"
    );
}
