//! The toolset's find (uutils findutils 0.11.0) and xargs (toolset/xargs) against the host's GNU
//! find and xargs: every expression form the policy allows runs through the sandbox runner, as
//! exec runs it, and through GNU find on the same generated tree; the sorted outputs and the
//! exit codes must be equal. Then our xargs on standard input, as exec runs it: what GNU xargs
//! does for plain items, and the refusals of items that are not sandbox paths.
//!
//! Needs the host toolset (`scripts/toolset`) and GNU findutils on the host.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use bastion_sandbox::{
    ChildLimits, CommandPolicy, Layers, RunOutput, RunSpec, Runner, SandboxDir, Toolset,
    built_tools_dir, known_commands,
};

struct World {
    root: std::path::PathBuf,
    runner: Runner,
    policy: CommandPolicy,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("bastion-diff-find-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let toolset = Toolset::open(&built_tools_dir()).unwrap();
        let all: Vec<&str> = known_commands().collect();
        World {
            runner: Runner::new(Layers::probe(&root), ChildLimits::default())
                .with_program_dir(&built_tools_dir()),
            policy: CommandPolicy::resolve(&all, &toolset).unwrap(),
            root,
        }
    })
}

fn sandbox(name: &str) -> SandboxDir {
    let w = world();
    let _ = std::fs::remove_dir_all(w.root.join(name));
    SandboxDir::open_or_create(&w.root, name, w.runner.layers().openat2).unwrap()
}

/// Runs `argv` as exec does: the policy must pass it, the runner runs the program it names.
fn run(sb: &SandboxDir, argv: &[&str], stdin: &[u8]) -> RunOutput {
    let w = world();
    let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
    let program = w
        .policy
        .check(&argv)
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
        .to_path_buf();
    w.runner
        .run(&RunSpec {
            program: &program,
            argv: &argv,
            stdin,
            sandbox: sb.path(),
            timeout: Duration::from_secs(10),
            output_cap: 1 << 20,
            output_hard_cap: 4 << 20,
        })
        .unwrap()
}

fn host(dir: &Path, program: &str, args: &[&str], stdin: &[u8]) -> (Vec<u8>, Vec<u8>, Option<i32>) {
    use std::io::Write;
    let mut child = Command::new(Path::new("/usr/bin").join(program))
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A program that exits without reading its input closes the pipe first: EPIPE is its
    // answer, not a failure of the test.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{program:?}: {e}");
    }
    let out = child.wait_with_output().unwrap();
    (out.stdout, out.stderr, out.status.code())
}

/// Output items, sorted: walk order is the directory's, not part of the contract.
fn items(out: &[u8]) -> Vec<String> {
    let sep = if out.contains(&0) { 0 } else { b'\n' };
    let mut v: Vec<String> = out
        .split(|b| *b == sep)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    v.sort();
    v
}

/// A tree with every kind of entry the predicates tell apart: files of sizes around the unit
/// boundaries, empty files and directories, mixed-case names, a name with a space, a hidden
/// file, a symlink inside the tree, and mtimes an hour apart for -newer.
fn tree(dir: &Path) {
    let hour = Duration::from_secs(3600);
    // A fixed past instant: -newer compares the files with each other only.
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let files: &[(&str, usize, u32)] = &[
        ("old.txt", 10, 0),
        ("README", 0, 2),
        ("a/x.txt", 1, 2),
        ("a/Y.TXT", 512, 2),
        ("a/b/main.rs", 1024, 4),
        ("a/b/lib.rs", 1025, 4),
        ("a/b/c/deep.txt", 2047, 6),
        ("a/b/c/big.bin", 20_000, 6),
        ("src/with space.rs", 4096, 8),
        ("src/.hidden", 3, 8),
        ("src/Empty.md", 0, 8),
        ("mb/one.bin", 1 << 20, 8),
        ("mb/over.bin", (1 << 20) + 1, 8),
    ];
    for (name, size, hours) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, vec![b'x'; *size]).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(base + *hours * hour).unwrap();
    }
    std::fs::create_dir_all(dir.join("empty/dir")).unwrap();
    std::os::unix::fs::symlink("x.txt", dir.join("a/link")).unwrap();
}

/// Every form the find policy allows, with values around the edges of what they compare.
const CASES: &[&[&str]] = &[
    &[],
    &["."],
    &["a", "src"],
    &["a/b", "src", "-type", "f"],
    &[".", "-name", "*.txt"],
    &[".", "-name", "*.TXT"],
    &[".", "-iname", "*.txt"],
    &[".", "-name", "[a-m]*"],
    &[".", "-name", "with space.rs"],
    &[".", "-name", ".*"],
    &[".", "-path", "./a/*"],
    &[".", "-path", "*b/c*"],
    &[".", "-ipath", "./A/B/*"],
    &["-type", "f"],
    &["-type", "d"],
    &["-type", "l"],
    &["-type", "f,l"],
    &["-maxdepth", "1"],
    &["-maxdepth", "0"],
    &["-mindepth", "2"],
    &["-mindepth", "1", "-maxdepth", "2", "-type", "d"],
    &["a", "-maxdepth", "1", "-name", "*.txt"],
    &["-size", "0"],
    &["-size", "+0"],
    &["-size", "-1"],
    &["-size", "1"],
    &["-size", "2"],
    &["-size", "1024c"],
    &["-size", "+1024c"],
    &["-size", "-1025c"],
    &["-size", "1k"],
    &["-size", "2k"],
    &["-size", "+1k"],
    &["-size", "-2k"],
    &["-size", "1M"],
    &["-size", "+1M"],
    &["-size", "-1M"],
    &["-size", "-1G"],
    &["-size", "+0G"],
    &["-newer", "old.txt"],
    &["-newer", "a/b/main.rs"],
    &["-newer", "src/.hidden"],
    &["-empty"],
    &["-type", "d", "-empty"],
    &["!", "-name", "*.rs"],
    &["-not", "-type", "d"],
    &["!", "!", "-empty"],
    &["-name", "*.txt", "-o", "-name", "*.rs"],
    &["-name", "*.txt", "-or", "-type", "d"],
    &["-type", "f", "-a", "-name", "*.txt"],
    &["-type", "f", "-and", "-size", "+1k"],
    &["-type", "f", "-name", "*.rs"],
    &["(", "-name", "a", "-or", "-name", "b", ")", "-print"],
    &[
        "(", "-name", "*.md", "-o", "-name", "*.bin", ")", "-a", "-size", "-1M",
    ],
    &["!", "(", "-type", "d", "-o", "-name", "*.txt", ")"],
    &["-name", "*.txt", "-print", "-o", "-name", "*.rs", "-print0"],
    &["-name", "*.txt", "-print0"],
    &["src", "-print0"],
    &["-P", ".", "-name", "*.rs"],
    &["-name", "*.rs", "-print", "-print"],
];

#[test]
fn every_allowed_find_form_matches_gnu_find() {
    let sb = sandbox("find-forms");
    tree(sb.path());
    let mut problems = Vec::new();
    for args in CASES {
        let mut argv = vec!["find"];
        argv.extend_from_slice(args);
        let ours = run(&sb, &argv, b"");
        let (stdout, stderr, code) = host(sb.path(), "find", args, b"");
        let (mine, gnu) = (items(&ours.stdout), items(&stdout));
        if mine != gnu || ours.exit_code != code || ours.stdout.contains(&0) != stdout.contains(&0)
        {
            problems.push(format!(
                "{argv:?}: toolset {:?} {mine:?} (stderr {:?}); GNU {code:?} {gnu:?} (stderr {:?})",
                ours.exit_code,
                String::from_utf8_lossy(&ours.stderr),
                String::from_utf8_lossy(&stderr),
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The tree really tells the predicates apart: a few outputs, exactly.
    let out = run(&sb, &["find", ".", "-size", "-2k", "-name", "*.rs"], b"");
    // 1025 bytes round up to 2k, which is not less than 2k.
    assert_eq!(items(&out.stdout), ["./a/b/main.rs"]);
    let out = run(&sb, &["find", "-newer", "a/b/main.rs", "-type", "f"], b"");
    assert_eq!(
        items(&out.stdout),
        [
            "./a/b/c/big.bin",
            "./a/b/c/deep.txt",
            "./mb/one.bin",
            "./mb/over.bin",
            "./src/.hidden",
            "./src/Empty.md",
            "./src/with space.rs"
        ]
    );
    let _ = std::fs::remove_dir_all(sb.path());
}

#[test]
fn xargs_runs_an_allowed_command_with_the_items_as_gnu_xargs_does() {
    let sb = sandbox("xargs-forms");
    tree(sb.path());
    let cases: &[(&[&str], &[u8])] = &[
        (&["cat"], b"a/x.txt old.txt\n"),
        (&["wc", "-c"], b"a/x.txt\na/Y.TXT\n"),
        (&["-0", "wc", "-c"], b"src/with space.rs\0a/x.txt\0"),
        (&["-d", ",", "wc", "-c"], b"a/x.txt,old.txt"),
        (&["-d,", "wc", "-c"], b"a/x.txt,old.txt,"),
        (&["-n", "1", "wc", "-c"], b"a/x.txt old.txt a/Y.TXT"),
        (&["-n2", "echo"], b"a b c d e"),
        (&["-L", "1", "echo"], b"a b\nc\nd e f\n"),
        (&["echo"], b"'quoted item' \"two words\" back\\ slash\n"),
        (&[], b"a b\nc\n"),
        (&["echo", "none"], b""),
        (&["-r", "echo", "none"], b""),
        (&["-r", "echo", "none"], b"\n  \n"),
        (&["--", "ls", "-d"], b"a src"),
        (&["cat"], b"missing.txt"),
        (&["-0", "cat"], b"a/x.txt\0missing.txt\0old.txt\0"),
    ];
    let mut problems = Vec::new();
    for (args, stdin) in cases {
        let mut argv = vec!["xargs"];
        argv.extend_from_slice(args);
        let ours = run(&sb, &argv, stdin);
        let (stdout, _, code) = host(sb.path(), "xargs", args, stdin);
        if ours.stdout != stdout || ours.exit_code != code {
            problems.push(format!(
                "{argv:?} <<< {:?}: toolset {:?} {:?} (stderr {:?}); GNU {code:?} {:?}",
                String::from_utf8_lossy(stdin),
                ours.exit_code,
                String::from_utf8_lossy(&ours.stdout),
                String::from_utf8_lossy(&ours.stderr),
                String::from_utf8_lossy(&stdout),
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let _ = std::fs::remove_dir_all(sb.path());
}

#[test]
fn xargs_refuses_items_that_are_no_sandbox_paths_before_running_anything() {
    let sb = sandbox("xargs-refusals");
    tree(sb.path());
    let cases: &[(&[&str], &[u8], &str)] = &[
        (
            &["cat"],
            b"old.txt /etc/passwd\n",
            "xargs: item \"/etc/passwd\" refused: path must be relative to the sandbox\n",
        ),
        (
            &["cat"],
            b"a/x.txt ../../etc/passwd",
            "xargs: item \"../../etc/passwd\" refused: path must not contain '..'\n",
        ),
        (
            &["-0", "cat"],
            b"a/../../secret\0",
            "xargs: item \"a/../../secret\" refused: path must not contain '..'\n",
        ),
        (
            &["sort"],
            b"--compress-program=sh old.txt",
            "xargs: item \"--compress-program=sh\" refused: item must not start with '-'\n",
        ),
        (
            &["-n", "1", "rm"],
            b"old.txt -rf",
            "xargs: item \"-rf\" refused: item must not start with '-'\n",
        ),
        (
            &["-d", ",", "cat"],
            b"old.txt,a//x.txt",
            "xargs: item \"a//x.txt\" refused: path must not contain empty components\n",
        ),
        (
            &["-0", "cat"],
            b"old.txt\0\0",
            "xargs: item \"\" refused: path is empty\n",
        ),
    ];
    for (args, stdin, stderr) in cases {
        let mut argv = vec!["xargs"];
        argv.extend_from_slice(args);
        let out = run(&sb, &argv, stdin);
        assert_eq!(
            (String::from_utf8_lossy(&out.stderr).as_ref(), out.exit_code),
            (*stderr, Some(1)),
            "{argv:?}"
        );
        // Nothing ran: not even the items before the refused one were read or removed.
        assert_eq!(out.stdout, b"", "{argv:?}");
    }
    assert!(sb.path().join("old.txt").exists());
    let _ = std::fs::remove_dir_all(sb.path());
}
