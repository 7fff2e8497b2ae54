//! jq's argument reader (the toolset's jq is our front end over jaq, `toolset/jq`): `-r -c -s
//! -n -e` alone or clustered (or `--raw-output`, `--compact-output`, `--slurp`, `--null-input`,
//! `--exit-status`), `--arg NAME VALUE` and `--argjson NAME JSON` (two words each, text),
//! `--`, then the filter (text) and input files (paths), the way that front end reads them.
//! Anything else (`-L`, `--rawfile`, `--slurpfile`, `--from-file`…) is refused. The filter
//! needs no scan: the program has no `env`, `$ENV` or module loader, so a filter can read
//! nothing but its input and arguments.

use crate::commands::{Role, Spec};
use crate::policy::{PolicyError, Word, refuse, truncate};

const FLAGS: &str = "rcsne";
const LONG: &[&str] = &[
    "raw-output",
    "compact-output",
    "slurp",
    "null-input",
    "exit-status",
];

/// The reader `SPECS` names for jq (see [`crate::commands::Spec::custom`]).
pub(crate) fn classify<'a>(
    spec: &'static Spec,
    args: &'a [String],
) -> Result<Vec<Word<'a>>, PolicyError> {
    let mut words = Vec::new();
    let mut filter_seen = false;
    let mut only_operands = false;
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let index = i + 1;
        i += 1;
        let word = |index, text, role| Word { index, text, role };
        if only_operands || arg == "-" || !arg.starts_with('-') {
            let role = if filter_seen { Role::Path } else { Role::Text };
            filter_seen = true;
            words.push(word(index, arg.as_str(), role));
            continue;
        }
        words.push(word(index, arg.as_str(), Role::Option));
        match arg.as_str() {
            "--" => only_operands = true,
            "--arg" | "--argjson" => {
                let (Some(name), Some(value)) = (args.get(i), args.get(i + 1)) else {
                    return Err(PolicyError::MissingValue {
                        command: spec.name,
                        option: truncate(arg),
                    });
                };
                words.push(word(index + 1, name.as_str(), Role::Text));
                words.push(word(index + 2, value.as_str(), Role::Text));
                i += 2;
            }
            long if long.starts_with("--") => {
                if !LONG.contains(&&long[2..]) {
                    return Err(refuse(spec, long));
                }
            }
            short => {
                if let Some(c) = short.chars().skip(1).find(|c| !FLAGS.contains(*c)) {
                    return Err(refuse(spec, &format!("-{c}")));
                }
            }
        }
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(argv: &[&str]) -> Result<Vec<(String, Role)>, PolicyError> {
        let spec = crate::commands::SPECS
            .iter()
            .find(|s| s.name == "jq")
            .unwrap();
        let args: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
        classify(spec, &args).map(|w| w.iter().map(|w| (w.text.to_owned(), w.role)).collect())
    }

    #[test]
    fn options_that_read_files_or_load_modules_are_refused() {
        for (argv, option) in [
            (&["--rawfile", "x", "/etc/passwd", "."][..], "--rawfile"),
            (&["--slurpfile", "x", "f", "."], "--slurpfile"),
            (&["-L", "/lib", "."], "-L"),
            (&["-rL/lib", "."], "-L"),
            (&["--from-file", "f"], "--from-file"),
            (&["-f", "f"], "-f"),
            (&["--in-place", ".", "a"], "--in-place"),
            (&["--raw-output=1", "."], "--raw-output=1"),
        ] {
            assert_eq!(
                read(argv),
                Err(PolicyError::OptionNotAllowed {
                    command: "jq",
                    option: option.to_owned()
                }),
                "{argv:?}"
            );
        }
        assert_eq!(
            read(&["--arg", "x"]),
            Err(PolicyError::MissingValue {
                command: "jq",
                option: "--arg".to_owned()
            })
        );
    }

    #[test]
    fn the_filter_and_arguments_are_text_and_the_rest_are_files() {
        let (o, t, p) = (Role::Option, Role::Text, Role::Path);
        let got = read(&[
            "-rc",
            "--arg",
            "a",
            "../x",
            ".[$a]",
            "in",
            "--argjson",
            "b",
            "1",
            "-",
        ]);
        let want: Vec<(String, Role)> = [
            ("-rc", o),
            ("--arg", o),
            ("a", t),
            ("../x", t),
            (".[$a]", t),
            ("in", p),
            ("--argjson", o),
            ("b", t),
            ("1", t),
            ("-", p),
        ]
        .iter()
        .map(|(s, r)| ((*s).to_owned(), *r))
        .collect();
        assert_eq!(got, Ok(want));
        assert_eq!(
            read(&["--", "-n", "-e"]),
            Ok(vec![
                ("--".to_owned(), o),
                ("-n".to_owned(), t),
                ("-e".to_owned(), p)
            ])
        );
    }
}
