//! find's argument reader: start paths, then an expression of allowed tests, actions and
//! operators only, read the way uutils findutils 0.11.0 reads them.
//!
//! uutils find takes, in this order: the leading options `-H -L -P -O0..-O3 --` (each an exact
//! word), then start paths (every word that is `-` or does not start with `-`, up to `!` or
//! `(`; `.` when there are none), then the expression, where each predicate is an exact word
//! (no prefixes) and one that takes a value takes the next word whatever it is (`-name (` is a
//! pattern). Start paths and `-newer`'s file are `Path` words, so the policy's path rules keep
//! `find /` and `find ../..` out; everything that runs a program, deletes, writes a file of its
//! own naming, reads start paths from a file, or follows symbolic links is refused by name.

use crate::commands::{Role, Spec};
use crate::policy::{PolicyError, Word, truncate};

/// The predicates and operators allowed, and what the word after each one is (`None`: the
/// predicate takes no value).
const ALLOWED: &[(&str, Option<Role>)] = &[
    ("-name", Some(Role::Text)),
    ("-iname", Some(Role::Text)),
    ("-path", Some(Role::Text)),
    ("-ipath", Some(Role::Text)),
    ("-type", Some(Role::Text)),
    ("-maxdepth", Some(Role::Text)),
    ("-mindepth", Some(Role::Text)),
    ("-size", Some(Role::Text)),
    ("-newer", Some(Role::Path)),
    ("-empty", None),
    ("-print", None),
    ("-print0", None),
    ("!", None),
    ("-not", None),
    ("-a", None),
    ("-and", None),
    ("-o", None),
    ("-or", None),
    ("(", None),
    (")", None),
];

const FOLLOWS_LINKS: &str =
    "it follows symbolic links: a link out of the run directory would be walked";
const RUNS_PROGRAMS: &str = "it runs a program";
const WRITES_FILES: &str = "it writes to a file it names";

/// Refused on purpose, each with the reason given back to the caller. Any other word is
/// refused too, as not on the list.
const REFUSED: &[(&str, &str)] = &[
    ("-H", FOLLOWS_LINKS),
    ("-L", FOLLOWS_LINKS),
    ("-follow", FOLLOWS_LINKS),
    ("-exec", RUNS_PROGRAMS),
    ("-execdir", RUNS_PROGRAMS),
    ("-ok", RUNS_PROGRAMS),
    ("-okdir", RUNS_PROGRAMS),
    ("-delete", "it deletes files"),
    ("-fprint", WRITES_FILES),
    ("-fprint0", WRITES_FILES),
    ("-fprintf", WRITES_FILES),
    ("-fls", WRITES_FILES),
    // It writes only to standard output, but %Y stats through symbolic links, %F reads the
    // host's mount table and %u/%g its user database: -print and -print0 give the names.
    (
        "-printf",
        "its %Y, %F, %u and %g directives follow links and read host files",
    ),
    (
        "-files0-from",
        "it reads start paths from a file, past the path rules",
    ),
];

fn refused(word: &str) -> PolicyError {
    let reason = match REFUSED.iter().find(|(w, _)| *w == word) {
        Some((w, why)) => format!("{w} is refused: {why}"),
        None => format!(
            "{:?} is not an allowed option or expression",
            truncate(word)
        ),
    };
    PolicyError::Refused {
        command: "find",
        reason,
    }
}

/// The `Spec::custom` reader of `find`.
pub(crate) fn classify<'a>(
    spec: &'static Spec,
    args: &'a [String],
) -> Result<Vec<Word<'a>>, PolicyError> {
    let mut words = Vec::new();
    let word = |i: usize, role| Word {
        index: i + 1,
        text: args[i].as_str(),
        role,
    };
    let mut i = 0;
    // Leading options. -O0..-O3 (the real find's optimiser levels) are left off: as expression
    // words they are refused.
    while let Some(arg) = args.get(i) {
        match arg.as_str() {
            "-P" => words.push(word(i, Role::Option)),
            "--" => {
                words.push(word(i, Role::Option));
                i += 1;
                break;
            }
            "-H" | "-L" => return Err(refused(arg)),
            _ => break,
        }
        i += 1;
    }
    while let Some(arg) = args.get(i) {
        if (arg != "-" && arg.starts_with('-')) || arg == "!" || arg == "(" {
            break;
        }
        words.push(word(i, Role::Path));
        i += 1;
    }
    while let Some(arg) = args.get(i) {
        let Some((_, value)) = ALLOWED.iter().find(|(w, _)| *w == arg) else {
            return Err(refused(arg));
        };
        words.push(word(i, Role::Option));
        if let Some(role) = value {
            if i + 1 >= args.len() {
                return Err(PolicyError::MissingValue {
                    command: spec.name,
                    option: truncate(arg),
                });
            }
            i += 1;
            words.push(word(i, *role));
        }
        i += 1;
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use crate::commands::known_commands;
    use crate::path::PathError;
    use crate::policy::{CommandPolicy, PolicyError};
    use crate::toolset::{Toolset, built_tools_dir};

    fn check(line: &str) -> Result<(), PolicyError> {
        let all: Vec<&str> = known_commands().collect();
        let toolset = Toolset::open(&built_tools_dir()).unwrap();
        let policy = CommandPolicy::resolve(&all, &toolset).unwrap();
        let argv = crate::words::split(line).unwrap();
        policy.check(&argv).map(|_| ())
    }

    fn refused(line: &str, reason: &str) {
        assert_eq!(
            check(line),
            Err(PolicyError::Refused {
                command: "find",
                reason: reason.to_owned()
            }),
            "{line}"
        );
    }

    #[test]
    fn every_allowed_form_passes() {
        for line in [
            "find",
            "find .",
            "find a b -name '*.txt'",
            "find -name '*.rs' -print",
            "find . -iname 'READ*' -o -path './src/*' -print0",
            "find . -ipath '*/TESTS/*' -a -type f",
            "find . -type d -maxdepth 2 -mindepth 1",
            "find . -type f,l",
            "find . -size +10k -and -size -2M",
            "find . -newer a -empty",
            "find . ! -name x -not -name y",
            "find . '(' -name a -or -name b ')' -print",
            "find ! -empty",
            "find '(' -empty ')'",
            "find -P . -name x",
            "find -- . -name x",
            "find - -name x",
            "find . -name '('",
            "find . -name -exec",
        ] {
            assert_eq!(check(line), Ok(()), "{line}");
        }
    }

    #[test]
    fn what_runs_deletes_writes_or_follows_links_is_refused_with_its_reason() {
        let runs = "is refused: it runs a program";
        let writes = "is refused: it writes to a file it names";
        let follows = "is refused: it follows symbolic links: a link out of the run directory \
                       would be walked";
        refused("find . -exec cat {} ;", &format!("-exec {runs}"));
        refused("find . -execdir cat {} +", &format!("-execdir {runs}"));
        refused("find . -ok rm {} ;", &format!("-ok {runs}"));
        refused("find . -okdir rm {} ;", &format!("-okdir {runs}"));
        refused("find . -delete", "-delete is refused: it deletes files");
        refused(
            "find . -name x -delete",
            "-delete is refused: it deletes files",
        );
        refused("find . -fprint out", &format!("-fprint {writes}"));
        refused("find . -fprint0 out", &format!("-fprint0 {writes}"));
        refused("find . -fprintf out %p", &format!("-fprintf {writes}"));
        refused("find . -fls out", &format!("-fls {writes}"));
        refused(
            "find . -printf %p",
            "-printf is refused: its %Y, %F, %u and %g directives follow links and read host \
             files",
        );
        refused(
            "find -files0-from list",
            "-files0-from is refused: it reads start paths from a file, past the path rules",
        );
        refused("find -L .", &format!("-L {follows}"));
        refused("find -H . -name x", &format!("-H {follows}"));
        refused("find -P -L .", &format!("-L {follows}"));
        refused("find . -follow", &format!("-follow {follows}"));
        // After the start paths -L is no leading option: it is still refused.
        refused("find . -L", &format!("-L {follows}"));
    }

    #[test]
    fn anything_off_the_list_is_refused() {
        let not = |w: &str| format!("{w:?} is not an allowed option or expression");
        refused("find . -ls", &not("-ls"));
        refused("find . -regex x", &not("-regex"));
        refused("find . -samefile a", &not("-samefile"));
        refused("find . -anewer a", &not("-anewer"));
        refused("find . -newermt 2020-01-01", &not("-newermt"));
        refused("find . -nam x", &not("-nam"));
        refused("find . -O3", &not("-O3"));
        refused("find . -name x extra", &not("extra"));
        refused("find . -print , -print", &not(","));
        refused("find --help", &not("--help"));
    }

    #[test]
    fn start_paths_and_newer_files_obey_the_path_rules() {
        let path = |line: &str, index: usize, error: PathError| {
            assert_eq!(
                check(line),
                Err(PolicyError::Path { index, error }),
                "{line}"
            );
        };
        path("find /", 1, PathError::Absolute);
        path("find . /etc -name x", 2, PathError::Absolute);
        path("find ..", 1, PathError::ParentComponent);
        path("find a/../.. -print", 1, PathError::ParentComponent);
        path("find -- /", 2, PathError::Absolute);
        path("find . -newer /etc/passwd", 3, PathError::Absolute);
        path("find . -newer ../x", 3, PathError::ParentComponent);
        // uutils reads `)` before any expression as a start path, a relative name.
        assert_eq!(check("find ) -print"), Ok(()));
    }

    #[test]
    fn a_predicate_without_its_value_is_refused() {
        for (line, option) in [
            ("find . -name", "-name"),
            ("find . -type", "-type"),
            ("find . -newer", "-newer"),
            ("find -maxdepth", "-maxdepth"),
        ] {
            assert_eq!(
                check(line),
                Err(PolicyError::MissingValue {
                    command: "find",
                    option: option.to_owned()
                }),
                "{line}"
            );
        }
    }
}
