//! The Messages format streamed: `message_start` (the input token count), for each content
//! block a `content_block_start` (`text`, or `tool_use` with its id and name), deltas
//! (`text_delta` handed to the sink at once, `input_json_delta` fragments concatenated per
//! block) and `content_block_stop`, then `message_delta` (stop reason, output tokens) and
//! `message_stop`, the end. `ping` is ignored; an `error` event ends the call. A stream cut
//! before `message_stop` is truncated, and so malformed.

use std::collections::BTreeMap;

use serde_json::Value;

use super::anthropic::{StopReason, check_tool_stop};
use super::http::{Assemble, MAX_TOOL_CALLS, Step, answer, shape_error, stream_error};
use super::{Completion, ModelToolCall, ProviderError, Usage};

/// The event's own `type` decides, as the API documents it to match the `event:` name.
#[derive(serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: u64,
        content_block: StartBlock,
    },
    ContentBlockDelta {
        index: u64,
        delta: BlockDelta,
    },
    ContentBlockStop {
        index: u64,
    },
    MessageDelta {
        #[serde(default)]
        delta: Option<MessageChange>,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Ping,
    Error {
        #[serde(default)]
        error: Option<WireError>,
    },
    /// Events newer than this client: skipped, as the API asks of clients.
    #[serde(other)]
    Other,
}

#[derive(serde::Deserialize)]
struct StartMessage {
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Option<Value>,
    },
    /// Blocks this client never asks for (thinking, server tools).
    #[serde(other)]
    Other,
}

#[derive(serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    /// Thinking, signature and citation deltas.
    #[serde(other)]
    Other,
}

#[derive(serde::Deserialize)]
struct MessageChange {
    #[serde(default)]
    stop_reason: Option<StopReason>,
}

#[derive(serde::Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
}

#[derive(serde::Deserialize)]
struct WireError {
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

enum Block {
    Text,
    Tool {
        id: String,
        name: String,
        /// The `input` of the start event, used when no fragment follows.
        start_input: Option<Value>,
        json: String,
    },
    Other,
}

/// The answer so far.
#[derive(Default)]
pub(super) struct Assembly {
    content: String,
    blocks: BTreeMap<u64, Block>,
    tools: usize,
    usage: Usage,
    stop_reason: Option<StopReason>,
}

impl Assemble for Assembly {
    const END: &'static str = "message_stop";

    /// Takes one event's data.
    fn data(&mut self, data: &str) -> Result<Step, ProviderError> {
        let event: Event =
            serde_json::from_str(data).map_err(|e| shape_error("a stream event", &e))?;
        match event {
            Event::MessageStart { message } => {
                if let Some(usage) = message.usage {
                    self.count(&usage);
                }
            }
            Event::ContentBlockStart {
                index,
                content_block,
            } => return self.start(index, content_block),
            Event::ContentBlockDelta { index, delta } => return self.delta(index, delta),
            Event::ContentBlockStop { index } => {
                if !self.blocks.contains_key(&index) {
                    return Err(unstarted(index));
                }
            }
            Event::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.and_then(|d| d.stop_reason) {
                    self.stop_reason = Some(reason);
                }
                if let Some(usage) = usage {
                    self.count(&usage);
                }
            }
            Event::MessageStop => return Ok(Step::Done),
            Event::Ping | Event::Other => {}
            Event::Error { error } => {
                return Err(stream_error(error.as_ref().and_then(|e| e.kind.as_deref())));
            }
        }
        Ok(Step::Nothing)
    }

    /// The completion, under the same rules as a buffered reply.
    fn finish(self) -> Result<Completion, ProviderError> {
        let tool_calls: Vec<ModelToolCall> = self
            .blocks
            .into_values()
            .filter_map(|block| match block {
                Block::Tool {
                    id,
                    name,
                    start_input,
                    json,
                } => Some(ModelToolCall {
                    id,
                    name,
                    arguments: arguments(start_input, json),
                }),
                Block::Text | Block::Other => None,
            })
            .collect();
        check_tool_stop(self.stop_reason, &tool_calls)?;
        answer(self.content, tool_calls, self.usage)
    }
}

impl Assembly {
    /// Counts are cumulative: the latest of each wins.
    fn count(&mut self, usage: &WireUsage) {
        if let Some(n) = usage.input_tokens {
            self.usage.prompt_tokens = n;
        }
        if let Some(n) = usage.output_tokens {
            self.usage.completion_tokens = n;
        }
    }

    fn start(&mut self, index: u64, block: StartBlock) -> Result<Step, ProviderError> {
        if self.blocks.contains_key(&index) {
            return Err(ProviderError::Malformed(format!(
                "content block {index} started twice"
            )));
        }
        let (block, text) = match block {
            StartBlock::Text { text } => (Block::Text, text),
            StartBlock::ToolUse { id, name, input } => {
                // One more than the bound, so the shared check names the excess.
                if self.tools > MAX_TOOL_CALLS {
                    return Err(ProviderError::Malformed(format!(
                        "more than {MAX_TOOL_CALLS} tool calls in one answer"
                    )));
                }
                self.tools += 1;
                let tool = Block::Tool {
                    id,
                    name,
                    start_input: input,
                    json: String::new(),
                };
                (tool, String::new())
            }
            StartBlock::Other => (Block::Other, String::new()),
        };
        self.blocks.insert(index, block);
        // The API starts text blocks empty; text carried here is still the answer's.
        if text.is_empty() {
            return Ok(Step::Nothing);
        }
        self.content.push_str(&text);
        Ok(Step::Text(text))
    }

    fn delta(&mut self, index: u64, delta: BlockDelta) -> Result<Step, ProviderError> {
        let block = self
            .blocks
            .get_mut(&index)
            .ok_or_else(|| unstarted(index))?;
        match (block, delta) {
            (Block::Text, BlockDelta::TextDelta { text }) => {
                if text.is_empty() {
                    return Ok(Step::Nothing);
                }
                self.content.push_str(&text);
                Ok(Step::Text(text))
            }
            (Block::Tool { json, .. }, BlockDelta::InputJsonDelta { partial_json }) => {
                json.push_str(&partial_json);
                Ok(Step::Nothing)
            }
            (_, BlockDelta::Other) | (Block::Other, _) => Ok(Step::Nothing),
            _ => Err(ProviderError::Malformed(format!(
                "content block {index} got a delta of another block's kind"
            ))),
        }
    }
}

/// The call's argument text: the fragments as sent, or without any, the start's `input` when
/// it holds something, else `{}` (a tool that takes no input).
fn arguments(start_input: Option<Value>, json: String) -> String {
    if !json.trim().is_empty() {
        return json;
    }
    match start_input {
        Some(Value::Object(map)) if map.is_empty() => "{}".to_owned(),
        Some(Value::Null) | None => "{}".to_owned(),
        Some(other) => other.to_string(),
    }
}

fn unstarted(index: u64) -> ProviderError {
    ProviderError::Malformed(format!("content block {index} was never started"))
}

#[cfg(test)]
#[path = "anthropic_stream_tests.rs"]
mod tests;
