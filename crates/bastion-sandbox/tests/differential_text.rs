//! The toolset's grep (toolset/grep) and sed (uutils sed) against the host's GNU grep and GNU
//! sed: every supported option over the same fixture files, same stdout, same exit status. The
//! commands are also checked by the policy first, so each case is one exec could run.
//!
//! Needs GNU grep and sed on the host and the host toolset (`scripts/toolset`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bastion_sandbox::{CommandPolicy, Toolset, built_tools_dir, split};

/// A fixture tree: text files, a binary file, a subdirectory and links `-r` must skip.
fn fixtures(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("bastion-text-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("d/sub")).unwrap();
    std::fs::create_dir_all(root.join("outside")).unwrap();
    let write = |p: &str, body: &[u8]| std::fs::write(root.join(p), body).unwrap();
    write(
        "a.txt",
        b"one\ntwo\nthree\nfour\nFive\nfoo bar\nfoobar\n(x) a+b a.b\n",
    );
    write("b.txt", b"alpha\nbeta\nTWO twos\n\nlast line no newline");
    write("bin.dat", b"text\0more\nfoo\n");
    write("d/x.txt", b"foo in d\n");
    write("d/sub/y.txt", b"deep foo\nnothing\n");
    write("outside/secret.txt", b"foo secret\n");
    std::os::unix::fs::symlink("../outside", root.join("d/link-dir")).unwrap();
    std::os::unix::fs::symlink("../outside/secret.txt", root.join("d/link-file")).unwrap();
    root
}

struct Outcome {
    stdout: String,
    code: Option<i32>,
}

fn run(program: &Path, args: &[String], dir: &Path, stdin: &[u8]) -> Outcome {
    use std::io::Write;
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("LC_ALL", "C")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // A program that never reads standard input closes the pipe first.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    let out = child.wait_with_output().unwrap();
    Outcome {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        code: out.status.code(),
    }
}

/// Runs every line through the policy, the toolset's program and the host's; returns the
/// disagreements.
fn compare(command: &str, host: &str, lines: &[&str]) -> Vec<String> {
    let toolset = Toolset::open(&built_tools_dir()).unwrap();
    let policy = CommandPolicy::resolve(&[command], &toolset).unwrap();
    let mut problems = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let argv = split(line).unwrap();
        let ours = match policy.check(&argv) {
            Ok(p) => p.to_path_buf(),
            Err(e) => {
                problems.push(format!("{line}: refused by the policy: {e}"));
                continue;
            }
        };
        // Each side gets fresh fixtures (sed -i edits them), compared afterwards too.
        let a = fixtures(&format!("{command}-{n}-ours"));
        let b = fixtures(&format!("{command}-{n}-host"));
        let stdin = b"from stdin\nfoo\n";
        let x = run(&ours, &argv[1..], &a, stdin);
        let y = run(Path::new(host), &argv[1..], &b, stdin);
        if x.stdout != y.stdout || x.code != y.code {
            problems.push(format!(
                "{line}:\n  toolset {:?} {:?}\n  host    {:?} {:?}",
                x.code, x.stdout, y.code, y.stdout
            ));
        }
        let ra = std::fs::read(a.join("a.txt")).unwrap_or_default();
        let rb = std::fs::read(b.join("a.txt")).unwrap_or_default();
        if ra != rb {
            problems.push(format!("{line}: a.txt differs afterwards"));
        }
        let _ = std::fs::remove_dir_all(&a);
        let _ = std::fs::remove_dir_all(&b);
    }
    problems
}

fn assert_none(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} disagreements:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn grep_agrees_with_gnu_grep() {
    assert_none(compare(
        "grep",
        "/usr/bin/grep",
        &[
            "grep foo a.txt",
            "grep -n o a.txt",
            "grep -c o a.txt b.txt",
            "grep -v o a.txt",
            "grep -i two a.txt b.txt",
            "grep -o o a.txt",
            "grep -on 'o*' a.txt",
            "grep -w foo a.txt",
            "grep -wo 'tw[a-z]*' b.txt",
            "grep -l o a.txt b.txt d/x.txt",
            "grep -lv zzz a.txt b.txt",
            "grep -h e a.txt b.txt",
            "grep -H e a.txt",
            "grep -q o a.txt",
            "grep -q zzz a.txt",
            "grep zzz a.txt",
            "grep -s foo missing.txt a.txt",
            "grep foo missing.txt a.txt",
            "grep -qs foo missing.txt a.txt",
            "grep -E 't(w|h)' a.txt",
            "grep -E 'o{2}' a.txt",
            "grep 'o\\{2\\}' a.txt",
            "grep 'a+b' a.txt",
            "grep '(x)' a.txt",
            "grep -E '\\(x\\)' a.txt",
            "grep 'x\\|Five' a.txt",
            "grep -F a.b a.txt",
            "grep -F 'a+b' a.txt",
            "grep a.b a.txt",
            "grep '^f' a.txt",
            "grep 'r$' a.txt",
            "grep '[[:upper:]]' a.txt b.txt",
            "grep -e one -e Five a.txt",
            "grep -e one a.txt -e two",
            "grep -- -x a.txt",
            "grep -e '' b.txt",
            "grep line b.txt",
            "grep foo - a.txt",
            "grep foo",
            "grep -c foo bin.dat",
            "grep foo bin.dat",
            "grep more bin.dat a.txt",
            "grep -r foo d/sub",
            "grep -rn foo d/sub a.txt",
            "grep -rl foo d/sub",
            "grep -r secret d",
            "grep -rc foo d/sub",
            "grep -rh foo d/sub",
            "grep foo d",
            "grep -s foo d a.txt",
            "grep foo d/link-file",
            "grep -ivn O a.txt",
        ],
    ));
}

#[test]
fn grep_r_lists_the_tree_without_following_links() {
    // GNU's -r walks in directory order; the toolset's in name order: compare sorted.
    let root = fixtures("walk");
    let toolset = Toolset::open(&built_tools_dir()).unwrap();
    let ours = toolset.program("grep").unwrap();
    let args: Vec<String> = ["-r", "foo"].map(str::to_owned).to_vec();
    let sorted = |o: Outcome| {
        let mut l: Vec<String> = o.stdout.lines().map(str::to_owned).collect();
        l.sort();
        (l, o.code)
    };
    let x = sorted(run(&ours, &args, &root.join("d"), b""));
    let y = sorted(run(Path::new("/usr/bin/grep"), &args, &root.join("d"), b""));
    assert_eq!(x, y);
    assert_eq!(
        x,
        (
            vec!["sub/y.txt:deep foo".to_owned(), "x.txt:foo in d".to_owned()],
            Some(0)
        )
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// uutils sed stops at a missing file with status 1 (GNU goes on and ends with 2): a documented
/// difference, pinned here so an upgrade that changes it is noticed.
#[test]
fn sed_stops_at_a_missing_file() {
    let root = fixtures("sed-missing");
    let toolset = Toolset::open(&built_tools_dir()).unwrap();
    let args: Vec<String> = ["-n", "1p", "missing.txt", "a.txt"]
        .map(str::to_owned)
        .to_vec();
    let x = run(&toolset.program("sed").unwrap(), &args, &root, b"");
    assert_eq!((x.stdout.as_str(), x.code), ("", Some(1)));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn sed_agrees_with_gnu_sed() {
    assert_none(compare(
        "sed",
        "/usr/bin/sed",
        &[
            "sed s/o/0/ a.txt",
            "sed s/o/0/g a.txt",
            "sed s/o/0/2 a.txt",
            "sed -n s/o/0/p a.txt",
            "sed s/five/5/i a.txt",
            "sed s/FIVE/5/I a.txt",
            "sed -n 2p a.txt",
            "sed 2,4d a.txt",
            "sed '/two/,/four/d' a.txt",
            "sed '$d' a.txt",
            "sed -n '$p' a.txt b.txt",
            "sed -s -n '$p' a.txt b.txt",
            "sed 3q a.txt",
            "sed -n '/^f/p' a.txt",
            "sed '/o/!d' a.txt",
            "sed -E 's/(o+)/[\\1]/g' a.txt",
            "sed -r 's/(t)(w)/\\2\\1/' a.txt",
            "sed 's/\\(t\\)\\(w\\)/\\2\\1/' a.txt",
            "sed -e 1d -e 3d a.txt",
            "sed --expression=1p -n a.txt",
            "sed --quiet -e 2p a.txt",
            "sed --regexp-extended 's/o|e/_/g' a.txt",
            "sed 'y/abc/xyz/' a.txt",
            "sed '1~2d' a.txt",
            "sed '2,+1d' a.txt",
            "sed -n '/two/{n;p}' a.txt",
            "sed '=' b.txt",
            "sed 'N;P;D' a.txt",
            "sed '$!N;s/\\n/ /' a.txt",
            "sed G b.txt",
            "sed 's/.*/[&]/' b.txt",
            "sed 's|o|/|g' a.txt",
            "sed 1q -",
            "sed p",
            "sed -i s/one/ONE/ a.txt",
            "sed -n -i 2p a.txt",
        ],
    ));
}
