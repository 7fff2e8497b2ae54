//! jq and awk as the toolset builds them (our jq front end over jaq, busybox awk) against the
//! host's jq and awk (mawk on the dev box): for every option the policy allows, the same
//! arguments, input files and standard input give the same standard output and exit code. Each
//! argv is also checked by the policy first, so no case runs what exec would refuse. Plus the
//! controls the programs themselves carry: the toolset's jq has no `env` or `$ENV` and loads no
//! modules, and busybox runs awk only under the name `awk`.
//!
//! Needs the host toolset (`scripts/toolset`) and the host's `jq` and `awk`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bastion_sandbox::{CommandPolicy, PolicyError, Toolset, built_tools_dir};

/// Input files every case may name.
const FILES: &[(&str, &str)] = &[
    (
        "a.json",
        "{\"name\":\"ann\",\"tags\":[\"x\",\"y\"],\"n\":3}\n",
    ),
    ("b.json", "1 2\n[3,{\"k\":null}]\n"),
    ("f.json", "false\n"),
    ("t.txt", "alice 30 paris\nbob 25 rome\ncarol 35 oslo\n"),
    ("c.csv", "id,name,score\n1,ann,9.5\n2,bob,7\n3,cid,8.25\n"),
];

struct Outcome {
    stdout: String,
    code: Option<i32>,
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bastion-jqawk-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in FILES {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

fn run(program: &Path, arg0: &str, args: &[&str], stdin: &str, dir: &Path) -> Outcome {
    let mut child = Command::new(program)
        .arg0(arg0)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program:?}: {e}"));
    // A program that exits without reading its input closes the pipe first: EPIPE is its
    // answer, not a failure of the test.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{program:?}: {e}");
    }
    let out = child.wait_with_output().unwrap();
    Outcome {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        code: out.status.code(),
    }
}

fn policy() -> CommandPolicy {
    let toolset = Toolset::open(&built_tools_dir()).unwrap();
    CommandPolicy::resolve(&["jq", "awk"], &toolset).unwrap()
}

fn host(name: &str) -> PathBuf {
    ["/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("the host has no {name}"))
}

/// Runs every case through the policy, then the toolset's and the host's program, and returns
/// each disagreement. A case that writes `out.txt` compares that file too.
fn compare(command: &str, cases: &[(&[&str], &str)]) -> Vec<String> {
    let policy = policy();
    let host = host(command);
    let mut problems = Vec::new();
    for (n, (args, stdin)) in cases.iter().enumerate() {
        let mut argv = vec![command.to_owned()];
        argv.extend(args.iter().map(|s| (*s).to_owned()));
        let ours = match policy.check(&argv) {
            Ok(p) => p.to_path_buf(),
            Err(e) => {
                problems.push(format!("{argv:?}: refused by the policy: {e}"));
                continue;
            }
        };
        let (d1, d2) = (
            scratch(&format!("{command}{n}t")),
            scratch(&format!("{command}{n}h")),
        );
        let (a, b) = (
            run(&ours, command, args, stdin, &d1),
            run(&host, command, args, stdin, &d2),
        );
        let written = |d: &Path| std::fs::read_to_string(d.join("out.txt")).ok();
        if a.stdout != b.stdout || a.code != b.code || written(&d1) != written(&d2) {
            problems.push(format!(
                "{argv:?}: toolset {:?} exit {:?}, host {:?} exit {:?}",
                a.stdout, a.code, b.stdout, b.code
            ));
        }
        let _ = std::fs::remove_dir_all(&d1);
        let _ = std::fs::remove_dir_all(&d2);
    }
    problems
}

#[test]
fn jq_options_give_the_output_and_exit_code_of_the_hosts_jq() {
    let cases: &[(&[&str], &str)] = &[
        (&["."], "{\"a\":[1,2],\"b\":\"x\"}"),
        (&[".", "a.json"], ""),
        (&["-c", ".", "a.json", "b.json"], ""),
        (&["-r", ".name", "a.json"], ""),
        (&["-r", ".tags[]", "a.json"], ""),
        (&["-rc", ".tags", "a.json"], ""),
        (&["--raw-output", "--compact-output", ".", "a.json"], ""),
        (&["-s", ".", "b.json"], ""),
        (&["-s", "-c", "map(type)", "a.json", "b.json"], ""),
        (&["--slurp", "length"], "1 2 3"),
        (&["-n", "1 + 2"], ""),
        (&["-n", "[inputs]", "b.json"], ""),
        (&["-n", "input", "b.json"], ""),
        (&["--null-input", "[range(3)]", "-c"], ""),
        (&["-e", ".n", "a.json"], ""),
        (&["-e", ".missing", "a.json"], ""),
        (&["-e", ".", "f.json"], ""),
        (&["-e", "empty", "a.json"], ""),
        (&["--exit-status", ".n > 2", "a.json"], ""),
        (&["--arg", "who", "bob", "-n", "$who"], ""),
        (
            &["-n", "--arg", "x", "1", "--arg", "y", "2", "-c", "[$x, $y]"],
            "",
        ),
        (&["--argjson", "v", "{\"k\":[1,2]}", "-c", "-n", "$v.k"], ""),
        (&["-c", "--arg", "k", "n", "{($k): .[$k]}", "a.json"], ""),
        (&["-c", "$ARGS.named", "--arg", "a", "b", "-n"], ""),
        (&["-c", ".", "-", "b.json"], "[7]"),
        (&[".", "missing.json", "a.json"], ""),
        (&["-c", "map(select(. > 1))"], "[1,2,3]"),
        (&["-n", "error(\"no\")"], ""),
        (&[".a."], "{}"),
        (&["-r", "@csv", "-c"], "[1,\"a\"]"),
    ];
    let problems = compare("jq", cases);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn awk_options_give_the_output_and_exit_code_of_the_hosts_awk() {
    let cases: &[(&[&str], &str)] = &[
        (&["{ print $2 }", "t.txt"], ""),
        (&["-F,", "NR > 1 { s += $3 } END { print s }", "c.csv"], ""),
        (&["-F", ",", "{ print $2 }", "c.csv"], ""),
        (&["-v", "min=28", "$2 > min { print $1 }", "t.txt"], ""),
        (&["-vmin=28", "$2 > min { print $1 }", "t.txt"], ""),
        (&["{ print x, $1 }", "x=1", "t.txt", "x=2", "t.txt"], ""),
        (&["{ n++ } END { print n }", "-"], "a\nb\n"),
        (&["--", "{ print NF }"], "a b c\n"),
        (&["BEGIN { printf \"%d-%s\\n\", 7, \"x\" }"], ""),
        (&["/o/ && !/carol/ { print }", "t.txt"], ""),
        (&["{ a[$3] = $1 } END { print a[\"rome\"] }", "t.txt"], ""),
        (
            &[
                "{ print $1 > \"out.txt\" } END { close(\"out.txt\") }",
                "t.txt",
            ],
            "",
        ),
        (&["{ print $0 >> \"out.txt\" }", "t.txt"], ""),
        (
            &["BEGIN { while ((getline l < \"t.txt\") > 0) n++; print n }"],
            "",
        ),
        (
            &["{ print length($1), toupper(substr($1, 1, 2)) }", "t.txt"],
            "",
        ),
        (&["{ gsub(/a/, \"A\"); print }", "t.txt"], ""),
        (&["BEGIN { x = 7 / 2; print x; exit 3 }"], ""),
        (&["BEGIN { print ENVIRON[\"PATH\"] }"], ""),
        (&["{ print ($2 > 26) }", "t.txt"], ""),
    ];
    let problems = compare("awk", cases);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_toolset_jq_has_no_environment_and_loads_no_modules() {
    let policy = policy();
    let dir = scratch("jq-env");
    std::fs::write(dir.join("m.jq"), "def f: 1;").unwrap();
    for filter in [
        "env",
        "$ENV",
        "$ENV.PATH",
        "env.PATH",
        "import \"m\" as m; m::f",
        "include \"m\"; f",
        "repl",
    ] {
        let argv: Vec<String> = ["jq", "-n", filter].map(str::to_owned).to_vec();
        let program = policy.check(&argv).unwrap();
        let out = run(
            program,
            "jq",
            &argv[1..].iter().map(String::as_str).collect::<Vec<_>>(),
            "",
            &dir,
        );
        // A compile error (jq's exit 3), and nothing of the environment on standard output.
        assert_eq!((out.stdout.as_str(), out.code), ("", Some(3)), "{filter}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn busybox_runs_only_awk_and_only_through_its_awk_link() {
    let policy = policy();
    let tools = built_tools_dir();
    let argv: Vec<String> = ["awk", "BEGIN { print \"ok\" }"]
        .map(str::to_owned)
        .to_vec();
    let program = policy.check(&argv).unwrap();
    assert_eq!(program, tools.join("awk"));
    let dir = scratch("bb");
    // The runner passes argv[0] (the command name the policy checked) as arg0.
    let out = run(
        program,
        "awk",
        &argv[1..].iter().map(String::as_str).collect::<Vec<_>>(),
        "",
        &dir,
    );
    assert_eq!((out.stdout.as_str(), out.code), ("ok\n", Some(0)));
    // busybox chooses its applet by argv[0]: that is why exec must never pass another name.
    let out = run(program, "sh", &["-c", "echo applet"], "", &dir);
    assert_eq!((out.stdout.as_str(), out.code), ("applet\n", Some(0)));
    let _ = std::fs::remove_dir_all(&dir);
    // And no command name but `awk` reaches the busybox binary: its other applets are not
    // commands, and the binary's own name is not one either.
    for name in ["busybox", "sh", "wget", "nc"] {
        let argv = vec![name.to_owned(), "x".to_owned()];
        assert_eq!(
            policy.check(&argv),
            Err(PolicyError::CommandNotAllowed(name.to_owned()))
        );
    }
    let manifest = std::fs::read_to_string(tools.join("commands")).unwrap();
    let users: Vec<&str> = manifest
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("busybox"))
        .collect();
    assert_eq!(users, ["awk busybox"]);
}

#[test]
fn awk_operands_and_the_program_obey_the_path_rules() {
    use bastion_sandbox::PathError;
    let policy = policy();
    let check = |args: &[&str]| {
        let mut argv = vec!["awk".to_owned()];
        argv.extend(args.iter().map(|s| (*s).to_owned()));
        policy.check(&argv).map(|_| ())
    };
    let path = |index, error| Err(PolicyError::Path { index, error });
    assert_eq!(
        check(&["{ print }", "/etc/passwd"]),
        path(2, PathError::Absolute)
    );
    assert_eq!(
        check(&["{ print }", "x=1", "../up"]),
        path(3, PathError::ParentComponent)
    );
    assert_eq!(
        check(&["-F:", "{ print > \"/tmp/x\" }"]),
        path(2, PathError::Absolute)
    );
    // An assignment operand is text: awk never opens it.
    assert_eq!(check(&["{ print v }", "v=/etc/passwd", "-"]), Ok(()));
    assert_eq!(
        check(&["BEGIN { system(\"id\") }"]),
        Err(PolicyError::Refused {
            command: "awk",
            reason: "system() runs a command".to_owned()
        })
    );
}

#[test]
fn jq_and_awk_run_under_the_sandbox_runner() {
    use bastion_sandbox::{ChildLimits, Layers, RunSpec, Runner, SandboxDir, remove_tree};
    use std::time::Duration;
    let root = std::env::temp_dir().join(format!("bastion-jqawk-run-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    let runner = Runner::new(Layers::probe(&root), ChildLimits::default())
        .with_program_dir(&built_tools_dir());
    let sb = SandboxDir::open_or_create(&root, "w", runner.layers().openat2).unwrap();
    for (name, text) in FILES {
        std::fs::write(sb.path().join(name), text).unwrap();
    }
    let policy = policy();
    for (argv, want) in [
        (&["jq", "-c", ".tags", "a.json"][..], "[\"x\",\"y\"]\n"),
        (&["jq", "-n", "-r", "[inputs] | length", "b.json"], "3\n"),
        (
            &["awk", "-F,", "NR > 1 { print $2 }", "c.csv"],
            "ann\nbob\ncid\n",
        ),
        (
            &[
                "awk",
                "{ print $1 > \"names\" } END { close(\"names\"); while ((getline l < \"names\") > 0) n++; print n }",
                "t.txt",
            ],
            "3\n",
        ),
    ] {
        let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
        let program = policy.check(&argv).unwrap();
        let out = runner
            .run(&RunSpec {
                program,
                argv: &argv,
                stdin: b"",
                sandbox: sb.path(),
                timeout: Duration::from_secs(10),
                output_cap: 64 * 1024,
                output_hard_cap: 1 << 20,
            })
            .unwrap();
        assert_eq!(
            (String::from_utf8_lossy(&out.stdout).as_ref(), out.exit_code),
            (want, Some(0)),
            "{argv:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    drop(sb);
    let _ = remove_tree(&root, "w");
    let _ = std::fs::remove_dir_all(&root);
}
