//! grep and sed against the sandbox: both run under every layer, `grep -r` never follows a link
//! planted from outside, and sed's file-writing and program-running forms are refused by the
//! policy (and, where the kernel has Landlock, denied when run anyway).

use bastion_sandbox::SandboxPath;

use crate::harness::{assert_policy_refuses, landlock, run, run_with, sandbox, text};

#[test]
fn grep_and_sed_work_under_every_layer() {
    let sb = sandbox("text-work");
    let p = |s: &str| SandboxPath::parse(s).unwrap();
    sb.write(&p("a.txt"), b"one\ntwo foo\n").unwrap();
    sb.write(&p("d/b.txt"), b"foo again\n").unwrap();
    let out = run(&sb, &["grep", "-rn", "foo", "d", "a.txt"]);
    assert_eq!(text(&out.stdout), "d/b.txt:1:foo again\na.txt:2:two foo\n");
    assert_eq!(out.exit_code, Some(0));
    let out = run_with(
        &sb,
        &["grep", "-c", "x", "-"],
        10_000,
        1 << 20,
        b"x\ny\nx\n",
    );
    assert_eq!((text(&out.stdout), out.exit_code), ("2\n", Some(0)));
    let out = run(&sb, &["sed", "-n", "s/o/0/gp", "a.txt"]);
    assert_eq!(
        (text(&out.stdout), out.exit_code),
        ("0ne\ntw0 f00\n", Some(0))
    );
    let out = run(&sb, &["sed", "-i", "1d", "a.txt"]);
    assert_eq!(out.exit_code, Some(0), "{}", text(&out.stderr));
    assert_eq!(sb.read(&p("a.txt"), 1 << 20).unwrap(), b"two foo\n");
}

#[test]
fn grep_r_never_follows_a_link_planted_from_outside() {
    let sb = sandbox("text-links");
    let outside = std::env::temp_dir().join(format!("bastion-text-outside-{}", std::process::id()));
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"token=outside\n").unwrap();
    std::os::unix::fs::symlink(&outside, sb.path().join("dir-link")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), sb.path().join("file-link")).unwrap();
    sb.write(
        &SandboxPath::parse("inside.txt").unwrap(),
        b"token=inside\n",
    )
    .unwrap();
    let out = run(&sb, &["grep", "-r", "token"]);
    assert_eq!(text(&out.stdout), "inside.txt:token=inside\n");
    assert_eq!(out.exit_code, Some(0));
    // Named on the command line, a link to a directory is refused rather than followed (GNU
    // -r would follow it).
    let out = run(&sb, &["grep", "-r", "token", "dir-link", "inside.txt"]);
    assert_eq!(text(&out.stdout), "inside.txt:token=inside\n");
    assert_eq!(
        text(&out.stderr),
        "grep: dir-link: symbolic link to a directory not followed\n"
    );
    assert_eq!(out.exit_code, Some(2));
    let _ = std::fs::remove_dir_all(&outside);
}

#[test]
fn sed_cannot_write_read_or_run_through_its_script() {
    let sb = sandbox("text-sed");
    sb.write(&SandboxPath::parse("a.txt").unwrap(), b"x\n")
        .unwrap();
    let target = std::env::temp_dir().join(format!("bastion-sed-w-{}", std::process::id()));
    let w = format!("w {}", target.display());
    let sw = format!("s/x/y/w {}", target.display());
    for argv in [
        &["sed", w.as_str(), "a.txt"][..],
        &["sed", sw.as_str(), "a.txt"],
        &["sed", "1r /etc/passwd", "a.txt"],
        &["sed", "1e id", "a.txt"],
        &["sed", "s/x/id/e", "a.txt"],
        &["sed", "-i", "s/x/y/", "../text-work/a.txt"],
        &["sed", "-i.bak", "s/x/y/", "a.txt"],
        &["sed", "-f", "a.txt", "a.txt"],
    ] {
        assert_policy_refuses(argv);
    }
    if landlock() {
        // Run anyway, the writing form finds the file system closed.
        let out = run(&sb, &["sed", w.as_str(), "a.txt"]);
        assert_ne!(out.exit_code, Some(0), "{}", text(&out.stderr));
        assert!(!target.exists());
    }
}
