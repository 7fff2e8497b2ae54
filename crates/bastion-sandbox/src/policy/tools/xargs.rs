//! xargs' argument reader: the toolset's own xargs (`toolset/xargs`) options, then the command
//! it runs, whose argv is read by that command's own policy entry.
//!
//! Our xargs reads, before the command: `-0`, `-r`, `--` as exact words and `-d`, `-n`, `-L`
//! with the value attached or in the next word (whatever that word is); the first other word
//! is the command, and a word starting with `-` is refused by the program. At run time it
//! appends the standard-input items, each of which it refuses unless it passes the path rules
//! and does not start with `-`. That makes appended items safe operands for a command that
//! takes files, but not for one whose operand is a script or program: those are refused as
//! sub-commands here. Whether the sub-command is enabled in this deployment is for
//! `CommandPolicy::check`, which knows the allowed set (see [`sub_command`]).

use crate::commands::{Role, SPECS, Spec};
use crate::policy::{PolicyError, Word, truncate};

/// Commands xargs must not run, and why: an appended item would be their script or program
/// (or, for date, the time to set), and xargs under xargs would re-read checked items.
const REFUSED_SUB_COMMANDS: &[(&str, &str)] = &[
    ("xargs", "xargs may not run xargs"),
    ("sed", "an appended item would be a sed script"),
    ("awk", "an appended item would be an awk program"),
    ("jq", "an appended item would be a jq filter"),
    ("python3", "an appended item would be a Python script"),
    ("find", "appended items would be a find expression"),
    ("date", "an appended item would set the clock"),
];

/// Where the command starts in `args` (argv without argv[0]): the index of its name, or
/// `args.len()` when none is given (our xargs then runs `echo`).
fn command_start<'a>(
    spec: &Spec,
    args: &'a [String],
) -> Result<(usize, Vec<Word<'a>>), PolicyError> {
    let mut words = Vec::new();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let option = |i: usize| Word {
            index: i + 1,
            text: args[i].as_str(),
            role: Role::Option,
        };
        match arg.as_str() {
            "--" => {
                words.push(option(i));
                return Ok((i + 1, words));
            }
            "-0" | "-r" => words.push(option(i)),
            a if ["-d", "-n", "-L"].iter().any(|o| a.starts_with(o)) => {
                words.push(option(i));
                if a.len() > 2 {
                    words.push(Word {
                        index: i + 1,
                        text: &a[2..],
                        role: Role::Text,
                    });
                } else {
                    let value = args.get(i + 1).ok_or_else(|| PolicyError::MissingValue {
                        command: spec.name,
                        option: truncate(a),
                    })?;
                    i += 1;
                    words.push(Word {
                        index: i + 1,
                        text: value,
                        role: Role::Text,
                    });
                }
            }
            a if a.starts_with('-') => return Err(crate::policy::refuse(spec, a)),
            _ => return Ok((i, words)),
        }
        i += 1;
    }
    Ok((i, words))
}

/// The command xargs will run, as an argv of its own (`["echo"]` when none is named), for
/// `CommandPolicy::check` to hold against the allowed set. `None` for any other command.
pub(crate) fn sub_command(spec: &Spec, argv: &[String]) -> Option<Vec<String>> {
    if spec.name != "xargs" {
        return None;
    }
    let args = argv.get(1..).unwrap_or_default();
    let (start, _) = command_start(spec, args).ok()?;
    match args.get(start..) {
        Some(sub) if !sub.is_empty() => Some(sub.to_vec()),
        _ => Some(vec!["echo".to_owned()]),
    }
}

/// The `Spec::custom` reader of `xargs`: its own options, the command's name (text: it is
/// looked up in the toolset, never opened) and the command's arguments as that command's own
/// reader sees them, numbered as words of the whole argv.
pub(crate) fn classify<'a>(
    spec: &'static Spec,
    args: &'a [String],
) -> Result<Vec<Word<'a>>, PolicyError> {
    let (start, mut words) = command_start(spec, args)?;
    let Some(name) = args.get(start) else {
        return Ok(words);
    };
    if let Some((_, reason)) = REFUSED_SUB_COMMANDS.iter().find(|(n, _)| *n == name) {
        return Err(PolicyError::Refused {
            command: "xargs",
            reason: format!("{name} is refused as a command: {reason}"),
        });
    }
    let sub = SPECS
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| PolicyError::CommandNotAllowed(truncate(name)))?;
    words.push(Word {
        index: start + 1,
        text: name,
        role: Role::Text,
    });
    let sub_args = &args[start + 1..];
    let sub_words = crate::policy::classify(sub, sub_args)?;
    words.extend(sub_words.into_iter().map(|w| Word {
        index: w.index + start + 1,
        ..w
    }));
    Ok(words)
}

#[cfg(test)]
mod tests {
    use crate::commands::known_commands;
    use crate::path::PathError;
    use crate::policy::{CommandPolicy, PolicyError};
    use crate::toolset::{Toolset, built_tools_dir};

    fn policy(names: &[&str]) -> CommandPolicy {
        let toolset = Toolset::open(&built_tools_dir()).unwrap();
        CommandPolicy::resolve(names, &toolset).unwrap()
    }

    fn check(line: &str) -> Result<(), PolicyError> {
        let all: Vec<&str> = known_commands().collect();
        let argv = crate::words::split(line).unwrap();
        policy(&all).check(&argv).map(|_| ())
    }

    fn refused_command(line: &str, reason: &str) {
        assert_eq!(
            check(line),
            Err(PolicyError::Refused {
                command: "xargs",
                reason: reason.to_owned()
            }),
            "{line}"
        );
    }

    #[test]
    fn xargs_options_and_an_allowed_command_pass() {
        for line in [
            "xargs",
            "xargs cat",
            "xargs -0 wc -l",
            "xargs -r -n 2 cat -n",
            "xargs -n2 -L 1 -d , head -n 1",
            "xargs -d '\\n' -- sort -r",
            "xargs -- cat",
            "xargs -d -n cat",
            "xargs cp -t dir",
            "xargs ls -la",
            "xargs echo -n",
        ] {
            assert_eq!(check(line), Ok(()), "{line}");
        }
    }

    #[test]
    fn commands_whose_operand_is_a_script_or_program_are_refused() {
        let script = "is refused as a command: an appended item would be";
        refused_command(
            "xargs xargs cat",
            "xargs is refused as a command: xargs may not run xargs",
        );
        refused_command(
            "xargs -0 -- xargs",
            "xargs is refused as a command: xargs may not run xargs",
        );
        refused_command("xargs sed -n", &format!("sed {script} a sed script"));
        refused_command("xargs awk", &format!("awk {script} an awk program"));
        refused_command("xargs jq", &format!("jq {script} a jq filter"));
        refused_command(
            "xargs python3",
            &format!("python3 {script} a Python script"),
        );
        refused_command(
            "xargs find .",
            "find is refused as a command: appended items would be a find expression",
        );
        refused_command(
            "xargs date",
            "date is refused as a command: an appended item would set the clock",
        );
    }

    #[test]
    fn the_command_must_be_one_this_deployment_allows() {
        for (line, name) in [
            ("xargs sh -c id", "sh"),
            ("xargs /bin/cat", "/bin/cat"),
            ("xargs -- -n", "-n"),
            ("xargs coreutils cat", "coreutils"),
        ] {
            assert_eq!(
                check(line),
                Err(PolicyError::CommandNotAllowed(name.to_owned())),
                "{line}"
            );
        }
        // Known to the toolset but not enabled here: the allowed set decides.
        let argv: Vec<String> = ["xargs", "rm", "-rf"].map(str::to_owned).to_vec();
        assert_eq!(
            policy(&["xargs", "cat", "echo"]).check(&argv),
            Err(PolicyError::CommandNotAllowed("rm".to_owned()))
        );
        let bare = vec!["xargs".to_owned()];
        assert_eq!(
            policy(&["xargs", "cat"]).check(&bare),
            Err(PolicyError::CommandNotAllowed("echo".to_owned()))
        );
        let cat: Vec<String> = ["xargs", "-0", "cat"].map(str::to_owned).to_vec();
        assert!(policy(&["xargs", "cat"]).check(&cat).is_ok());
    }

    #[test]
    fn the_command_s_own_options_and_paths_are_checked_in_place() {
        assert_eq!(
            check("xargs sort --compress-program=sh"),
            Err(PolicyError::OptionNotAllowed {
                command: "sort",
                option: "--compress-program".to_owned()
            })
        );
        assert_eq!(
            check("xargs -n 1 cat /etc/passwd"),
            Err(PolicyError::Path {
                index: 4,
                error: PathError::Absolute
            })
        );
        assert_eq!(
            check("xargs cp -t ../up"),
            Err(PolicyError::Path {
                index: 3,
                error: PathError::ParentComponent
            })
        );
        // An option left without its value would take the first item as that value.
        assert_eq!(
            check("xargs head -n"),
            Err(PolicyError::MissingValue {
                command: "head",
                option: "-n".to_owned()
            })
        );
        assert_eq!(
            check("xargs -r sort -o"),
            Err(PolicyError::MissingValue {
                command: "sort",
                option: "-o".to_owned()
            })
        );
    }

    #[test]
    fn xargs_own_options_off_the_list_are_refused() {
        for (line, option) in [
            ("xargs -I {} cat {}", "-I"),
            ("xargs -0r cat", "-0r"),
            ("xargs -p cat", "-p"),
            ("xargs --null cat", "--null"),
            ("xargs -a list cat", "-a"),
            ("xargs - cat", "-"),
        ] {
            assert_eq!(
                check(line),
                Err(PolicyError::OptionNotAllowed {
                    command: "xargs",
                    option: option.to_owned()
                }),
                "{line}"
            );
        }
        assert_eq!(
            check("xargs -n"),
            Err(PolicyError::MissingValue {
                command: "xargs",
                option: "-n".to_owned()
            })
        );
    }
}
