//! The Anthropic Messages format with tools: `POST <base>/v1/messages`, the key as `x-api-key`
//! with `anthropic-version: 2023-06-01`, the system prompt top-level, tools with
//! `input_schema`, the model's calls as `tool_use` content blocks and their results as
//! `tool_result` blocks opening the next user message. Transport, retries and bounds are
//! `http`'s; the streamed form's events are read in `anthropic_stream`.

use async_trait::async_trait;
use bastion_core::tools::ToolName;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Map, Value, json};

use super::http::{
    ApiKey, Endpoint, KeyHeader, ProviderSettings, answer, from_first_user, join_path, shape_error,
    unanswerable,
};
use super::{
    Completion, CompletionRequest, ModelToolCall, PromptMessage, PromptRole, Provider,
    ProviderError, TextSink, Usage,
};

/// The API version this mapping is written against.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// `max_tokens` is required by the Messages API; this is sent when `LLM_MAX_TOKENS` is unset.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

#[derive(Debug, Clone)]
pub struct AnthropicProvider {
    endpoint: Endpoint,
    max_tokens: u32,
}

impl AnthropicProvider {
    pub fn new(settings: ProviderSettings) -> Result<Self, ProviderError> {
        let url = join_path(&settings.base_url, "/v1/messages");
        let version = (
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        Ok(Self {
            endpoint: Endpoint::new(&settings, url, KeyHeader::XApiKey, vec![version])?,
            max_tokens: settings.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        })
    }

    /// The handle a secret refresh stores a new key through.
    pub fn api_key(&self) -> ApiKey {
        self.endpoint.api_key()
    }
}

/// The request body: system lines joined into the top-level `system`, the rest as strictly
/// alternating user/assistant messages of content blocks, and `tools` only when some are
/// offered (or, with `tool_choice` none, when earlier steps are replayed).
pub fn wire_request(request: &CompletionRequest, max_tokens: u32) -> Result<Value, ProviderError> {
    let mut system = Vec::new();
    let mut messages: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for line in from_first_user(&request.messages) {
        let (role, blocks) = match line.role {
            PromptRole::System => {
                system.push(line.content.as_str());
                continue;
            }
            PromptRole::User => ("user", text_block(&line.content).into_iter().collect()),
            PromptRole::Assistant => ("assistant", assistant_blocks(line)),
            PromptRole::Tool => {
                let (id, _name) = line.answers.as_ref().ok_or_else(unanswerable)?;
                ("user", vec![tool_result(id, &line.content)])
            }
        };
        if blocks.is_empty() {
            continue;
        }
        // Adjacent lines of one role become one message: the API wants strict alternation,
        // and a run of tool results must be one user message.
        match messages.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => messages.push((role, blocks)),
        }
    }
    let messages: Vec<Value> = messages
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    let mut body = json!({
        "model": request.model,
        "max_tokens": max_tokens,
        "messages": messages,
    });
    let system: Vec<&str> = system.into_iter().filter(|s| !s.is_empty()).collect();
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    if !request.tools.is_empty() {
        body["tools"] = Value::Array(request.tools.iter().map(|t| wire_tool(*t)).collect());
    } else if carries_tool_blocks(&body["messages"]) {
        // The API refuses tool_use/tool_result blocks in a request that defines no tools, so
        // a turn offered none that replays earlier steps defines them and forbids their use.
        body["tools"] = Value::Array(ToolName::ALL.iter().map(|t| wire_tool(*t)).collect());
        body["tool_choice"] = json!({"type": "none"});
    }
    Ok(body)
}

fn carries_tool_blocks(messages: &Value) -> bool {
    messages.as_array().is_some_and(|list| {
        list.iter()
            .filter_map(|m| m["content"].as_array())
            .flatten()
            .any(|b| b["type"] == "tool_use" || b["type"] == "tool_result")
    })
}

fn wire_tool(tool: ToolName) -> Value {
    json!({
        "name": tool.as_str(),
        "description": tool.description(),
        "input_schema": tool.schema(),
    })
}

/// A result block; one whose JSON says `"ok": false` is flagged `is_error`, as the API lets a
/// client tell the model that the call failed.
fn tool_result(id: &str, content: &str) -> Value {
    let mut block = json!({"type": "tool_result", "tool_use_id": id, "content": content});
    let failed = serde_json::from_str::<Value>(content)
        .is_ok_and(|v| v.get("ok") == Some(&Value::Bool(false)));
    if failed {
        block["is_error"] = Value::Bool(true);
    }
    block
}

/// The API refuses empty text blocks.
fn text_block(text: &str) -> Option<Value> {
    (!text.is_empty()).then(|| json!({"type": "text", "text": text}))
}

/// The text (when there is any), then each call as `tool_use`. The argument text becomes the
/// `input` object; text that is not a JSON object (the model's own mistake, already answered
/// with an error result) is sent as `{}`, since `input` must be an object.
fn assistant_blocks(line: &PromptMessage) -> Vec<Value> {
    let mut blocks: Vec<Value> = text_block(&line.content).into_iter().collect();
    for call in &line.tool_calls {
        let input = match serde_json::from_str::<Value>(&call.arguments) {
            Ok(Value::Object(object)) => object,
            _ => Map::new(),
        };
        blocks.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}));
    }
    blocks
}

#[derive(serde::Deserialize)]
struct WireReply {
    content: Vec<WireBlock>,
    #[serde(default)]
    stop_reason: Option<StopReason>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlock {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    /// Blocks this client never asks for (thinking, server tools): skipped.
    #[serde(other)]
    Other,
}

/// Why the model stopped, as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum StopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    StopSequence,
    /// Reasons newer than this client (`pause_turn`, `refusal`…): the content decides.
    #[serde(other)]
    Other,
}

#[derive(serde::Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
}

/// The text blocks concatenated, each `tool_use` as a call with its `input` re-serialised as
/// text, and the usage. An answer needs text or a call; a `tool_use` stop without a call, or
/// calls beyond the bounds, is malformed.
pub fn parse_reply(bytes: &[u8]) -> Result<Completion, ProviderError> {
    let reply: WireReply =
        serde_json::from_slice(bytes).map_err(|e| shape_error("a message", &e))?;
    let mut content = String::new();
    let mut tool_calls = Vec::new();
    for block in reply.content {
        match block {
            WireBlock::Text { text } => content.push_str(&text),
            WireBlock::ToolUse { id, name, input } => tool_calls.push(ModelToolCall {
                id,
                name,
                arguments: input.to_string(),
            }),
            WireBlock::Other => {}
        }
    }
    check_tool_stop(reply.stop_reason, &tool_calls)?;
    let usage = reply.usage.map_or(Usage::default(), |u| Usage {
        prompt_tokens: u.input_tokens,
        completion_tokens: u.output_tokens,
    });
    answer(content, tool_calls, usage)
}

/// A `tool_use` stop must come with a call, buffered or streamed.
pub(super) fn check_tool_stop(
    stop: Option<StopReason>,
    tool_calls: &[ModelToolCall],
) -> Result<(), ProviderError> {
    if stop == Some(StopReason::ToolUse) && tool_calls.is_empty() {
        return Err(ProviderError::Malformed(
            "stopped for tool use without a tool_use block".to_owned(),
        ));
    }
    Ok(())
}

#[async_trait]
impl Provider for AnthropicProvider {
    fn name(&self) -> &'static str {
        "anthropic"
    }

    async fn complete(&self, request: &CompletionRequest) -> Result<Completion, ProviderError> {
        let body = wire_request(request, self.max_tokens)?;
        parse_reply(&self.endpoint.post(&body).await?)
    }

    async fn stream(
        &self,
        request: &CompletionRequest,
        sink: &mut dyn TextSink,
    ) -> Result<Completion, ProviderError> {
        let mut body = wire_request(request, self.max_tokens)?;
        body["stream"] = json!(true);
        let stream = self.endpoint.post_stream(&body).await?;
        super::http::read_stream::<super::anthropic_stream::Assembly>(stream, sink).await
    }
}

#[cfg(test)]
#[path = "anthropic_tests.rs"]
mod tests;
