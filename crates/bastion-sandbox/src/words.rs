//! Splitting a command line into words by POSIX quoting rules, with no expansion of any kind:
//! no globbing, variables, substitution, redirection, `;`, `&&` or backgrounding. Those
//! characters are ordinary characters of a word. [`split_pipeline`] alone also reads an unquoted
//! `|` as the boundary between the stages of a pipeline.

/// The most stages a pipeline may have.
pub const MAX_STAGES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("unterminated single quote")]
    UnterminatedSingleQuote,
    #[error("unterminated double quote")]
    UnterminatedDoubleQuote,
    #[error("command ends with an unescaped backslash")]
    TrailingBackslash,
    /// A `|` with no command on one side of it (`| a`, `a |`, `a || b`); counted from 1.
    #[error("stage {0} of the pipeline is empty")]
    EmptyStage(usize),
    #[error("a pipeline has at most 8 stages")]
    TooManyStages,
}

/// The words of `line`. Blanks (space, tab, newline) separate words outside quotes.
pub fn split(line: &str) -> Result<Vec<String>, SplitError> {
    let mut stages = split_stages(line, false)?;
    Ok(stages.pop().unwrap_or_default())
}

/// The stages of `line`, each its words: an unquoted (and unescaped) `|` ends a stage, with or
/// without blanks around it. A line without one is a single stage, exactly [`split`]'s words.
/// With one, no stage may be empty and there may be at most [`MAX_STAGES`].
pub fn split_pipeline(line: &str) -> Result<Vec<Vec<String>>, SplitError> {
    let stages = split_stages(line, true)?;
    if stages.len() > 1 {
        if let Some(at) = stages.iter().position(Vec::is_empty) {
            return Err(SplitError::EmptyStage(at + 1));
        }
        if stages.len() > MAX_STAGES {
            return Err(SplitError::TooManyStages);
        }
    }
    Ok(stages)
}

fn split_stages(line: &str, pipes: bool) -> Result<Vec<Vec<String>>, SplitError> {
    let mut stages = Vec::new();
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
            '|' if pipes => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                stages.push(std::mem::take(&mut words));
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
    stages.push(words);
    Ok(stages)
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

    fn p(line: &str) -> Vec<Vec<String>> {
        split_pipeline(line).unwrap()
    }

    #[test]
    fn an_unquoted_bar_separates_stages() {
        assert_eq!(
            p("printf 'b\\na\\n' | sort | head -n 1"),
            [
                vec!["printf", "b\\na\\n"],
                vec!["sort"],
                vec!["head", "-n", "1"]
            ]
        );
        assert_eq!(p("a|b"), [["a"], ["b"]]);
        assert_eq!(p("a x|b y"), [["a", "x"], ["b", "y"]]);
        assert_eq!(p("echo a"), [["echo", "a"]]);
        assert_eq!(p(""), [Vec::<String>::new()]);
    }

    #[test]
    fn a_quoted_or_escaped_bar_is_literal() {
        assert_eq!(p("grep '|' f"), [["grep", "|", "f"]]);
        assert_eq!(p("grep \"a|b\" f"), [["grep", "a|b", "f"]]);
        assert_eq!(p("grep a\\|b f"), [["grep", "a|b", "f"]]);
        assert_eq!(
            p("echo a;b && c > d | wc"),
            [vec!["echo", "a;b", "&&", "c", ">", "d"], vec!["wc"]]
        );
    }

    #[test]
    fn an_empty_stage_is_refused() {
        assert_eq!(split_pipeline("| a"), Err(SplitError::EmptyStage(1)));
        assert_eq!(split_pipeline("a |"), Err(SplitError::EmptyStage(2)));
        assert_eq!(split_pipeline("a || b"), Err(SplitError::EmptyStage(2)));
        assert_eq!(
            split_pipeline("a | '' | b").unwrap(),
            [vec!["a"], vec![""], vec!["b"]]
        );
        assert_eq!(split_pipeline("a | b |  "), Err(SplitError::EmptyStage(3)));
        assert_eq!(
            SplitError::EmptyStage(2).to_string(),
            "stage 2 of the pipeline is empty"
        );
    }

    #[test]
    fn nine_stages_are_refused_and_eight_accepted() {
        assert_eq!(split_pipeline(&["cat"; 8].join(" | ")).unwrap().len(), 8);
        assert_eq!(
            split_pipeline(&["cat"; 9].join(" | ")),
            Err(SplitError::TooManyStages)
        );
        assert_eq!(
            SplitError::TooManyStages.to_string(),
            "a pipeline has at most 8 stages"
        );
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
