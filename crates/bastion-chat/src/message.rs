//! The edge types of a chat turn: a bounded user message, a model name, and a title derived
//! from a conversation's first message.

use bastion_core::ValidationError;

/// The most a message may hold, counted in Unicode scalar values (`char`s), not bytes.
pub const MAX_MESSAGE_CHARS: usize = 32_000;
/// The longest title, in characters, before it is cut with an ellipsis.
pub const MAX_TITLE_CHARS: usize = 60;
/// Model names are short identifiers such as `gpt-4o-mini` or `meta-llama/llama-3.1-8b:free`.
pub const MAX_MODEL_CHARS: usize = 100;

/// The most of an assistant answer that is stored and returned, in UTF-8 bytes: a provider
/// may send up to 1 MiB, but one message must fit a DynamoDB item (400 KB) with room to
/// spare, and a channel answer must not become hundreds of platform messages.
pub const MAX_ANSWER_BYTES: usize = 96 * 1024;

/// `answer` cut to at most [`MAX_ANSWER_BYTES`], at a character boundary.
pub fn cap_answer(mut answer: String) -> String {
    truncate_at_char(&mut answer, MAX_ANSWER_BYTES);
    answer
}

/// `s` cut to at most `max` bytes, at a character boundary.
pub(crate) fn truncate_at_char(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// A user's message: 1..=32,000 characters, not blank, no NUL.
#[derive(Clone, PartialEq, Eq)]
pub struct ChatMessage(String);

impl ChatMessage {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.trim().is_empty() {
            return Err(ValidationError::new(
                "empty_message",
                "message must not be empty",
            ));
        }
        // Counting stops one past the limit, so a huge input costs no more than a valid one.
        if raw.chars().take(MAX_MESSAGE_CHARS + 1).count() > MAX_MESSAGE_CHARS {
            return Err(ValidationError::new(
                "message_too_long",
                "message must be at most 32000 characters",
            ));
        }
        if raw.contains('\0') {
            return Err(ValidationError::new(
                "invalid_message",
                "message must not contain NUL characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Message content is user data: never in logs, even by accident through `{:?}`.
impl std::fmt::Debug for ChatMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChatMessage({} chars)", self.0.chars().count())
    }
}

/// A syntactically valid model name; whether it is allowed is the config's decision.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelName(pub(crate) String);

impl ModelName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let ok = !raw.is_empty()
            && raw.chars().count() <= MAX_MODEL_CHARS
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:/@".contains(&b));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ValidationError::new(
                "model_not_allowed",
                "model is not one of the allowed models",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ModelName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The first line of the first message, whitespace collapsed, cut to 60 characters.
pub fn title_from(message: &ChatMessage) -> String {
    let words: Vec<&str> = message.as_str().split_whitespace().collect();
    let line = words.join(" ");
    if line.chars().count() <= MAX_TITLE_CHARS {
        return line;
    }
    let mut cut: String = line.chars().take(MAX_TITLE_CHARS - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thirty_two_thousand_emoji_pass_and_thirty_two_thousand_and_one_ascii_fail() {
        let emoji = "😀".repeat(MAX_MESSAGE_CHARS);
        assert_eq!(emoji.len(), 4 * MAX_MESSAGE_CHARS);
        assert_eq!(ChatMessage::parse(&emoji).unwrap().as_str(), emoji);
        let long = "a".repeat(MAX_MESSAGE_CHARS + 1);
        assert_eq!(
            ChatMessage::parse(&long).unwrap_err().code,
            "message_too_long"
        );
        assert!(ChatMessage::parse(&"a".repeat(MAX_MESSAGE_CHARS)).is_ok());
    }

    #[test]
    fn blank_messages_and_nul_are_refused() {
        for blank in ["", " ", "\n\t  \r\n", "\u{3000}"] {
            assert_eq!(
                ChatMessage::parse(blank).unwrap_err().code,
                "empty_message",
                "{blank:?}"
            );
        }
        assert_eq!(
            ChatMessage::parse("a\0b").unwrap_err().code,
            "invalid_message"
        );
    }

    #[test]
    fn debug_never_shows_the_content() {
        let m = ChatMessage::parse("my secret plan").unwrap();
        assert_eq!(format!("{m:?}"), "ChatMessage(14 chars)");
    }

    #[test]
    fn model_names_are_short_identifiers() {
        assert!(ModelName::parse("meta-llama/llama-3.1-8b:free").is_ok());
        for bad in ["", "a b", "x\n", &"m".repeat(101)] {
            assert_eq!(
                ModelName::parse(bad).unwrap_err().code,
                "model_not_allowed",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn long_answers_are_cut_at_the_byte_cap_on_a_character_boundary() {
        assert_eq!(cap_answer("short".to_owned()), "short");
        let ascii = cap_answer("a".repeat(MAX_ANSWER_BYTES + 10));
        assert_eq!(ascii.len(), MAX_ANSWER_BYTES);
        // 4-byte characters: 98,304 is a multiple of 4, so shift by one byte to straddle.
        let straddling = cap_answer(format!("b{}", "😀".repeat(MAX_ANSWER_BYTES / 4)));
        assert_eq!(straddling.len(), MAX_ANSWER_BYTES - 3);
        assert!(straddling.ends_with('😀'));
    }

    #[test]
    fn titles_collapse_whitespace_and_cut_long_text() {
        let m = ChatMessage::parse("  How do\n I   bake bread?  ").unwrap();
        assert_eq!(title_from(&m), "How do I bake bread?");
        let long = ChatMessage::parse(&"word ".repeat(40)).unwrap();
        let title = title_from(&long);
        assert_eq!(title.chars().count(), 60);
        assert!(title.ends_with("word…"), "{title}");
    }
}
