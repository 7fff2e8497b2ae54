//! The command allowlist and the argument check.
//!
//! Every option must be on its command's list (`commands.rs`), spelled exactly (the toolset's
//! parsers, like GNU's, accept unique prefixes of long options, so a prefix of a refused option
//! must not slip through), and every operand or option value that names a file must pass the
//! sandbox path rules. Words are read the getopt way the toolset's programs read them (options
//! anywhere until `--`, clustered short flags, a required value attached or in the next word,
//! an optional value only attached or after `=`), so the check sees each word as the program
//! will; `tests/differential.rs` holds the table to the programs.

use std::path::{Path, PathBuf};

use crate::commands::{Operands, Reader, Role, SPECS, Spec, known_commands};
use crate::path::{PathError, SandboxPath};
use crate::toolset::Toolset;

mod tools;

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
    /// A command's own reader refused a script, expression or program (see `Spec::custom`).
    #[error("{command}: {reason}")]
    Refused {
        command: &'static str,
        reason: String,
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
    /// The toolset directory every program was resolved in.
    dir: PathBuf,
}

/// A problem building the allowlist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowlistError {
    #[error("{0:?} is not a known command; known: {1}")]
    Unknown(String, String),
    #[error("{0:?} is not in the toolset at {1:?} (scripts/toolset builds it)")]
    Missing(String, PathBuf),
}

impl CommandPolicy {
    /// Resolves `names` in the toolset: every command must be there (exec never falls back to
    /// the host's programs, whose parsing the option table does not describe).
    pub fn resolve(names: &[&str], toolset: &Toolset) -> Result<Self, AllowlistError> {
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
            let program = toolset.program(name).ok_or_else(|| {
                AllowlistError::Missing((*name).to_owned(), toolset.dir().to_path_buf())
            })?;
            allowed.push(Allowed { spec, program });
        }
        Ok(Self {
            allowed,
            dir: toolset.dir().to_path_buf(),
        })
    }

    /// Where the programs live: the runner lets children execute from there.
    pub fn programs_dir(&self) -> &Path {
        &self.dir
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.allowed.iter().map(|a| a.spec.name).collect()
    }

    fn allowed(&self, argv: &[String]) -> Result<&Allowed, PolicyError> {
        let name = argv.first().map(String::as_str).unwrap_or_default();
        self.allowed
            .iter()
            .find(|a| a.spec.name == name)
            .ok_or_else(|| PolicyError::CommandNotAllowed(truncate(name)))
    }

    /// Checks `argv` (argv[0] is the bare command name) and returns the program to run.
    pub fn check(&self, argv: &[String]) -> Result<&Path, PolicyError> {
        let allowed = self.allowed(argv)?;
        check_args(allowed.spec, argv.get(1..).unwrap_or_default())?;
        // xargs runs a command of its own: it must be one this deployment allows as well.
        if let Some(sub) = tools::xargs::sub_command(allowed.spec, argv) {
            self.allowed(&sub)?;
        }
        Ok(&allowed.program)
    }

    /// How the policy reads each word of `argv` (options refused as in [`Self::check`], path
    /// rules not applied): what the differential test compares with the real programs.
    pub fn classify<'a>(&self, argv: &'a [String]) -> Result<Vec<Word<'a>>, PolicyError> {
        classify(self.allowed(argv)?.spec, argv.get(1..).unwrap_or_default())
    }
}

/// Refusals name what was refused, but never echo a whole 4 KiB argument back.
pub(crate) fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// One word of an argv (or the value inside it) as the policy reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word<'a> {
    /// The argument's position in argv (argv[0] is the command).
    pub index: usize,
    /// The whole word, or the value part of `--name=value` / `-xvalue`.
    pub text: &'a str,
    pub role: Role,
}

/// Reads `args` (argv without argv[0]) with the command's own reader if it has one, else the
/// getopt way. Path rules are not applied here.
fn classify<'a>(spec: &'static Spec, args: &'a [String]) -> Result<Vec<Word<'a>>, PolicyError> {
    match spec.custom {
        Some(Reader::Grep) => tools::grep::classify(spec, args),
        Some(Reader::Sed) => tools::sed::classify(spec, args),
        Some(Reader::Jq) => tools::jq::classify(spec, args),
        Some(Reader::Awk) => tools::awk::classify(spec, args),
        Some(Reader::Find) => tools::find::classify(spec, args),
        Some(Reader::Xargs) => tools::xargs::classify(spec, args),
        Some(Reader::Python) => tools::python::classify(spec, args),
        None => classify_getopt(spec, args),
    }
}

/// Reads `args` (argv without argv[0]) as GNU getopt_long would, refusing options off the
/// list; returns every word and inline value with its role. Path rules are not applied here.
pub(crate) fn classify_getopt<'a>(
    spec: &'static Spec,
    args: &'a [String],
) -> Result<Vec<Word<'a>>, PolicyError> {
    if spec.operands == Operands::AllText {
        return Ok(args
            .iter()
            .enumerate()
            .map(|(i, a)| Word {
                index: i + 1,
                text: a,
                role: Role::Text,
            })
            .collect());
    }
    let mut words: Vec<Word<'a>> = Vec::new();
    let mut operands: Vec<Word<'a>> = Vec::new();
    let mut end_of_options = false;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let index = i + 1;
        i += 1;
        let word = |text, role| Word { index, text, role };
        if end_of_options || arg == "-" || !arg.starts_with('-') {
            operands.push(word(arg, Role::Path));
            continue;
        }
        words.push(word(arg, Role::Option));
        if arg == "--" {
            end_of_options = true;
            continue;
        }
        let value = if let Some(long) = arg.strip_prefix("--") {
            long_option(spec, long)?
        } else {
            short_options(spec, &arg[1..])?
        };
        let Some((role, inline)) = value else {
            continue;
        };
        match inline {
            Some(text) => words.push(word(text, role)),
            None => {
                let next = args.get(i).ok_or_else(|| PolicyError::MissingValue {
                    command: spec.name,
                    option: truncate(arg),
                })?;
                words.push(Word {
                    index: index + 1,
                    text: next,
                    role,
                });
                i += 1;
            }
        }
    }
    for mut w in operands {
        w.role = match spec.operands {
            Operands::Text | Operands::AllText | Operands::DateFormat => Role::Text,
            Operands::Paths => Role::Path,
        };
        if spec.operands == Operands::DateFormat && !w.text.starts_with('+') {
            return Err(PolicyError::DateOperand);
        }
        words.push(w);
    }
    words.sort_by_key(|w| w.index);
    Ok(words)
}

/// A value an option takes: its role and the inline text if the word carries it (`None`: the
/// next word is the value).
type Taken<'a> = Option<(Role, Option<&'a str>)>;

pub(crate) fn refuse(spec: &Spec, option: &str) -> PolicyError {
    PolicyError::OptionNotAllowed {
        command: spec.name,
        option: truncate(option),
    }
}

/// `--name`, `--name=value`: a flag takes no `=value`, an optional value only an `=value`, a
/// required one the `=value` or else the next word.
fn long_option<'a>(spec: &'static Spec, long: &'a str) -> Result<Taken<'a>, PolicyError> {
    let (name, inline) = match long.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (long, None),
    };
    if let Some(n) = spec.long.iter().find(|n| **n == name) {
        return match inline {
            None => Ok(None),
            Some(_) => Err(refuse(spec, &format!("--{n}"))),
        };
    }
    if let Some((_, role)) = spec.long_optional.iter().find(|(n, _)| *n == name) {
        return Ok(inline.map(|v| (*role, Some(v))));
    }
    if let Some((_, role)) = spec.long_valued.iter().find(|(n, _)| *n == name) {
        return Ok(Some((*role, inline)));
    }
    Err(refuse(spec, &format!("--{name}")))
}

/// A cluster of short options (`-rn`, `-n5`, `-Ihours`): flags until one that takes a value,
/// which takes the rest of the word (or, when required and nothing follows, the next word).
fn short_options<'a>(spec: &'static Spec, letters: &'a str) -> Result<Taken<'a>, PolicyError> {
    for (at, ch) in letters.char_indices() {
        if spec.flags.contains(ch) {
            continue;
        }
        let rest = &letters[at + ch.len_utf8()..];
        let attached = (!rest.is_empty()).then_some(rest);
        if let Some((_, role)) = spec.optional.iter().find(|(c, _)| *c == ch) {
            return Ok(attached.map(|v| (*role, Some(v))));
        }
        if let Some((_, role)) = spec.valued.iter().find(|(c, _)| *c == ch) {
            return Ok(Some((*role, attached)));
        }
        return Err(refuse(spec, &format!("-{ch}")));
    }
    Ok(None)
}

fn check_args(spec: &'static Spec, args: &[String]) -> Result<(), PolicyError> {
    for w in classify(spec, args)? {
        if w.role == Role::Path && w.text != "-" {
            SandboxPath::parse_bytes(w.text.as_bytes()).map_err(|error| PolicyError::Path {
                index: w.index,
                error,
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> CommandPolicy {
        let all: Vec<&str> = known_commands().collect();
        let toolset = Toolset::open(&crate::toolset::built_tools_dir()).unwrap();
        CommandPolicy::resolve(&all, &toolset).unwrap()
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
    fn programs_are_resolved_in_the_toolset_at_start() {
        let p = policy();
        let argv = vec!["cat".to_owned()];
        let tools = crate::toolset::built_tools_dir();
        assert_eq!(p.check(&argv).unwrap(), tools.join("cat"));
        let argv = vec!["diff".to_owned()];
        assert_eq!(p.check(&argv).unwrap(), tools.join("diff"));
        let toolset = Toolset::open(&tools).unwrap();
        assert_eq!(
            CommandPolicy::resolve(&["bash"], &toolset).unwrap_err(),
            AllowlistError::Unknown(
                "bash".to_owned(),
                known_commands().collect::<Vec<_>>().join(",")
            )
        );
        // A toolset without the binary a command needs stops start-up.
        let empty = std::env::temp_dir().join(format!("bastion-no-tools-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        std::fs::write(empty.join(crate::toolset::MANIFEST), "cat coreutils\n").unwrap();
        let toolset = Toolset::open(&empty).unwrap();
        assert_eq!(
            CommandPolicy::resolve(&["cat"], &toolset).unwrap_err(),
            AllowlistError::Missing("cat".to_owned(), empty.clone())
        );
        std::fs::remove_dir_all(&empty).unwrap();
    }

    #[test]
    fn unlisted_and_path_spelled_commands_are_refused() {
        for line in [
            "sh -c id",
            "/bin/cat x",
            "./cat x",
            "perl -e 1",
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
        path("cp -t /etc a", 2, PathError::Absolute);
        path("cp -t/etc a", 1, PathError::Absolute);
        path("cp -rt/etc a", 1, PathError::Absolute);
        path(
            "mv --target-directory=../up a",
            1,
            PathError::ParentComponent,
        );
        path(
            "mv --target-directory ../up a",
            2,
            PathError::ParentComponent,
        );
        path("sort -o/proc/self/environ a", 1, PathError::Absolute);
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
    fn the_issue_diff_exploits_are_refused_by_the_path_rules() {
        // GNU diff takes --unified's number only after `=`: the next word is a file.
        let argv = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            policy().check(&argv(&["diff", "--unified", "../../dev-secrets.env", "-"])),
            Err(PolicyError::Path {
                index: 2,
                error: PathError::ParentComponent
            })
        );
        // The toolset's diff compares two files: -r and -N are not options it has.
        assert_eq!(
            policy().check(&argv(&[
                "diff",
                "-r",
                "-N",
                "--unified",
                "..",
                "--unified",
                "x"
            ])),
            Err(PolicyError::OptionNotAllowed {
                command: "diff",
                option: "-r".to_owned()
            })
        );
        assert_eq!(
            policy().check(&argv(&["diff", "--unified", "..", "--unified", "x"])),
            Err(PolicyError::Path {
                index: 2,
                error: PathError::ParentComponent
            })
        );
    }

    #[test]
    fn an_optional_option_value_is_taken_only_when_attached() {
        let path = |line: &str, index: usize| {
            assert_eq!(
                check(line),
                Err(PolicyError::Path {
                    index,
                    error: PathError::ParentComponent
                }),
                "{line}"
            );
        };
        path("diff --context ../a b", 2);
        path("diff -u --unified ../a b", 3);
        path("ls --color ..", 2);
        path("ls --classify ../x", 2);
        path("sort --check ../a", 2);
        path("uniq --group ../a", 2);
        path("uniq --all-repeated ../a", 2);
        path("rm --interactive ../a", 2);
        assert_eq!(check("date -I hours"), Err(PolicyError::DateOperand));
        for line in [
            "diff --unified=5 a b",
            "diff --context=1 -s a b",
            "diff -U 5 a b",
            "diff -C5 a b",
            "ls --color=never --classify=always d",
            "sort --check=quiet a",
            "uniq --group=both a",
            "rm --interactive=never a",
            "date -Ihours",
            "date --iso-8601=seconds -u",
            "date --iso-8601",
        ] {
            assert_eq!(check(line), Ok(()), "{line}");
        }
        refused("cat --number=3 a", "--number");
        refused("diff --color ../a b", "--color");
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
