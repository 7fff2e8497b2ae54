//! The command policy against the programs exec really runs: the toolset `scripts/toolset`
//! builds (uutils coreutils and diffutils, the same pinned sources as the Lambda layer). Every
//! option form the policy lists is run through the toolset's program under
//! `strace -e trace=%file`, with marker operands, and the test fails wherever the program names
//! a word as a file that the policy read as text or an option value (that word escaped the path
//! rules), or does not touch a word the policy read as a file. A toolset upgrade that changes
//! how arguments are parsed fails here before it can open a hole.
//!
//! Needs `strace` and the host toolset (both set up by `scripts/test`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bastion_sandbox::{
    CommandPolicy, OptionValue, Role, Toolset, built_tools_dir, known_commands, option_forms,
};

/// A valid value for an option, so the program goes on to open its operands (an invalid number
/// would stop it first); `None` where the value names a file (a marker is used).
fn sample(command: &str, option: &str) -> &'static str {
    match (command, option.trim_start_matches('-')) {
        ("sort" | "cut", "t" | "d" | "field-separator" | "delimiter" | "output-delimiter") => ",",
        ("sort", "check") => "quiet",
        ("uniq", "all-repeated") => "prepend",
        ("uniq", "group") => "both",
        (_, "color" | "colour" | "classify" | "interactive") => "never",
        ("date", "d" | "date") => "2020-01-01",
        ("date", "I" | "iso-8601") => "date",
        ("base64", "w" | "wrap") => "10",
        ("sed", "e" | "expression") => "p",
        _ => "1",
    }
}

/// Values that name a directory rather than a file.
fn is_directory_value(command: &str, option: &str) -> bool {
    matches!(command, "cp" | "mv") && matches!(option, "-t" | "--target-directory")
}

/// How many operands the program accepts with this option, so it does not stop on a usage
/// error before opening them.
fn operand_count(command: &str, option: &str) -> usize {
    match (command, option) {
        ("sort", "-c" | "-C" | "--check") | ("base64" | "date", _) => 1,
        _ => 2,
    }
}

/// Arguments the program needs whatever the option (cut needs one list), unless the option
/// under test is itself one of them.
fn base_args(command: &str, option: &str) -> Vec<String> {
    // sed needs a script; given by -e, every operand is a file.
    if command == "sed" {
        return vec!["-e".to_owned(), "p".to_owned()];
    }
    let lists = ["-b", "-c", "-f", "--bytes", "--characters", "--fields"];
    // xargs' operands are the argv of the command it runs: cat, whose operands are files.
    if command == "xargs" {
        return vec!["cat".to_owned()];
    }
    if command == "cut" && !lists.contains(&option) {
        return vec!["-f1".to_owned()];
    }
    // jq's first operand is the filter: a marker would not compile, and no file would open.
    if command == "jq" {
        return vec![".".to_owned()];
    }
    Vec::new()
}

/// Every spelling of one option: bare, value in the next word, value attached or after `=`.
fn spellings(command: &str, spelling: &str, value: OptionValue) -> Vec<(Vec<String>, Role)> {
    let long = spelling.starts_with("--");
    let joined = |v: &str| {
        if long {
            format!("{spelling}={v}")
        } else {
            format!("{spelling}{v}")
        }
    };
    let value_of = |role: Role, marker: &str| match role {
        Role::Path => marker.to_owned(),
        _ => sample(command, spelling).to_owned(),
    };
    match value {
        OptionValue::None => vec![(vec![spelling.to_owned()], Role::Option)],
        OptionValue::Required(role) => vec![
            (
                vec![spelling.to_owned(), value_of(role, "mk-value-sep")],
                role,
            ),
            (vec![joined(&value_of(role, "mk-value-joined"))], role),
        ],
        OptionValue::Optional(role) => vec![
            (vec![spelling.to_owned()], Role::Option),
            (vec![joined(&value_of(role, "mk-value-joined"))], role),
        ],
    }
}

struct Case {
    argv: Vec<String>,
    directories: Vec<String>,
    /// Whether every word read as a file must be touched (false where the program may stop on
    /// a usage error first: only a value opened as a file counts then).
    all_paths_touched: bool,
}

/// Every case for `command`: each option spelling, placed before and after the operands.
fn cases(command: &str) -> Vec<Case> {
    let mut forms: Vec<(String, Vec<String>, Role)> =
        vec![(String::new(), Vec::new(), Role::Option)];
    for form in option_forms(command) {
        for (words, role) in spellings(command, &form.spelling, form.value) {
            forms.push((form.spelling.clone(), words, role));
        }
    }
    let mut out = Vec::new();
    for (option, words, _) in forms {
        let operands: Vec<String> = (1..=operand_count(command, &option))
            .map(|n| format!("mk-operand-{n}"))
            .map(|m| {
                if command == "date" {
                    format!("+{m}")
                } else {
                    m
                }
            })
            .collect();
        let directories: Vec<String> = if is_directory_value(command, &option) {
            vec!["mk-value-sep".to_owned(), "mk-value-joined".to_owned()]
        } else {
            Vec::new()
        };
        let base = base_args(command, &option);
        // After a value in its own word, one operand fewer too: had the program not taken that
        // word as the value, it would be opened as the missing operand.
        let fewer = words.len() == 2 && operands.len() > 1;
        for (options_last, drop_one) in [(false, false), (true, false), (false, true)] {
            if drop_one && !fewer {
                continue;
            }
            let kept = &operands[..operands.len() - usize::from(drop_one)];
            let mut argv = vec![command.to_owned()];
            argv.extend(base.iter().cloned());
            if options_last {
                argv.extend(kept.iter().cloned());
                argv.extend(words.iter().cloned());
            } else {
                argv.extend(words.iter().cloned());
                argv.extend(kept.iter().cloned());
            }
            out.push(Case {
                argv,
                directories: directories.clone(),
                all_paths_touched: !drop_one,
            });
        }
    }
    out
}

/// The file names the program passed to any system call that takes one (execve excluded: its
/// argv is every word).
fn touched(log: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in log.lines().filter(|l| !l.contains("execve(")) {
        let mut parts = line.split('"');
        parts.next();
        while let Some(inside) = parts.next() {
            names.insert(inside.to_owned());
            parts.next();
        }
    }
    names
}

fn strace() -> PathBuf {
    ["/usr/bin/strace", "/bin/strace"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("strace is required for the differential test (scripts/test installs it)")
}

/// What the policy says of one word: its position, text and role.
type Reading = (usize, String, Role);

/// How the policy reads `case`, or why it refuses a form it lists.
fn reading(policy: &CommandPolicy, case: &Case) -> Result<(PathBuf, Vec<Reading>), String> {
    let words = policy
        .classify(&case.argv)
        .map_err(|e| format!("{:?}: the policy refuses a form it lists: {e}", case.argv))?;
    let words = words
        .into_iter()
        .map(|w| (w.index, w.text.to_owned(), w.role))
        .collect();
    let program = policy
        .check(&case.argv)
        .map_err(|e| format!("{:?}: refused: {e}", case.argv))?;
    Ok((program.to_path_buf(), words))
}

/// Runs one case in a fresh scratch directory; returns every disagreement between `words`
/// (the policy's reading) and what the program did. The multicall binary is started through a
/// link named after the command, so it sees argv[0] as exec passes it.
fn run_case(program: &Path, case: &Case, words: &[Reading], scratch: &Path) -> Vec<String> {
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch).unwrap();
    let bin = scratch.with_extension("bin");
    let _ = std::fs::remove_dir_all(&bin);
    std::fs::create_dir_all(&bin).unwrap();
    let named = bin.join(&case.argv[0]);
    std::os::unix::fs::symlink(program, &named).unwrap();
    for (_, text, role) in words {
        if *role == Role::Path && text.starts_with("mk-") {
            let p = scratch.join(text);
            if case.directories.iter().any(|d| d == text) {
                std::fs::create_dir_all(p).unwrap();
            } else {
                std::fs::write(p, b"alpha\nbeta\n").unwrap();
            }
        }
    }
    let log = scratch.with_extension("strace");
    let out = Command::new(strace())
        .args(["-f", "-qq", "-s", "4096", "-e", "trace=%file", "-o"])
        .arg(&log)
        .arg("--")
        .arg(&named)
        .args(&case.argv[1..])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .current_dir(scratch)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let names = touched(&std::fs::read_to_string(&log).unwrap());
    let _ = std::fs::remove_dir_all(&bin);
    let mut problems = Vec::new();
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (index, text, role) in words {
        let opened = names.contains(text);
        match role {
            Role::Path if case.all_paths_touched && text != "-" && !opened => problems.push(format!(
                "{:?}: the policy reads {text:?} (argument {index}) as a file the program never \
                 touched; stderr: {stderr}",
                case.argv
            )),
            Role::Text | Role::Option if opened => problems.push(format!(
                "{:?}: the program uses {text:?} (argument {index}) as a file but the policy \
                 reads it as {role:?}",
                case.argv
            )),
            _ => {}
        }
    }
    problems
}

#[test]
fn every_listed_option_is_read_by_the_policy_as_the_real_program_reads_it() {
    let all: Vec<&str> = known_commands().collect();
    let toolset = Toolset::open(&built_tools_dir()).unwrap();
    let policy = CommandPolicy::resolve(&all, &toolset).unwrap();
    let root = std::env::temp_dir().join(format!("bastion-differential-{}", std::process::id()));
    let mut problems = Vec::new();
    let mut runs = 0;
    for command in known_commands() {
        for (n, case) in cases(command).iter().enumerate() {
            let scratch = root.join(format!("{command}-{n}"));
            match reading(&policy, case) {
                Ok((program, words)) => problems.extend(run_case(&program, case, &words, &scratch)),
                Err(e) => problems.push(e),
            }
            let _ = std::fs::remove_dir_all(&scratch);
            let _ = std::fs::remove_file(scratch.with_extension("strace"));
            runs += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    assert!(runs > 300, "only {runs} runs");
    assert!(
        problems.is_empty(),
        "{} disagreements:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_differential_check_flags_the_reading_that_let_diff_unified_escape() {
    // The reading the policy had before optional values were modelled: the word after a bare
    // `--unified` as its (text) value. The toolset's diff opens it as a file, and the check must
    // say so.
    let root =
        std::env::temp_dir().join(format!("bastion-differential-self-{}", std::process::id()));
    let case = Case {
        argv: ["diff", "--unified", "mk-operand-1", "mk-operand-2"]
            .map(str::to_owned)
            .to_vec(),
        directories: Vec::new(),
        all_paths_touched: true,
    };
    let old = vec![
        (1, "--unified".to_owned(), Role::Option),
        (2, "mk-operand-1".to_owned(), Role::Text),
        (3, "mk-operand-2".to_owned(), Role::Path),
    ];
    let toolset = Toolset::open(&built_tools_dir()).unwrap();
    let diff = toolset.program("diff").unwrap();
    let problems = run_case(&diff, &case, &old, &root);
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_file(root.with_extension("strace"));
    assert_eq!(
        problems,
        vec![
            "[\"diff\", \"--unified\", \"mk-operand-1\", \"mk-operand-2\"]: the program uses \
             \"mk-operand-1\" (argument 2) as a file but the policy reads it as Text"
                .to_owned()
        ]
    );
}
