//! Context assembly: the system prompt, then as many of the most recent messages as fit the
//! character budget, oldest first, then the new message.

use bastion_store::{MessageRecord, MessageRole};

use crate::message::ChatMessage;
use crate::provider::PromptMessage;

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// `history` is newest first, as the store lists it. The system prompt and the new message are
/// always sent; history stops at the first message that would overflow `budget`, so what is
/// sent is always a contiguous, most-recent stretch of the conversation.
pub fn assemble(
    system_prompt: &str,
    history: &[MessageRecord],
    message: &ChatMessage,
    budget: usize,
) -> Vec<PromptMessage> {
    let mut used = chars(system_prompt) + chars(message.as_str());
    let mut kept = Vec::new();
    for m in history {
        let size = chars(&m.content);
        if used + size > budget {
            break;
        }
        used += size;
        kept.push(m);
    }
    let mut prompt = Vec::with_capacity(kept.len() + 2);
    if !system_prompt.is_empty() {
        prompt.push(PromptMessage::system(system_prompt));
    }
    for m in kept.into_iter().rev() {
        prompt.push(match m.role {
            MessageRole::User => PromptMessage::user(m.content.clone()),
            MessageRole::Assistant => PromptMessage::assistant(m.content.clone(), Vec::new()),
        });
    }
    prompt.push(PromptMessage::user(message.as_str()));
    prompt
}

#[cfg(test)]
mod tests {
    use bastion_core::Timestamp;

    use super::*;
    use crate::provider::PromptRole;

    fn record(seq: u64, role: MessageRole, content: &str) -> MessageRecord {
        MessageRecord {
            seq,
            id: format!("{seq:032}"),
            role,
            content: content.to_owned(),
            created_at: Timestamp(0),
            prompt_tokens: 0,
            completion_tokens: 0,
            model: String::new(),
            steps: String::new(),
        }
    }

    fn shape(prompt: &[PromptMessage]) -> Vec<(PromptRole, &str)> {
        prompt
            .iter()
            .map(|m| (m.role, m.content.as_str()))
            .collect()
    }

    #[test]
    fn history_is_sent_oldest_first_between_system_prompt_and_new_message() {
        let history = [
            record(1, MessageRole::Assistant, "b"),
            record(0, MessageRole::User, "a"),
        ];
        let new = ChatMessage::parse("c").unwrap();
        let prompt = assemble("sys", &history, &new, 1_000);
        assert_eq!(
            shape(&prompt),
            vec![
                (PromptRole::System, "sys"),
                (PromptRole::User, "a"),
                (PromptRole::Assistant, "b"),
                (PromptRole::User, "c"),
            ]
        );
    }

    #[test]
    fn the_budget_keeps_only_the_most_recent_contiguous_messages() {
        // Budget 10: "sys"(3) + "new"(3) leaves 4: "dd"(2) fits, "cccc"(4) does not, and the
        // older "b" is not sent either because history must stay contiguous.
        let history = [
            record(3, MessageRole::Assistant, "dd"),
            record(2, MessageRole::User, "cccc"),
            record(1, MessageRole::Assistant, "b"),
        ];
        let new = ChatMessage::parse("new").unwrap();
        let prompt = assemble("sys", &history, &new, 10);
        assert_eq!(
            shape(&prompt),
            vec![
                (PromptRole::System, "sys"),
                (PromptRole::Assistant, "dd"),
                (PromptRole::User, "new"),
            ]
        );
    }

    #[test]
    fn a_new_message_larger_than_the_budget_is_still_sent_alone() {
        let history = [record(0, MessageRole::User, "old")];
        let new = ChatMessage::parse(&"x".repeat(50)).unwrap();
        let prompt = assemble("", &history, &new, 10);
        assert_eq!(prompt.len(), 1);
        assert_eq!(prompt[0].role, PromptRole::User);
    }
}
