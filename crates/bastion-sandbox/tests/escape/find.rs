//! find and xargs as ways out: walking the host from `/` or through a link that leads out of
//! the run directory, and running through xargs a program the policy does not allow or items
//! that are no sandbox paths.

use crate::harness::{assert_policy_refuses, contained, run, run_with, sandbox, text};

#[test]
fn find_cannot_walk_the_host() {
    let sb = sandbox("find-root");
    contained(
        &sb,
        &["find", "/"],
        "Error: /: Permission denied (os error 13)\n",
    );
    contained(
        &sb,
        &["find", "../..", "-maxdepth", "1"],
        "Error: ../..: Permission denied (os error 13)\n",
    );
    // Landlock does not govern stat: the policy alone keeps -newer's file in the run directory.
    assert_policy_refuses(&["find", ".", "-newer", "/etc/passwd"]);
}

#[test]
fn find_does_not_follow_a_link_out_of_the_run_directory() {
    let sb = sandbox("find-link");
    std::os::unix::fs::symlink("/etc", sb.path().join("etc")).unwrap();
    // Without -L (the only way the policy lets find walk) the link is listed, never entered:
    // not as a start path, not inside the tree, on any kernel.
    let out = run(&sb, &["find", "."]);
    assert_eq!((text(&out.stdout), out.exit_code), (".\n./etc\n", Some(0)));
    let out = run(&sb, &["find", "etc", "-name", "passwd"]);
    assert_eq!((text(&out.stdout), out.exit_code), ("", Some(0)));
    let out = run(&sb, &["find", "etc", "-type", "l"]);
    assert_eq!((text(&out.stdout), out.exit_code), ("etc\n", Some(0)));
    // Link-following is refused, and under Landlock running it anyway stops at the link.
    contained(
        &sb,
        &["find", "-L", "."],
        "Error: Permission denied (os error 13)\n",
    );
    contained(
        &sb,
        &["find", "-H", "etc"],
        "Error: etc: Permission denied (os error 13)\n",
    );
    contained(
        &sb,
        &["find", ".", "-follow", "-name", "passwd"],
        "Error: Permission denied (os error 13)\n",
    );
}

#[test]
fn xargs_runs_only_allowed_toolset_programs() {
    let sb = sandbox("xargs-sub");
    for argv in [
        &["xargs", "sh", "-c", "id"][..],
        &["xargs", "/bin/sh"],
        &["xargs", "xargs", "cat"],
        &["xargs", "sed", "-n"],
        &["xargs", "find", "."],
        &["xargs", "date"],
        &["xargs", "cat", "/etc/passwd"],
        &["xargs", "sort", "--compress-program=sh"],
    ] {
        assert_policy_refuses(argv);
    }
    // Past the policy, our xargs itself runs nothing outside the toolset directory.
    let out = run_with(&sb, &["xargs", "sh", "-c", "id"], 10_000, 1 << 20, b"x");
    assert_eq!(
        (text(&out.stdout), text(&out.stderr), out.exit_code),
        (
            "",
            "xargs: sh: No such file or directory (os error 2)\n",
            Some(127)
        )
    );
    let out = run_with(
        &sb,
        &["xargs", "/bin/sh", "-c", "id"],
        10_000,
        1 << 20,
        b"x",
    );
    assert_eq!(
        (text(&out.stdout), text(&out.stderr), out.exit_code),
        ("", "xargs: /bin/sh: not a toolset command\n", Some(127))
    );
}

#[test]
fn xargs_items_cannot_name_host_files() {
    let sb = sandbox("xargs-items");
    std::fs::write(sb.path().join("a"), b"inside\n").unwrap();
    for (stdin, stderr) in [
        (
            &b"a /etc/passwd"[..],
            "xargs: item \"/etc/passwd\" refused: path must be relative to the sandbox\n",
        ),
        (
            b"a ../../../../etc/passwd",
            "xargs: item \"../../../../etc/passwd\" refused: path must not contain '..'\n",
        ),
        (
            b"--files0-from=/etc/passwd",
            "xargs: item \"--files0-from=/etc/passwd\" refused: item must not start with '-'\n",
        ),
    ] {
        let out = run_with(&sb, &["xargs", "wc", "-l"], 10_000, 1 << 20, stdin);
        assert_eq!(
            (text(&out.stdout), text(&out.stderr), out.exit_code),
            ("", stderr, Some(1))
        );
    }
}
