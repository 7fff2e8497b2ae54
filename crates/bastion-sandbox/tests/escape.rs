//! Escape attempts against the isolation layers themselves. Most cases run programs the
//! command policy would never allow (sh, ln, env, yes, sleep) straight through the runner, to
//! show the kernel layers contain even what the policy is not there to stop.
//!
//! The suite runs twice: as is, and again (`the_whole_suite_passes_again_on_a_kernel_without_landlock`)
//! in a child process whose Landlock system calls answer `ENOSYS`, as on a kernel built without
//! Landlock (Lambda's may be one). There the runner takes its real "no Landlock" path, and what
//! Landlock alone contained must be refused by the command policy instead.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bastion_sandbox::{
    ChildLimits, CommandPolicy, FsError, Layers, RunOutput, RunSpec, Runner, SandboxDir,
    SandboxPath, Toolset, built_tools_dir, known_commands, remove_tree,
};

/// Set in the re-run of this suite that simulates a kernel without Landlock.
const WITHOUT_LANDLOCK_VAR: &str = "BASTION_ESCAPE_WITHOUT_LANDLOCK";

fn without_landlock() -> bool {
    std::env::var_os(WITHOUT_LANDLOCK_VAR).is_some()
}

/// Makes this process see a kernel without Landlock: the three Landlock system calls answer
/// `ENOSYS` on every thread (TSYNC), and every thread or child started later inherits that.
fn hide_landlock() {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
    let rules = [
        libc::SYS_landlock_create_ruleset,
        libc::SYS_landlock_add_rule,
        libc::SYS_landlock_restrict_self,
    ]
    .into_iter()
    .map(|nr| (nr, Vec::new()))
    .collect();
    let arch = TargetArch::try_from(std::env::consts::ARCH).unwrap();
    let enosys = u32::try_from(libc::ENOSYS).unwrap();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(enosys),
        arch,
    )
    .unwrap();
    let program: BpfProgram = filter.try_into().unwrap();
    seccompiler::apply_filter_all_threads(&program).unwrap();
}

struct World {
    root: PathBuf,
    runner: Runner,
    /// How many tests hold a sandbox; the root is created and removed under this lock, so one
    /// test's clean-up never removes the root another is about to create its sandbox in.
    live: Mutex<usize>,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        if without_landlock() {
            hide_landlock();
        }
        let root = std::env::temp_dir().join(format!("bastion-escape-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let layers = Layers::probe(&root);
        World {
            runner: Runner::new(layers, ChildLimits::default())
                .with_program_dir(&built_tools_dir()),
            root,
            live: Mutex::new(0),
        }
    })
}

/// One test's sandbox, removed when the test ends (pass or fail); the last one out removes the
/// suite's root too, so no `bastion-escape-<pid>` directory is left behind.
struct Sandbox {
    dir: SandboxDir,
    name: &'static str,
}

impl std::ops::Deref for Sandbox {
    type Target = SandboxDir;
    fn deref(&self) -> &SandboxDir {
        &self.dir
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let w = world();
        let mut live = w.live.lock().unwrap_or_else(|e| e.into_inner());
        let _ = remove_tree(&w.root, self.name);
        *live -= 1;
        if *live == 0 {
            let _ = std::fs::remove_dir(&w.root);
        }
    }
}

/// A fresh sandbox for one test.
fn sandbox(name: &'static str) -> Sandbox {
    let w = world();
    let mut live = w.live.lock().unwrap_or_else(|e| e.into_inner());
    std::fs::create_dir_all(&w.root).unwrap();
    let _ = remove_tree(&w.root, name);
    let dir = SandboxDir::open_or_create(&w.root, name, w.runner.layers().openat2).unwrap();
    *live += 1;
    Sandbox { dir, name }
}

fn run_with(
    sb: &SandboxDir,
    argv: &[&str],
    timeout_ms: u64,
    hard_cap: u64,
    stdin: &[u8],
) -> RunOutput {
    let program = which(argv[0]);
    let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
    let out = world()
        .runner
        .run(&RunSpec {
            program: &program,
            argv: &argv,
            stdin,
            sandbox: sb.path(),
            timeout: Duration::from_millis(timeout_ms),
            output_cap: 64 * 1024,
            output_hard_cap: hard_cap,
        })
        .unwrap();
    assert_group_gone(out.pgid);
    out
}

fn run(sb: &SandboxDir, argv: &[&str]) -> RunOutput {
    run_with(sb, argv, 10_000, 1 << 20, b"")
}

/// The toolset's program for a command exec allows (what production runs); the host's for the
/// programs no policy allows (sh, ln, env…), run here only to test the kernel layers.
fn which(name: &str) -> PathBuf {
    if let Some(p) = toolset().program(name) {
        return p;
    }
    ["/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not installed"))
}

fn toolset() -> &'static Toolset {
    static T: OnceLock<Toolset> = OnceLock::new();
    T.get_or_init(|| Toolset::open(&built_tools_dir()).unwrap())
}

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

/// No live process (zombies included) is left in the run's process group.
fn assert_group_gone(pgid: u32) {
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split(' ').collect();
        let (state, pgrp) = (fields[0], fields[2]);
        assert_ne!(
            pgrp,
            pgid.to_string(),
            "process {:?} (state {state}) of group {pgid} outlived the run",
            entry.file_name()
        );
    }
}

fn layers_on() -> &'static Layers {
    world().runner.layers()
}

fn landlock() -> bool {
    layers_on().landlock_abi.is_some()
}

/// The policy exec enforces, with every command it knows.
fn policy() -> &'static CommandPolicy {
    static P: OnceLock<CommandPolicy> = OnceLock::new();
    P.get_or_init(|| {
        let all: Vec<&str> = known_commands().collect();
        CommandPolicy::resolve(&all, toolset()).unwrap()
    })
}

/// The command policy refuses `argv`: without Landlock, it is what keeps it from the host.
fn assert_policy_refuses(argv: &[&str]) {
    let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
    assert!(
        policy().check(&argv).is_err(),
        "{argv:?} passes the command policy"
    );
}

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
                "a_secret_in_the_parent_environment_reaches_no_child",
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

/// An argv that reaches outside the sandbox: the command policy refuses it on every kernel, and
/// where the kernel has Landlock, running it anyway is denied with `landlock_stderr`.
fn contained(sb: &SandboxDir, argv: &[&str], landlock_stderr: &str) {
    assert_policy_refuses(argv);
    if landlock() {
        let out = run(sb, argv);
        assert_eq!(text(&out.stderr), landlock_stderr, "{argv:?}");
        assert_ne!(out.exit_code, Some(0), "{argv:?}");
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
            "a_run_dies_with_the_server_killed_in_the_middle_of_it",
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

#[test]
fn non_utf8_output_comes_back_byte_for_byte() {
    let sb = sandbox("bytes");
    let out = run(&sb, &["printf", "\\377\\376a"]);
    assert_eq!(out.stdout, [0xff, 0xfe, b'a']);
}

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
