//! The Chat Completions format streamed: each `data:` line is a chunk whose first choice's
//! `delta` carries text (handed to the sink at once) or tool-call fragments (assembled by
//! their `index`: the first has the id and name, the argument texts concatenate), a last
//! chunk with `choices: []` carries the usage, and `data: [DONE]` ends it. A stream cut
//! before `[DONE]` is truncated, and so malformed.

use std::collections::BTreeMap;

use super::http::{Assemble, MAX_TOOL_CALLS, Step, answer, shape_error};
use super::{Completion, ModelToolCall, ProviderError, Usage};

#[derive(serde::Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    /// Some compatible servers report a failure inside the stream.
    #[serde(default)]
    error: Option<WireError>,
}

#[derive(serde::Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: u64,
    #[serde(default)]
    delta: Option<Delta>,
}

#[derive(serde::Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<CallFragment>>,
}

#[derive(serde::Deserialize)]
struct CallFragment {
    /// Left out by some compatible servers that send each call whole.
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    function: Option<FunctionFragment>,
}

#[derive(serde::Deserialize)]
struct FunctionFragment {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(serde::Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

#[derive(serde::Deserialize)]
struct WireError {
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// The answer so far.
#[derive(Default)]
pub(super) struct Assembly {
    content: String,
    calls: BTreeMap<u64, PartialCall>,
    usage: Usage,
}

impl Assemble for Assembly {
    const END: &'static str = "[DONE]";

    /// Takes one `data:` line's text.
    fn data(&mut self, data: &str) -> Result<Step, ProviderError> {
        if data.trim() == "[DONE]" {
            return Ok(Step::Done);
        }
        let chunk: Chunk =
            serde_json::from_str(data).map_err(|e| shape_error("a completion chunk", &e))?;
        if let Some(error) = chunk.error {
            return Err(super::http::stream_error(error.kind.as_deref()));
        }
        if let Some(u) = chunk.usage {
            self.usage = Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
            };
        }
        // Only the first choice is the answer, as in a buffered reply.
        let Some(delta) = chunk
            .choices
            .into_iter()
            .find(|c| c.index == 0)
            .and_then(|c| c.delta)
        else {
            return Ok(Step::Nothing);
        };
        for fragment in delta.tool_calls.unwrap_or_default() {
            self.fragment(fragment)?;
        }
        match delta.content {
            Some(text) if !text.is_empty() => {
                self.content.push_str(&text);
                Ok(Step::Text(text))
            }
            _ => Ok(Step::Nothing),
        }
    }

    /// The completion, under the same rules as a buffered reply.
    fn finish(self) -> Result<Completion, ProviderError> {
        let tool_calls: Vec<ModelToolCall> = self
            .calls
            .into_values()
            .map(|c| ModelToolCall {
                id: c.id,
                name: c.name,
                arguments: c.arguments,
            })
            .collect();
        answer(self.content, tool_calls, self.usage)
    }
}

impl Assembly {
    fn fragment(&mut self, fragment: CallFragment) -> Result<(), ProviderError> {
        let index = fragment.index.unwrap_or_else(|| self.unindexed(&fragment));
        if fragment.kind.as_deref().is_some_and(|k| k != "function") {
            return Err(ProviderError::Malformed(format!(
                "tool call {index} is not a function call"
            )));
        }
        // One more than the bound, so the count check below names the excess.
        if !self.calls.contains_key(&index) && self.calls.len() > MAX_TOOL_CALLS {
            return Err(ProviderError::Malformed(format!(
                "more than {MAX_TOOL_CALLS} tool calls in one answer"
            )));
        }
        let call = self.calls.entry(index).or_default();
        if let Some(id) = fragment.id.filter(|id| !id.is_empty()) {
            // Some servers repeat the id on every fragment; a different one is another call
            // squeezed into this index.
            if call.id.is_empty() {
                call.id = id;
            } else if call.id != id {
                return Err(ProviderError::Malformed(format!(
                    "tool call {index} changes its id mid-stream"
                )));
            }
        }
        if let Some(function) = fragment.function {
            if let Some(name) = function.name.filter(|n| !n.is_empty()) {
                if call.name.is_empty() {
                    call.name = name;
                } else if call.name != name {
                    return Err(ProviderError::Malformed(format!(
                        "tool call {index} changes its name mid-stream"
                    )));
                }
            }
            if let Some(arguments) = function.arguments {
                call.arguments.push_str(&arguments);
            }
        }
        Ok(())
    }

    /// Where a fragment without an index goes: a new id opens the next call, anything else
    /// continues the last one.
    fn unindexed(&self, fragment: &CallFragment) -> u64 {
        let last = self.calls.last_key_value();
        match (last, fragment.id.as_deref().filter(|id| !id.is_empty())) {
            (None, _) => 0,
            (Some((at, call)), Some(id)) if call.id != id => at.saturating_add(1),
            (Some((at, _)), _) => *at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(lines: &[&str]) -> (Vec<Step>, Assembly) {
        let mut assembly = Assembly::default();
        let steps = lines.iter().map(|l| assembly.data(l).unwrap()).collect();
        (steps, assembly)
    }

    #[test]
    fn text_deltas_are_handed_on_as_they_come_and_usage_is_read_from_the_last_chunk() {
        let (steps, assembly) = feed(&[
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"Hel"}}]}"#,
            r#"{"choices":[{"index":1,"delta":{"content":"other choice"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}"#,
            "[DONE]",
        ]);
        assert_eq!(
            steps,
            vec![
                Step::Nothing,
                Step::Text("Hel".into()),
                Step::Nothing,
                Step::Text("lo".into()),
                Step::Nothing,
                Step::Nothing,
                Step::Done
            ]
        );
        let done = assembly.finish().unwrap();
        assert_eq!(done.content, "Hello");
        assert_eq!(
            done.usage,
            Usage {
                prompt_tokens: 9,
                completion_tokens: 2
            }
        );
    }

    #[test]
    fn tool_calls_are_assembled_by_index_from_fragments() {
        let (_, assembly) = feed(&[
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"read_file","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"pa"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"list_dir","arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","function":{"arguments":"th\":\"a\"}"}}]}}]}"#,
        ]);
        let done = assembly.finish().unwrap();
        assert_eq!(
            done.tool_calls,
            vec![
                ModelToolCall {
                    id: "call_a".into(),
                    name: "read_file".into(),
                    arguments: r#"{"path":"a"}"#.into()
                },
                ModelToolCall {
                    id: "call_b".into(),
                    name: "list_dir".into(),
                    arguments: "{}".into()
                },
            ]
        );
        assert_eq!(done.content, "");
    }

    #[test]
    fn fragments_that_contradict_each_other_or_break_the_bounds_are_malformed() {
        let mut a = Assembly::default();
        a.data(r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"x","function":{"name":"f"}}]}}]}"#).unwrap();
        let err = a
            .data(r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"y"}]}}]}"#)
            .unwrap_err();
        assert_eq!(
            err,
            ProviderError::Malformed("tool call 0 changes its id mid-stream".into())
        );
        let err = a
            .data(r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"g"}}]}}]}"#)
            .unwrap_err();
        assert_eq!(
            err,
            ProviderError::Malformed("tool call 0 changes its name mid-stream".into())
        );
        let err = a
            .data(r#"{"choices":[{"delta":{"tool_calls":[{"index":3,"type":"code"}]}}]}"#)
            .unwrap_err();
        assert_eq!(
            err,
            ProviderError::Malformed("tool call 3 is not a function call".into())
        );

        // A call that never got its id fails the shared bounds.
        let (_, a) = feed(&[
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"f"}}]}}]}"#,
        ]);
        assert_eq!(
            a.finish().unwrap_err(),
            ProviderError::Malformed(
                "tool call 0 has an id that is not 1 to 256 printable characters".into()
            )
        );

        let mut a = Assembly::default();
        for i in 0..65 {
            a.data(&format!(r#"{{"choices":[{{"delta":{{"tool_calls":[{{"index":{i},"id":"c{i}","function":{{"name":"f"}}}}]}}}}]}}"#)).unwrap();
        }
        let err = a
            .data(r#"{"choices":[{"delta":{"tool_calls":[{"index":99}]}}]}"#)
            .unwrap_err();
        assert_eq!(
            err,
            ProviderError::Malformed("more than 64 tool calls in one answer".into())
        );
        assert_eq!(
            a.finish().unwrap_err(),
            ProviderError::Malformed("65 tool calls in one answer (at most 64)".into())
        );
    }

    #[test]
    fn a_chunk_that_is_not_json_or_an_error_chunk_is_an_error_that_quotes_nothing() {
        let err = Assembly::default()
            .data(r#"{"choices":[{"delta":{"content":"secret text"#)
            .unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("provider reply is malformed: not a completion chunk"));
        assert!(!shown.contains("secret"), "{shown}");
        let err = Assembly::default()
            .data(r#"{"error":{"message":"secret text","type":"server_error"}}"#)
            .unwrap_err();
        assert_eq!(err, ProviderError::Status(500));
    }

    #[test]
    fn calls_sent_whole_without_an_index_are_told_apart_by_their_ids() {
        let (_, a) = feed(&[
            r#"{"choices":[{"delta":{"tool_calls":[{"id":"a","type":"function","function":{"name":"read_file","arguments":"{\"path\":"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"\"x\"}"}}]}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"id":"b","type":"function","function":{"name":"list_files","arguments":"{}"}}]}}]}"#,
        ]);
        let calls: Vec<(String, String, String)> = a
            .finish()
            .unwrap()
            .tool_calls
            .into_iter()
            .map(|c| (c.id, c.name, c.arguments))
            .collect();
        assert_eq!(
            calls,
            vec![
                ("a".into(), "read_file".into(), r#"{"path":"x"}"#.into()),
                ("b".into(), "list_files".into(), "{}".into()),
            ]
        );
    }

    #[test]
    fn an_answer_of_only_whitespace_and_no_calls_is_malformed() {
        let (_, a) = feed(&[r#"{"choices":[{"delta":{"content":"  \n"}}]}"#]);
        assert_eq!(
            a.finish().unwrap_err(),
            ProviderError::Malformed("no assistant content".into())
        );
    }
}
