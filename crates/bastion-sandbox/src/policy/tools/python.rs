//! `python3` (the RustPython launcher in toolset/python): a program given as `-c CODE`, a FILE
//! in the run directory, or `-`/nothing for standard input, each followed by the script's own
//! arguments. Every interpreter option is refused: `-m` runs a module found by search, `-i`
//! opens a prompt, `-X`/`-W` change the interpreter, and the launcher refuses them all too.

use crate::commands::{Role, Spec};
use crate::policy::{PolicyError, Word, refuse};

pub(crate) fn classify<'a>(
    spec: &'static Spec,
    args: &'a [String],
) -> Result<Vec<Word<'a>>, PolicyError> {
    let word = |i: usize, role| Word {
        index: i + 1,
        text: args[i].as_str(),
        role,
    };
    let Some(first) = args.first() else {
        return Ok(Vec::new());
    };
    // What follows the program is the script's sys.argv: text the launcher never opens.
    let script_args = |from: usize| (from..args.len()).map(move |i| word(i, Role::Text));
    match first.as_str() {
        // Standard input; the path rules skip "-".
        "-" => Ok(std::iter::once(word(0, Role::Path))
            .chain(script_args(1))
            .collect()),
        "-c" => {
            if args.len() < 2 {
                return Err(PolicyError::MissingValue {
                    command: spec.name,
                    option: "-c".to_owned(),
                });
            }
            Ok([word(0, Role::Option), word(1, Role::Text)]
                .into_iter()
                .chain(script_args(2))
                .collect())
        }
        option if option.starts_with('-') => Err(refuse(spec, option)),
        _ => Ok(std::iter::once(word(0, Role::Path))
            .chain(script_args(1))
            .collect()),
    }
}

#[cfg(test)]
mod tests {
    use crate::commands::SPECS;
    use crate::path::PathError;
    use crate::policy::PolicyError;

    fn check(args: &[&str]) -> Result<Vec<(usize, String, crate::Role)>, PolicyError> {
        let spec = SPECS.iter().find(|s| s.name == "python3").unwrap();
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let words = super::classify(spec, &args)?;
        for w in &words {
            if w.role == crate::Role::Path && w.text != "-" {
                crate::SandboxPath::parse_bytes(w.text.as_bytes()).map_err(|error| {
                    PolicyError::Path {
                        index: w.index,
                        error,
                    }
                })?;
            }
        }
        Ok(words
            .into_iter()
            .map(|w| (w.index, w.text.to_owned(), w.role))
            .collect())
    }

    #[test]
    fn a_program_comes_from_c_a_file_or_standard_input() {
        use crate::Role::{Option, Path, Text};
        let own = |v: &[(usize, &str, crate::Role)]| {
            v.iter()
                .map(|(i, t, r)| (*i, (*t).to_owned(), *r))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            check(&["-c", "import sys", "-m", "/etc/passwd"]),
            Ok(own(&[
                (1, "-c", Option),
                (2, "import sys", Text),
                (3, "-m", Text),
                (4, "/etc/passwd", Text)
            ]))
        );
        assert_eq!(
            check(&["job.py", "-i", "x"]),
            Ok(own(&[(1, "job.py", Path), (2, "-i", Text), (3, "x", Text)]))
        );
        assert_eq!(
            check(&["-", "a"]),
            Ok(own(&[(1, "-", Path), (2, "a", Text)]))
        );
        assert_eq!(check(&[]), Ok(Vec::new()));
    }

    #[test]
    fn interpreter_options_and_outside_files_are_refused() {
        for option in [
            "-m",
            "-i",
            "-X",
            "-W",
            "-Wd",
            "-I",
            "-cprint(1)",
            "--",
            "--version",
        ] {
            assert_eq!(
                check(&[option, "x"]),
                Err(PolicyError::OptionNotAllowed {
                    command: "python3",
                    option: option.to_owned()
                }),
                "{option}"
            );
        }
        assert_eq!(
            check(&["-c"]),
            Err(PolicyError::MissingValue {
                command: "python3",
                option: "-c".to_owned()
            })
        );
        assert_eq!(
            check(&["/etc/passwd"]),
            Err(PolicyError::Path {
                index: 1,
                error: PathError::Absolute
            })
        );
        assert_eq!(
            check(&["../x.py"]),
            Err(PolicyError::Path {
                index: 1,
                error: PathError::ParentComponent
            })
        );
    }
}
