//! The command allowlist and each command's argument policy.
//!
//! Every option must be on its command's list, spelled exactly (GNU accepts unique prefixes of
//! long options, so a prefix of a refused option must not slip through), and every operand or
//! option value that names a file must pass the sandbox path rules. Options that run programs
//! or reach outside (`sort --compress-program`, `diff --paginate`, `cp -s`, `date --set`,
//! `sha256sum --check`, `--files0-from`…) are simply not on any list.

use std::path::{Path, PathBuf};

use crate::path::{PathError, SandboxPath};

/// How a command's operands are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operands {
    /// Every operand names a file (`-` is standard input).
    Paths,
    /// Operands are text (`tr` sets); no file is named.
    Text,
    /// The first operand is a pattern unless `-e`/`-f` gave one; the rest name files.
    PatternThenPaths,
    /// Only `+FORMAT`: any other operand would set the clock.
    DateFormat,
    /// Every argument is text and nothing is parsed as an option (`echo`, `printf`, `seq`).
    AllText,
}

/// What an option's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    Text,
    Path,
}

/// One command's policy.
#[derive(Debug)]
struct Spec {
    name: &'static str,
    operands: Operands,
    /// Short options without a value, as letters.
    flags: &'static str,
    /// Short options taking a value (attached or the next argument).
    valued: &'static [(char, Value)],
    /// Long options without a value (`--name`).
    long: &'static [&'static str],
    /// Long options taking a value (`--name=v` or `--name v`).
    long_valued: &'static [(&'static str, Value)],
}

const T: Value = Value::Text;
const P: Value = Value::Path;

const fn spec(name: &'static str, operands: Operands) -> Spec {
    Spec {
        name,
        operands,
        flags: "",
        valued: &[],
        long: &[],
        long_valued: &[],
    }
}

static SPECS: &[Spec] = &[
    spec("echo", Operands::AllText),
    spec("printf", Operands::AllText),
    spec("seq", Operands::AllText),
    spec("sleep", Operands::AllText),
    Spec {
        flags: "AbeEnstTuv",
        long: &["number", "number-nonblank", "show-all", "squeeze-blank"],
        ..spec("cat", Operands::Paths)
    },
    Spec {
        flags: "qvz",
        valued: &[('n', T), ('c', T)],
        long: &["quiet", "silent", "verbose", "zero-terminated"],
        long_valued: &[("lines", T), ("bytes", T)],
        ..spec("head", Operands::Paths)
    },
    // No -f/-F: following a file only burns the timeout.
    Spec {
        flags: "qvz",
        valued: &[('n', T), ('c', T)],
        long: &["quiet", "silent", "verbose", "zero-terminated"],
        long_valued: &[("lines", T), ("bytes", T)],
        ..spec("tail", Operands::Paths)
    },
    Spec {
        flags: "clmwL",
        long: &["bytes", "chars", "lines", "words", "max-line-length"],
        ..spec("wc", Operands::Paths)
    },
    Spec {
        flags: "bdfgiMhnRrVcCsuz",
        valued: &[('k', T), ('t', T), ('o', P)],
        long: &[
            "reverse",
            "numeric-sort",
            "unique",
            "ignore-case",
            "stable",
            "human-numeric-sort",
            "version-sort",
            "general-numeric-sort",
            "month-sort",
            "check",
            "zero-terminated",
        ],
        long_valued: &[("key", T), ("field-separator", T), ("output", P)],
        ..spec("sort", Operands::Paths)
    },
    Spec {
        flags: "cdDiuz",
        valued: &[('f', T), ('s', T), ('w', T)],
        long: &["count", "repeated", "unique", "ignore-case"],
        ..spec("uniq", Operands::Paths)
    },
    Spec {
        flags: "snz",
        valued: &[('d', T), ('f', T), ('c', T), ('b', T)],
        long: &["complement", "only-delimited"],
        long_valued: &[
            ("delimiter", T),
            ("fields", T),
            ("characters", T),
            ("bytes", T),
            ("output-delimiter", T),
        ],
        ..spec("cut", Operands::Paths)
    },
    Spec {
        flags: "cCdst",
        ..spec("tr", Operands::Text)
    },
    Spec {
        flags: "EFGPiyvwxcLlonqsbHhrRzaI",
        valued: &[('e', T), ('f', P), ('m', T), ('A', T), ('B', T), ('C', T)],
        long: &[
            "ignore-case",
            "invert-match",
            "word-regexp",
            "line-regexp",
            "count",
            "files-with-matches",
            "files-without-match",
            "only-matching",
            "quiet",
            "silent",
            "no-messages",
            "recursive",
            "line-number",
            "with-filename",
            "no-filename",
            "extended-regexp",
            "fixed-strings",
            "perl-regexp",
        ],
        long_valued: &[
            ("regexp", T),
            ("file", P),
            ("max-count", T),
            ("after-context", T),
            ("before-context", T),
            ("context", T),
        ],
        ..spec("grep", Operands::PatternThenPaths)
    },
    Spec {
        flags: "aAlhRrtSd1FpnisU",
        long: &[
            "all",
            "almost-all",
            "human-readable",
            "recursive",
            "reverse",
            "directory",
            "classify",
        ],
        ..spec("ls", Operands::Paths)
    },
    Spec {
        flags: "pv",
        long: &["parents", "verbose"],
        ..spec("mkdir", Operands::Paths)
    },
    Spec {
        flags: "fiIrRdv",
        long: &["force", "recursive", "dir", "verbose"],
        ..spec("rm", Operands::Paths)
    },
    // Never -s/-l (symbolic or hard links) or --parents/--reflink/--preserve.
    Spec {
        flags: "afinprRuvT",
        valued: &[('t', P)],
        long: &[
            "archive",
            "force",
            "interactive",
            "no-clobber",
            "recursive",
            "update",
            "verbose",
            "no-target-directory",
        ],
        long_valued: &[("target-directory", P)],
        ..spec("cp", Operands::Paths)
    },
    Spec {
        flags: "finuvT",
        valued: &[('t', P)],
        long: &[
            "force",
            "interactive",
            "no-clobber",
            "update",
            "verbose",
            "no-target-directory",
        ],
        long_valued: &[("target-directory", P)],
        ..spec("mv", Operands::Paths)
    },
    // Never -l/--paginate: it runs `pr`.
    Spec {
        flags: "abBdiEqrsuNtTwy",
        valued: &[('U', T)],
        long: &[
            "brief",
            "ignore-case",
            "report-identical-files",
            "recursive",
            "new-file",
            "text",
            "ignore-all-space",
            "ignore-blank-lines",
            "side-by-side",
        ],
        long_valued: &[("unified", T)],
        ..spec("diff", Operands::Paths)
    },
    // Never -s/--set, -f/--file or -r/--reference; operands must be +FORMAT.
    Spec {
        flags: "uR",
        valued: &[('d', T)],
        long: &["utc", "universal", "rfc-email"],
        long_valued: &[("date", T)],
        ..spec("date", Operands::DateFormat)
    },
    Spec {
        flags: "di",
        valued: &[('w', T)],
        long: &["decode", "ignore-garbage"],
        long_valued: &[("wrap", T)],
        ..spec("base64", Operands::Paths)
    },
    // Never -c/--check: the checked file names other files, which no rule here could see.
    Spec {
        flags: "btz",
        long: &["binary", "text", "tag", "zero"],
        ..spec("sha256sum", Operands::Paths)
    },
];

/// The commands on by default.
pub const DEFAULT_COMMANDS: &[&str] = &[
    "echo",
    "printf",
    "cat",
    "head",
    "tail",
    "wc",
    "sort",
    "uniq",
    "cut",
    "tr",
    "grep",
    "ls",
    "mkdir",
    "rm",
    "cp",
    "mv",
    "diff",
    "seq",
    "date",
    "base64",
    "sha256sum",
];

/// Every command a deployment may enable.
pub fn known_commands() -> impl Iterator<Item = &'static str> {
    SPECS.iter().map(|s| s.name)
}

/// Why an argv was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("command {0:?} is not allowed")]
    CommandNotAllowed(String),
    #[error("option {option:?} is not allowed for {command}")]
    OptionNotAllowed {
        command: &'static str,
        option: String,
    },
    #[error("option {option:?} of {command} needs a value")]
    MissingValue {
        command: &'static str,
        option: String,
    },
    #[error("date operands must be +FORMAT")]
    DateOperand,
    #[error("argument {index}: {error}")]
    Path { index: usize, error: PathError },
}

/// A command resolved at start-up to an absolute program path.
#[derive(Debug, Clone)]
struct Allowed {
    spec: &'static Spec,
    program: PathBuf,
}

/// The configured allowlist, each command resolved once (no PATH lookup at run time).
#[derive(Debug, Clone)]
pub struct CommandPolicy {
    allowed: Vec<Allowed>,
}

/// A problem building the allowlist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowlistError {
    #[error("{0:?} is not a known command; known: {1}")]
    Unknown(String, String),
    #[error("{0:?} was not found in /usr/bin or /bin")]
    Missing(String),
}

const PROGRAM_DIRS: [&str; 2] = ["/usr/bin", "/bin"];

impl CommandPolicy {
    /// Resolves `names` in the system program directories. With `strict`, a missing program is
    /// an error; otherwise it is left off (and [`Self::names`] shows what is on).
    pub fn resolve(names: &[&str], strict: bool) -> Result<Self, AllowlistError> {
        Self::resolve_in(names, strict, &PROGRAM_DIRS.map(Path::new))
    }

    fn resolve_in(names: &[&str], strict: bool, dirs: &[&Path]) -> Result<Self, AllowlistError> {
        let mut allowed: Vec<Allowed> = Vec::new();
        for name in names {
            let spec = SPECS.iter().find(|s| s.name == *name).ok_or_else(|| {
                AllowlistError::Unknown(
                    (*name).to_owned(),
                    known_commands().collect::<Vec<_>>().join(","),
                )
            })?;
            if allowed.iter().any(|a| a.spec.name == *name) {
                continue;
            }
            let program = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file());
            match program {
                Some(program) => allowed.push(Allowed { spec, program }),
                None if strict => return Err(AllowlistError::Missing((*name).to_owned())),
                None => tracing::warn!(command = name, "exec command not found; left off"),
            }
        }
        Ok(Self { allowed })
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.allowed.iter().map(|a| a.spec.name).collect()
    }

    /// Checks `argv` (argv[0] is the bare command name) and returns the program to run.
    pub fn check(&self, argv: &[String]) -> Result<&Path, PolicyError> {
        let name = argv.first().map(String::as_str).unwrap_or_default();
        let allowed = self
            .allowed
            .iter()
            .find(|a| a.spec.name == name)
            .ok_or_else(|| PolicyError::CommandNotAllowed(truncate(name)))?;
        check_args(allowed.spec, argv.get(1..).unwrap_or_default())?;
        Ok(&allowed.program)
    }
}

/// Refusals name what was refused, but never echo a whole 4 KiB argument back.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn check_args(spec: &'static Spec, args: &[String]) -> Result<(), PolicyError> {
    if spec.operands == Operands::AllText {
        return Ok(());
    }
    let refuse = |option: &str| PolicyError::OptionNotAllowed {
        command: spec.name,
        option: truncate(option),
    };
    let missing = |option: &str| PolicyError::MissingValue {
        command: spec.name,
        option: truncate(option),
    };
    let mut operands: Vec<(usize, &str)> = Vec::new();
    let mut pattern_given = false;
    let mut end_of_options = false;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let index = i + 1;
        i += 1;
        if end_of_options || arg == "-" || !arg.starts_with('-') {
            operands.push((index, arg));
            continue;
        }
        if arg == "--" {
            end_of_options = true;
            continue;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            if spec.long.contains(&name) && inline.is_none() {
                continue;
            }
            let kind = spec
                .long_valued
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, k)| *k)
                .ok_or_else(|| refuse(&format!("--{name}")))?;
            let value = match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    args.get(i - 1)
                        .map(String::as_str)
                        .ok_or_else(|| missing(arg))?
                }
            };
            pattern_given |= matches!(name, "regexp" | "file");
            check_value(kind, value, index)?;
            continue;
        }
        let letters = &arg[1..];
        for (at, ch) in letters.char_indices() {
            if spec.flags.contains(ch) {
                continue;
            }
            let kind = spec
                .valued
                .iter()
                .find(|(c, _)| *c == ch)
                .map(|(_, k)| *k)
                .ok_or_else(|| refuse(&format!("-{ch}")))?;
            let rest = &letters[at + ch.len_utf8()..];
            let value = if rest.is_empty() {
                i += 1;
                args.get(i - 1)
                    .map(String::as_str)
                    .ok_or_else(|| missing(&format!("-{ch}")))?
            } else {
                rest
            };
            pattern_given |= matches!(ch, 'e' | 'f');
            check_value(kind, value, index)?;
            break;
        }
    }
    for (n, (index, operand)) in operands.into_iter().enumerate() {
        match spec.operands {
            Operands::Text | Operands::AllText => {}
            Operands::DateFormat => {
                if !operand.starts_with('+') {
                    return Err(PolicyError::DateOperand);
                }
            }
            Operands::PatternThenPaths if n == 0 && !pattern_given => {}
            Operands::Paths | Operands::PatternThenPaths => {
                if operand != "-" {
                    check_value(Value::Path, operand, index)?;
                }
            }
        }
    }
    Ok(())
}

fn check_value(kind: Value, value: &str, index: usize) -> Result<(), PolicyError> {
    match kind {
        Value::Text => Ok(()),
        Value::Path => SandboxPath::parse_bytes(value.as_bytes())
            .map_err(|error| PolicyError::Path { index, error }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> CommandPolicy {
        let all: Vec<&str> = known_commands().collect();
        CommandPolicy::resolve(&all, false).unwrap()
    }

    fn check(line: &str) -> Result<(), PolicyError> {
        let argv = crate::words::split(line).unwrap();
        policy().check(&argv).map(|_| ())
    }

    fn refused(line: &str, option: &str) {
        match check(line) {
            Err(PolicyError::OptionNotAllowed { option: o, .. }) => assert_eq!(o, option, "{line}"),
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn programs_are_resolved_to_absolute_paths_at_start() {
        let p = policy();
        let argv = vec!["cat".to_owned()];
        assert!(p.check(&argv).unwrap().is_absolute());
        assert_eq!(
            CommandPolicy::resolve(&["bash"], false).unwrap_err(),
            AllowlistError::Unknown(
                "bash".to_owned(),
                known_commands().collect::<Vec<_>>().join(",")
            )
        );
        assert_eq!(
            CommandPolicy::resolve_in(&["cat"], true, &[Path::new("/nonexistent")]).unwrap_err(),
            AllowlistError::Missing("cat".to_owned())
        );
    }

    #[test]
    fn unlisted_and_path_spelled_commands_are_refused() {
        for line in [
            "sh -c id",
            "/bin/cat x",
            "./cat x",
            "find . -delete",
            "sed -n p",
            "tar x",
            "ln -s / x",
            "env",
            "CAT x",
            "",
        ] {
            assert!(
                matches!(check(line), Err(PolicyError::CommandNotAllowed(_))),
                "{line}"
            );
        }
    }

    #[test]
    fn options_that_run_programs_or_reach_outside_are_refused() {
        refused("sort --compress-program=sh a", "--compress-program");
        refused("sort --compress-prog=sh a", "--compress-prog");
        refused("sort --files0-from=x", "--files0-from");
        refused("sort -T /tmp a", "-T");
        refused("cp -s a b", "-s");
        refused("cp -as a b", "-s");
        refused("cp --symbolic-link a b", "--symbolic-link");
        refused("cp -l a b", "-l");
        refused("diff -l a b", "-l");
        refused("diff --paginate a b", "--paginate");
        refused("date -s 2020-01-01", "-s");
        refused("date --set=2020-01-01", "--set");
        refused("date -f x", "-f");
        refused("sha256sum -c sums", "-c");
        refused("wc --files0-from=list", "--files0-from");
        refused("tail -f log", "-f");
        refused("ls --reverse=x", "--reverse");
        refused("cat a -n --show-nonprinting-x", "--show-nonprinting-x");
    }

    #[test]
    fn operands_and_path_values_obey_the_path_rules_wherever_they_appear() {
        let path = |line: &str, index: usize, error: PathError| {
            assert_eq!(
                check(line),
                Err(PolicyError::Path { index, error }),
                "{line}"
            );
        };
        path("cat ../x", 1, PathError::ParentComponent);
        path("cat a /etc/passwd", 2, PathError::Absolute);
        path("cat -- /etc/passwd", 2, PathError::Absolute);
        path("cp -t /etc a", 1, PathError::Absolute);
        path("cp -t/etc a", 1, PathError::Absolute);
        path("cp -rt/etc a", 1, PathError::Absolute);
        path(
            "mv --target-directory=../up a",
            1,
            PathError::ParentComponent,
        );
        path(
            "mv --target-directory ../up a",
            1,
            PathError::ParentComponent,
        );
        path("sort -o/proc/self/environ a", 1, PathError::Absolute);
        path("grep -f /etc/shadow a", 1, PathError::Absolute);
        path("grep root /etc/passwd", 2, PathError::Absolute);
        path("grep -e root /etc/passwd", 3, PathError::Absolute);
        path("grep /etc/passwd -e x", 1, PathError::Absolute);
        path("ls a//b", 1, PathError::EmptyComponent);
        assert_eq!(check("date 010100002030"), Err(PolicyError::DateOperand));
    }

    #[test]
    fn ordinary_use_is_allowed() {
        for line in [
            "echo hello; rm -rf / && $(reboot)",
            "printf %s\\n a b",
            "seq -5 5",
            "cat -n a - b",
            "head -n 5 a",
            "head -n5 a",
            "sort -k2,2 -t, -o out a",
            "grep -rn /etc/passwd .",
            "grep -e x -e y a",
            "ls -la",
            "cp -r a b",
            "mv -t dir a b",
            "date -u +%s",
            "tr a-z A-Z",
            "base64 -d a",
            "diff -u a b",
            "mkdir -p a/b/c",
            "rm -rf a",
            "cat -- -n",
        ] {
            assert_eq!(check(line), Ok(()), "{line}");
        }
    }

    #[test]
    fn a_missing_option_value_is_refused() {
        assert_eq!(
            check("head -n"),
            Err(PolicyError::MissingValue {
                command: "head",
                option: "-n".to_owned()
            })
        );
    }
}
