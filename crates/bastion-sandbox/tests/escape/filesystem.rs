//! Reaching outside the sandbox through the file system: other paths, another user's sandbox,
//! the diff option exploits, symlinks, FIFOs and names that are not UTF-8.

use std::path::Path;
use std::time::Duration;

use bastion_sandbox::{FsError, RunSpec, SandboxPath};

use crate::harness::{
    assert_policy_refuses, contained, landlock, policy, run, run_with, sandbox, text, which, world,
};

#[test]
fn files_outside_the_sandbox_cannot_be_read_or_written() {
    let sb = sandbox("outside");
    contained(
        &sb,
        &["cat", "/etc/passwd"],
        "cat: /etc/passwd: Permission denied\n",
    );
    contained(
        &sb,
        &["cat", "../../../../etc/hostname"],
        "cat: ../../../../etc/hostname: Permission denied\n",
    );
    contained(
        &sb,
        &["mkdir", "/tmp/bastion-escaped"],
        "mkdir: cannot create directory '/tmp/bastion-escaped': Permission denied\n",
    );
    assert!(!Path::new("/tmp/bastion-escaped").exists());
    // A program copied into the sandbox is never what a command name resolves to.
    assert_policy_refuses(&["./ls"]);
    assert_policy_refuses(&["cp", "/usr/bin/ls", "ls"]);
    if !landlock() {
        return;
    }
    let out = run(&sb, &["cp", "/usr/bin/ls", "ls"]);
    assert_eq!(out.exit_code, Some(0), "reading system programs is allowed");
    let copied = sb.path().join("ls");
    let argv = ["ls".to_owned()];
    let err = world()
        .runner
        .run(&RunSpec {
            program: &copied,
            argv: &argv,
            stdin: b"",
            sandbox: sb.path(),
            timeout: Duration::from_secs(5),
            output_cap: 1024,
            output_hard_cap: 1024,
        })
        .unwrap_err();
    // Nothing in the sandbox may be executed: the exec itself is refused.
    match err {
        bastion_sandbox::RunError::Spawn(e) => assert_eq!(e.raw_os_error(), Some(13), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn another_users_sandbox_is_out_of_reach() {
    let alice = sandbox("alice");
    let bob = sandbox("bob");
    bob.write(&SandboxPath::parse("secret.txt").unwrap(), b"bob's")
        .unwrap();
    let bob_file = bob.path().join("secret.txt").display().to_string();
    for path in ["../bob/secret.txt", bob_file.as_str()] {
        contained(
            &alice,
            &["cat", path],
            &format!("cat: {path}: Permission denied\n"),
        );
    }
    contained(
        &alice,
        &["ls", ".."],
        "ls: cannot open directory '..': Permission denied\n",
    );
    assert_policy_refuses(&["rm", "-rf", "../bob"]);
    if landlock() {
        let out = run(&alice, &["rm", "-rf", "../bob"]);
        assert_eq!(out.exit_code, Some(1));
    }
    assert_eq!(
        std::fs::read(bob.path().join("secret.txt")).unwrap(),
        b"bob's"
    );
}

#[test]
fn the_issue_diff_exploits_reach_neither_the_secrets_nor_another_user() {
    let alice = sandbox("diff-alice");
    let bob = sandbox("diff-bob");
    bob.write(&SandboxPath::parse("secret.txt").unwrap(), b"bob's")
        .unwrap();
    // `--unified` takes its number only after `=`: the word after it is a file, under the
    // path rules like any other. The secrets file sits beside the sandboxes, as a data
    // directory's would.
    let secrets = world().root.join("dev-secrets.env");
    std::fs::write(&secrets, b"JWT_KEYS=k1:secret\n").unwrap();
    let argv = ["diff", "--unified", "../dev-secrets.env", "-"];
    assert_policy_refuses(&argv);
    let out = landlock().then(|| run_with(&alice, &argv, 10_000, 1 << 20, b"x"));
    std::fs::remove_file(&secrets).unwrap();
    if let Some(out) = out {
        assert_eq!(
            text(&out.stderr),
            "diff: ../dev-secrets.env: Permission denied\n"
        );
        assert!(!text(&out.stdout).contains("secret"), "{out:?}");
    }
    let listing = ["diff", "-r", "-N", "--unified", "..", "--unified", "x"];
    assert_policy_refuses(&listing);
    if landlock() {
        let out = run(&alice, &listing);
        assert!(!text(&out.stdout).contains("bob's"), "{out:?}");
        assert_eq!(out.exit_code, Some(2), "{out:?}");
    }
    // What the real option does still works.
    alice
        .write(&SandboxPath::parse("a").unwrap(), b"1\n2\n")
        .unwrap();
    alice
        .write(&SandboxPath::parse("b").unwrap(), b"1\n3\n")
        .unwrap();
    let argv = ["diff", "--unified=0", "a", "b"];
    let owned: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
    assert!(policy().check(&owned).is_ok());
    let out = run(&alice, &argv);
    assert_eq!(out.exit_code, Some(1), "{out:?}");
    assert!(
        text(&out.stdout).ends_with("@@ -2 +2 @@\n-2\n+3\n"),
        "{out:?}"
    );
}

#[test]
fn symlinks_cannot_be_planted_from_inside() {
    let sb = sandbox("symlink");
    // seccomp leaves symlinkat and linkat off the allow-list: refused with or without Landlock.
    let out = run(&sb, &["ln", "-s", "/etc/passwd", "link"]);
    assert_eq!(
        text(&out.stderr),
        "ln: failed to create symbolic link 'link': Function not implemented\n"
    );
    let out = run(&sb, &["cp", "-s", "/etc/passwd", "link"]);
    assert_eq!(out.exit_code, Some(1));
    let out = run(&sb, &["ln", "/etc/passwd", "hard"]);
    assert_eq!(out.exit_code, Some(1));
    assert!(std::fs::symlink_metadata(sb.path().join("link")).is_err());
    assert!(std::fs::symlink_metadata(sb.path().join("hard")).is_err());
    for argv in [
        &["ln", "-s", "a", "link"][..],
        &["cp", "-s", "a", "link"],
        &["cp", "--symbolic-link", "a", "link"],
        &["cp", "-l", "a", "hard"],
    ] {
        assert_policy_refuses(argv);
    }
}

#[test]
fn a_symlink_planted_from_outside_is_never_followed() {
    let sb = sandbox("planted");
    std::os::unix::fs::symlink("/etc/passwd", sb.path().join("passwd")).unwrap();
    std::os::unix::fs::symlink("/etc", sb.path().join("etc")).unwrap();
    let p = |s: &str| SandboxPath::parse(s).unwrap();
    assert!(matches!(
        sb.read(&p("passwd"), 1 << 20),
        Err(FsError::Symlink)
    ));
    assert!(matches!(
        sb.read(&p("etc/passwd"), 1 << 20),
        Err(FsError::Symlink)
    ));
    assert!(matches!(
        sb.write(&p("passwd"), b"x"),
        Err(FsError::Symlink)
    ));
    assert!(matches!(
        sb.write(&p("etc/evil"), b"x"),
        Err(FsError::NotADirectory)
    ));
    assert!(!Path::new("/etc/evil").exists());
    let (list, _) = sb.list("", 100).unwrap();
    assert!(
        list.is_empty(),
        "symlinks are not listed as files: {list:?}"
    );
    // Where the kernel has Landlock, following it from inside lands outside the ruleset. (On a
    // kernel without, a command would follow it; nothing exec offers can create one.)
    if landlock() {
        let out = run(&sb, &["cat", "passwd"]);
        assert_eq!(text(&out.stderr), "cat: passwd: Permission denied\n");
    }
}

#[test]
fn a_fifo_planted_in_the_sandbox_is_neither_read_nor_written_and_never_blocks() {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let sb = sandbox("fifo");
    let fifo = sb.path().join("pipe");
    let made = std::process::Command::new(which("mkfifo"))
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let p = SandboxPath::parse("pipe").unwrap();

    // A writer waiting on the other end: reading must refuse, not return what it sends.
    let path = fifo.clone();
    let writer = std::thread::spawn(move || {
        let mut w = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        let _ = w.write_all(b"sent through the fifo");
    });
    assert!(matches!(sb.read(&p, 1 << 20), Err(FsError::NotAFile)));
    // Release the writer if it is still waiting for a reader.
    let mut release = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    writer.join().unwrap();
    let _ = release.read_to_end(&mut Vec::new());
    drop(release);

    // A reader waiting on the other end: writing must refuse, not feed it.
    let path = fifo.clone();
    let reader = std::thread::spawn(move || {
        let mut got = vec![0; 64];
        let n = std::fs::File::open(path).unwrap().read(&mut got).unwrap();
        got.truncate(n);
        got
    });
    assert!(matches!(sb.write(&p, b"x"), Err(FsError::NotAFile)));
    // Release the reader, whenever it opens (O_RDWR never blocks on a FIFO).
    let mut release = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    release.write_all(b"release").unwrap();
    assert_eq!(reader.join().unwrap(), b"release");
}

#[test]
fn a_directory_whose_name_is_not_utf8_is_still_measured_and_listed() {
    use std::os::unix::ffi::OsStrExt;
    let sb = sandbox("nonutf8");
    let dir = sb.path().join(std::ffi::OsStr::from_bytes(b"d\xff"));
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("f"), b"12345").unwrap();
    let usage = sb.usage().unwrap();
    assert_eq!((usage.entries, usage.bytes), (2, 5));
    let (list, more) = sb.list("", 10).unwrap();
    assert_eq!(
        list,
        vec![bastion_sandbox::Entry {
            path: "d\u{fffd}/f".to_owned(),
            size: 5
        }]
    );
    assert!(!more);
}
