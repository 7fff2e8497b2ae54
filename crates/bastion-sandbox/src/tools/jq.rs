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
