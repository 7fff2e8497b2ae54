//! Context assembly: the system prompt, then as many of the most recent messages (answers with
//! their steps) as fit the character budget, oldest first, then the new message.

use bastion_store::{MessageRecord, MessageRole};

use crate::agent::replay;
use crate::message::ChatMessage;
use crate::provider::PromptMessage;

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// `history` is newest first, as the store lists it. The system prompt and the new message are
/// always sent; history stops at the first message that would overflow `budget`, so what is
/// sent is always a contiguous, most-recent stretch of the conversation. An answer counts with
/// its steps (tool calls and results) and is kept or dropped whole, and the stretch starts
/// with a user message, as providers require.
pub fn assemble(
    system_prompt: &str,
    history: &[MessageRecord],
    message: &ChatMessage,
    budget: usize,
) -> Vec<PromptMessage> {
    let mut used = chars(system_prompt) + chars(message.as_str());
    let mut kept: Vec<(MessageRole, Vec<PromptMessage>)> = Vec::new();
    for m in history {
        let lines = replay::lines(m);
        let size = replay::size(&lines);
        if used + size > budget {
            break;
        }
        used += size;
        kept.push((m.role, lines));
    }
    while kept
        .last()
        .is_some_and(|(role, _)| *role != MessageRole::User)
    {
        kept.pop();
    }
    let mut prompt = Vec::with_capacity(kept.len() + 2);
    if !system_prompt.is_empty() {
        prompt.push(PromptMessage::system(system_prompt));
    }
    for (_, lines) in kept.into_iter().rev() {
        prompt.extend(lines);
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
            stop_reason: String::new(),
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
    fn the_budget_keeps_only_the_most_recent_contiguous_messages_from_a_question_on() {
        // Budget 14: "sys"(3) + "new"(3) leaves 8: "dd"(2) and "ee"(2) fit, "cccccc"(6) does
        // not, and the older "b" is not sent either because history must stay contiguous.
        let history = [
            record(4, MessageRole::Assistant, "dd"),
            record(3, MessageRole::User, "ee"),
            record(2, MessageRole::Assistant, "cccccc"),
            record(1, MessageRole::User, "b"),
        ];
        let new = ChatMessage::parse("new").unwrap();
        let prompt = assemble("sys", &history, &new, 14);
        assert_eq!(
            shape(&prompt),
            vec![
                (PromptRole::System, "sys"),
                (PromptRole::User, "ee"),
                (PromptRole::Assistant, "dd"),
                (PromptRole::User, "new"),
            ]
        );
        // With room for "dd" alone, the history would open with an answer: it goes too.
        let prompt = assemble("sys", &history, &new, 9);
        assert_eq!(
            shape(&prompt),
            vec![(PromptRole::System, "sys"), (PromptRole::User, "new")]
        );
    }

    #[test]
    fn an_answers_steps_count_against_the_budget_and_travel_with_it() {
        let steps = crate::agent::steps::encode(&[
            crate::agent::Step::call(1, "c1", "read_file", r#"{"path":"notes.txt"}"#),
            crate::agent::Step::result(
                1,
                "c1",
                "read_file",
                serde_json::json!({"ok": true, "output": {"content": "x".repeat(100)}}),
            ),
        ]);
        let mut answer = record(1, MessageRole::Assistant, "it says x");
        answer.steps = steps;
        let history = [answer, record(0, MessageRole::User, "read it")];
        let new = ChatMessage::parse("thanks").unwrap();
        let roles = |p: &[PromptMessage]| p.iter().map(|m| m.role).collect::<Vec<_>>();
        let prompt = assemble("", &history, &new, 1_000);
        assert_eq!(
            roles(&prompt),
            vec![
                PromptRole::User,
                PromptRole::Assistant,
                PromptRole::Tool,
                PromptRole::Assistant,
                PromptRole::User
            ]
        );
        // The answer's text fits 100 characters, but not with its 100-character result.
        let prompt = assemble("", &history, &new, 100);
        assert_eq!(roles(&prompt), vec![PromptRole::User]);
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
