//! The command lines the launcher runs: `-c CODE [ARG…]`, `FILE [ARG…]`, `- [ARG…]` or nothing
//! (the program on standard input). Every interpreter option is refused, as bastion-sandbox's
//! policy (`tools/python.rs`) refuses them before the launcher ever starts.

/// Where the program comes from, and the `sys.argv` it sees.
#[derive(Debug, PartialEq, Eq)]
pub enum Program {
    Command { code: String, argv: Vec<String> },
    File { path: String, argv: Vec<String> },
    Stdin { argv: Vec<String> },
}

/// A command line the launcher does not run; the text is what it prints.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("option {0:?} is not available in the sandbox (only -c CODE, FILE or - run)")]
    Option(String),
    #[error("option \"-c\" needs a value")]
    MissingCode,
}

/// Reads argv without argv[0].
pub fn parse(args: Vec<String>) -> Result<Program, ArgsError> {
    let mut args = args.into_iter();
    let Some(first) = args.next() else {
        return Ok(Program::Stdin {
            argv: vec![String::new()],
        });
    };
    let rest: Vec<String> = args.collect();
    match first.as_str() {
        "-" => Ok(Program::Stdin {
            argv: std::iter::once(first).chain(rest).collect(),
        }),
        "-c" => {
            let mut rest = rest.into_iter();
            let code = rest.next().ok_or(ArgsError::MissingCode)?;
            Ok(Program::Command {
                code,
                argv: std::iter::once("-c".to_owned()).chain(rest).collect(),
            })
        }
        word if word.starts_with('-') => Err(ArgsError::Option(word.chars().take(64).collect())),
        _ => Ok(Program::File {
            path: first.clone(),
            argv: std::iter::once(first).chain(rest).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_three_program_sources_and_their_argv() {
        assert_eq!(
            parse(words(&["-c", "print(1)", "-m", "x"])),
            Ok(Program::Command {
                code: "print(1)".to_owned(),
                argv: words(&["-c", "-m", "x"])
            })
        );
        assert_eq!(
            parse(words(&["s.py", "-i"])),
            Ok(Program::File {
                path: "s.py".to_owned(),
                argv: words(&["s.py", "-i"])
            })
        );
        assert_eq!(
            parse(words(&["-", "a"])),
            Ok(Program::Stdin {
                argv: words(&["-", "a"])
            })
        );
        assert_eq!(parse(Vec::new()), Ok(Program::Stdin { argv: words(&[""]) }));
    }

    #[test]
    fn interpreter_options_are_refused() {
        for opt in [
            "-m",
            "-i",
            "-X",
            "-Wd",
            "-cprint(1)",
            "--",
            "--version",
            "-I",
        ] {
            assert_eq!(
                parse(words(&[opt, "x"])),
                Err(ArgsError::Option(opt.to_owned()))
            );
        }
        assert_eq!(parse(words(&["-c"])), Err(ArgsError::MissingCode));
    }
}
