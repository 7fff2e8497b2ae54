//! A stored answer as prompt lines again: each model call's tool calls as an assistant line,
//! each result as a tool line answering its call, then the answer's text; so the next turn's
//! model sees what the agent did, in the provider's own shape for tool traffic.

use bastion_store::{MessageRecord, MessageRole};
use serde_json::json;

use super::steps::{self, Step};
use crate::provider::{ModelToolCall, PromptMessage};

/// The prompt lines of one stored message (none for an empty answer without steps).
pub fn lines(m: &MessageRecord) -> Vec<PromptMessage> {
    match m.role {
        MessageRole::User => vec![PromptMessage::user(m.content.clone())],
        MessageRole::Assistant => {
            let steps = steps::decode(&m.steps).unwrap_or_else(|| {
                tracing::error!(message = %m.id, "stored steps are unreadable; replaying the answer without them");
                Vec::new()
            });
            let mut lines = step_lines(&steps);
            if !m.content.is_empty() {
                lines.push(PromptMessage::assistant(m.content.clone(), Vec::new()));
            }
            lines
        }
    }
}

/// Per model call: the assistant line with its calls, then one result line per call (a call
/// stored without its result gets one, so the provider never sees an unanswered call).
fn step_lines(steps: &[Step]) -> Vec<PromptMessage> {
    let mut lines = Vec::new();
    let mut k = 0;
    while k < steps.len() {
        let step = steps[k].step();
        let group: Vec<&Step> = steps[k..].iter().take_while(|s| s.step() == step).collect();
        k += group.len();
        let calls: Vec<ModelToolCall> = group
            .iter()
            .filter_map(|s| match s {
                Step::ToolCall { id, name, .. } => Some(ModelToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: s.model_text(),
                }),
                Step::ToolResult { .. } => None,
            })
            .collect();
        if calls.is_empty() {
            continue;
        }
        let mut results = Vec::with_capacity(calls.len());
        for call in &calls {
            let stored = group.iter().find_map(|s| match s {
                Step::ToolResult { id, .. } if *id == call.id => Some(s.model_text()),
                _ => None,
            });
            let text = stored.unwrap_or_else(|| {
                json!({"ok": false, "error": {"code": "not_run", "message": "no result was stored"}})
                    .to_string()
            });
            results.push(PromptMessage::tool_result(&call.id, &call.name, text));
        }
        lines.push(PromptMessage::assistant(String::new(), calls));
        lines.extend(results);
    }
    lines
}

/// Characters a message's lines take in the prompt.
pub fn size(lines: &[PromptMessage]) -> usize {
    lines
        .iter()
        .map(|l| {
            l.content.chars().count()
                + l.tool_calls
                    .iter()
                    .map(|c| c.arguments.chars().count() + c.name.len())
                    .sum::<usize>()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use bastion_core::Timestamp;
    use serde_json::json;

    use super::*;
    use crate::provider::PromptRole;

    fn answer(content: &str, steps: &[Step]) -> MessageRecord {
        MessageRecord {
            seq: 1,
            id: "m1".to_owned(),
            role: MessageRole::Assistant,
            content: content.to_owned(),
            created_at: Timestamp(0),
            prompt_tokens: 0,
            completion_tokens: 0,
            model: "m".to_owned(),
            steps: steps::encode(steps),
            stop_reason: String::new(),
        }
    }

    #[test]
    fn an_answer_with_steps_replays_as_calls_results_and_text() {
        let steps = [
            Step::call(1, "c1", "write_file", r#"{"path":"a","content":"x"}"#),
            Step::result(
                1,
                "c1",
                "write_file",
                json!({"ok": true, "output": {"path": "a"}}),
            ),
            Step::call(2, "c2", "run_command", r#"{"command":"cat a"}"#),
            Step::call(2, "c3", "read_file", r#"{"path":"a"}"#),
            Step::result(
                2,
                "c2",
                "run_command",
                json!({"ok": true, "output": {"stdout": "x"}}),
            ),
        ];
        let lines = lines(&answer("done", &steps));
        let shape: Vec<(PromptRole, usize, Option<&str>)> = lines
            .iter()
            .map(|l| {
                (
                    l.role,
                    l.tool_calls.len(),
                    l.answers.as_ref().map(|(id, _)| id.as_str()),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                (PromptRole::Assistant, 1, None),
                (PromptRole::Tool, 0, Some("c1")),
                (PromptRole::Assistant, 2, None),
                (PromptRole::Tool, 0, Some("c2")),
                (PromptRole::Tool, 0, Some("c3")),
                (PromptRole::Assistant, 0, None),
            ]
        );
        assert_eq!(
            lines[0].tool_calls[0].arguments,
            r#"{"content":"x","path":"a"}"#
        );
        assert_eq!(lines[1].content, r#"{"ok":true,"output":{"path":"a"}}"#);
        assert_eq!(
            lines[4].content,
            r#"{"error":{"code":"not_run","message":"no result was stored"},"ok":false}"#
        );
        assert_eq!(lines[5].content, "done");
    }

    #[test]
    fn an_empty_answer_without_steps_replays_as_nothing() {
        assert!(lines(&answer("", &[])).is_empty());
        assert_eq!(lines(&answer("hi", &[])).len(), 1);
    }
}
