//! grep's argument reader: options the getopt way (`-e PATTERN` is text), then the operands,
//! of which the first is the pattern unless an `-e` gave one; every other operand is a file.

use crate::commands::{Role, Spec};
use crate::policy::{PolicyError, Word, classify_getopt};

/// Reads grep's argv (without argv[0]): the getopt table gives every operand the role Path; the
/// first operand is turned into the pattern when no `-e` appeared.
pub(crate) fn classify<'a>(
    spec: &'static Spec,
    args: &'a [String],
) -> Result<Vec<Word<'a>>, PolicyError> {
    let mut words = classify_getopt(spec, args)?;
    // The table's only Text-valued option is -e; operands all come back as Paths.
    let has_e = words.iter().any(|w| w.role == Role::Text);
    if !has_e {
        if let Some(first) = first_operand(&words) {
            words[first].role = Role::Text;
        } else {
            return Err(PolicyError::Refused {
                command: spec.name,
                reason: "no pattern given".to_owned(),
            });
        }
    }
    Ok(words)
}

/// The first operand (grep's table has no Path-valued option).
fn first_operand(words: &[Word<'_>]) -> Option<usize> {
    words.iter().position(|w| w.role == Role::Path)
}

#[cfg(test)]
mod tests {
    use crate::commands::SPECS;
    use crate::policy::PolicyError;
    use crate::{PathError, Role};

    fn roles(line: &str) -> Result<Vec<(String, Role)>, PolicyError> {
        let argv = crate::words::split(line).unwrap_or_default();
        let spec = SPECS
            .iter()
            .find(|s| s.name == "grep")
            .ok_or(PolicyError::DateOperand)?;
        Ok(super::classify(spec, &argv[1..])?
            .into_iter()
            .map(|w| (w.text.to_owned(), w.role))
            .collect())
    }

    fn check(line: &str) -> Result<(), PolicyError> {
        let all: Vec<&str> = crate::known_commands().collect();
        let toolset = crate::Toolset::open(&crate::built_tools_dir()).unwrap();
        let policy = crate::CommandPolicy::resolve(&all, &toolset).unwrap();
        policy
            .check(&crate::words::split(line).unwrap())
            .map(|_| ())
    }

    #[test]
    fn the_first_operand_is_the_pattern_unless_e_gave_one() {
        use Role::{Option as O, Path as P, Text as T};
        let w = |v: &[(&str, Role)]| -> Vec<(String, Role)> {
            v.iter().map(|(s, r)| ((*s).to_owned(), *r)).collect()
        };
        assert_eq!(
            roles("grep -n foo a b"),
            Ok(w(&[("-n", O), ("foo", T), ("a", P), ("b", P)]))
        );
        assert_eq!(
            roles("grep -e foo a"),
            Ok(w(&[("-e", O), ("foo", T), ("a", P)]))
        );
        assert_eq!(
            roles("grep -efoo a"),
            Ok(w(&[("-efoo", O), ("foo", T), ("a", P)]))
        );
        assert_eq!(
            roles("grep -ie foo a"),
            Ok(w(&[("-ie", O), ("foo", T), ("a", P)]))
        );
        assert_eq!(
            roles("grep a -e foo"),
            Ok(w(&[("a", P), ("-e", O), ("foo", T)]))
        );
        assert_eq!(
            roles("grep -- -v a"),
            Ok(w(&[("--", O), ("-v", T), ("a", P)]))
        );
        assert_eq!(
            roles("grep -e -v -- -x"),
            Ok(w(&[("-e", O), ("-v", T), ("--", O), ("-x", P)]))
        );
    }

    #[test]
    fn files_obey_the_path_rules_and_the_pattern_does_not() {
        assert_eq!(check("grep -r ../x ."), Ok(()));
        assert_eq!(check("grep /etc/passwd a"), Ok(()));
        assert_eq!(
            check("grep root /etc/passwd"),
            Err(PolicyError::Path {
                index: 2,
                error: PathError::Absolute
            })
        );
        assert_eq!(
            check("grep -e root ../secret"),
            Err(PolicyError::Path {
                index: 3,
                error: PathError::ParentComponent
            })
        );
        assert_eq!(
            check("grep -rn -e x a .."),
            Err(PolicyError::Path {
                index: 5,
                error: PathError::ParentComponent
            })
        );
    }

    #[test]
    fn unlisted_options_and_a_missing_pattern_are_refused() {
        let refused = |line: &str, option: &str| {
            assert_eq!(
                check(line),
                Err(PolicyError::OptionNotAllowed {
                    command: "grep",
                    option: option.to_owned()
                }),
                "{line}"
            );
        };
        refused("grep -R x .", "-R");
        refused("grep -f ../patterns a", "-f");
        refused("grep --include=x y", "--include");
        refused("grep -P x a", "-P");
        refused("grep --devices=read x a", "--devices");
        assert_eq!(
            check("grep -n"),
            Err(PolicyError::Refused {
                command: "grep",
                reason: "no pattern given".to_owned()
            })
        );
        assert_eq!(
            check("grep -e"),
            Err(PolicyError::MissingValue {
                command: "grep",
                option: "-e".to_owned()
            })
        );
    }
}
