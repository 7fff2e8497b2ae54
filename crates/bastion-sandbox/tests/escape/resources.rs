//! Resource limits: memory and file size rlimits, and the sandbox quota's measuring of what a
//! child builds inside it.

use bastion_sandbox::{FsError, SandboxPath};

use crate::harness::{contained, run, sandbox, text};

#[test]
fn memory_and_file_size_limits_hold() {
    let sb = sandbox("limits");
    contained(
        &sb,
        &["head", "-c", "20000000", "/dev/zero"],
        "head: cannot open '/dev/zero' for reading: Permission denied\n",
    );
    let out = run(
        &sb,
        &[
            "sh",
            "-c",
            "head -c 20000000 /dev/null; seq 1 3000000 > big; echo $?",
        ],
    );
    // SIGXFSZ (25) kills the writer at 10 MiB.
    assert_eq!(
        std::fs::metadata(sb.path().join("big")).unwrap().len(),
        10 * 1024 * 1024
    );
    assert_eq!(text(&out.stdout), "153\n");
}

#[test]
fn a_file_nested_deep_still_counts_toward_the_quota() {
    let sb = sandbox("deep");
    let deep = format!("{}f", "d/".repeat(300));
    sb.write(&SandboxPath::parse(&deep).unwrap(), &[7; 1000])
        .unwrap();
    let usage = sb.usage().unwrap();
    assert_eq!((usage.entries, usage.bytes), (301, 1000));
    // Moving the chain under itself from inside pushes it past PATH_MAX: measuring then
    // refuses rather than skipping what it cannot reach.
    let mut out = run(&sb, &["mkdir", "-p", &"e/".repeat(500)]);
    for _ in 0..10 {
        out = run(&sb, &["mv", "d", &"e/".repeat(500)]);
        if out.exit_code != Some(0) {
            break;
        }
        out = run(&sb, &["mv", "e", "d"]);
        if out.exit_code != Some(0) {
            break;
        }
        out = run(&sb, &["mkdir", "-p", &"e/".repeat(500)]);
    }
    assert!(matches!(sb.usage(), Err(FsError::TooLarge)), "{out:?}");
}
