//! Splitting a command line into words by POSIX quoting rules, with no expansion of any kind:
//! no globbing, variables, substitution, pipes, redirection, `;`, `&&` or backgrounding. Those
//! characters are ordinary characters of a word.

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("unterminated single quote")]
    UnterminatedSingleQuote,
    #[error("unterminated double quote")]
    UnterminatedDoubleQuote,
    #[error("command ends with an unescaped backslash")]
    TrailingBackslash,
}

/// The words of `line`. Blanks (space, tab, newline) separate words outside quotes.
pub fn split(line: &str) -> Result<Vec<String>, SplitError> {
    let mut words = Vec::new();
    let mut word = String::new();
    // A word exists once any character or quote pair was seen: `''` is an empty word.
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => word.push(ch),
                        None => return Err(SplitError::UnterminatedSingleQuote),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            // Inside double quotes a backslash escapes only these.
                            Some(ch @ ('$' | '`' | '"' | '\\')) => word.push(ch),
                            Some('\n') => {}
                            Some(ch) => {
                                word.push('\\');
                                word.push(ch);
                            }
                            None => return Err(SplitError::UnterminatedDoubleQuote),
                        },
                        Some(ch) => word.push(ch),
                        None => return Err(SplitError::UnterminatedDoubleQuote),
                    }
                }
            }
            '\\' => match chars.next() {
                // Backslash-newline is a line continuation and disappears.
                Some('\n') => {}
                Some(ch) => {
                    in_word = true;
                    word.push(ch);
                }
                None => return Err(SplitError::TrailingBackslash),
            },
            ch => {
                in_word = true;
                word.push(ch);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(line: &str) -> Vec<String> {
        split(line).unwrap()
    }

    #[test]
    fn shell_operators_are_plain_characters() {
        assert_eq!(
            s("echo a;b && c | d > e $(f) `g` $HOME * &"),
            [
                "echo", "a;b", "&&", "c", "|", "d", ">", "e", "$(f)", "`g`", "$HOME", "*", "&"
            ]
        );
    }

    #[test]
    fn quotes_group_and_do_not_expand() {
        assert_eq!(
            s(r#"echo 'a b' "c $d" e\ f '' """#),
            ["echo", "a b", "c $d", "e f", "", ""]
        );
        assert_eq!(s(r#"printf "x\"y\\z\n""#), ["printf", "x\"y\\z\\n"]);
        assert_eq!(s("a'b'\"c\"d"), ["abcd"]);
        assert_eq!(s("  \t\n "), Vec::<String>::new());
        assert_eq!(s("a\\\nb"), ["ab"]);
    }

    #[test]
    fn unbalanced_input_is_refused() {
        assert_eq!(split("echo 'a"), Err(SplitError::UnterminatedSingleQuote));
        assert_eq!(split("echo \"a"), Err(SplitError::UnterminatedDoubleQuote));
        assert_eq!(split("echo a\\"), Err(SplitError::TrailingBackslash));
    }

    proptest! {
        #[test]
        fn words_without_specials_split_on_blanks(ws in proptest::collection::vec("[a-z0-9;|&$*]{1,8}", 0..6)) {
            prop_assert_eq!(split(&ws.join(" ")).unwrap(), ws);
        }

        #[test]
        fn single_quoting_round_trips(w in "[^']{0,20}") {
            prop_assert_eq!(split(&format!("'{w}'")).unwrap(), vec![w]);
        }
    }
}
