//! The OpenAI-compatible Chat Completions format (OpenAI, OpenRouter, Ollama, vLLM…) with
//! tools: `POST <base>/chat/completions`, the key as `Authorization: Bearer`, tools as
//! `function` definitions, the model's calls in `message.tool_calls` (arguments as JSON text)
//! and their results as `tool` messages. Transport, retries and bounds are `http`'s; the
//! streamed form's chunks are read in `openai_stream`.

use async_trait::async_trait;
use bastion_core::tools::ToolName;
use serde_json::{Value, json};

use super::http::{
    Endpoint, KeyHeader, ProviderSettings, answer, from_first_user, join_path, shape_error,
    unanswerable,
};
use super::{
    Completion, CompletionRequest, ModelToolCall, PromptMessage, PromptRole, Provider,
    ProviderError, TextSink, Usage,
};

pub use super::http::ApiKey;

/// The settings of this format: the shared ones (the name is kept for existing callers).
pub type OpenAiSettings = ProviderSettings;

#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    endpoint: Endpoint,
    /// Sent as `max_tokens` only when `LLM_MAX_TOKENS` was set: OpenAI's newer models refuse
    /// the field, and every compatible server has its own sensible default.
    max_tokens: Option<u32>,
}

impl OpenAiProvider {
    pub fn new(settings: OpenAiSettings) -> Result<Self, ProviderError> {
        let url = join_path(&settings.base_url, "/chat/completions");
        Ok(Self {
            endpoint: Endpoint::new(&settings, url, KeyHeader::Bearer, Vec::new())?,
            max_tokens: settings.max_tokens,
        })
    }

    /// The handle a secret refresh stores a new key through.
    pub fn api_key(&self) -> ApiKey {
        self.endpoint.api_key()
    }
}

/// The request body: the model, the prompt from its first user line, and `tools` only when
/// some are offered (an empty list is refused by the API).
pub fn wire_request(
    request: &CompletionRequest,
    max_tokens: Option<u32>,
) -> Result<Value, ProviderError> {
    let messages = from_first_user(&request.messages)
        .map(wire_line)
        .collect::<Result<Vec<_>, _>>()?;
    let mut body = json!({
        "model": request.model,
        "messages": messages,
        "stream": false,
    });
    if !request.tools.is_empty() {
        body["tools"] = Value::Array(request.tools.iter().map(|t| wire_tool(*t)).collect());
    }
    if let Some(n) = max_tokens {
        body["max_tokens"] = json!(n);
    }
    Ok(body)
}

fn wire_tool(tool: ToolName) -> Value {
    json!({
        "type": "function",
        "function": {
            "name": tool.as_str(),
            "description": tool.description(),
            "parameters": tool.schema(),
        }
    })
}

fn wire_line(m: &PromptMessage) -> Result<Value, ProviderError> {
    Ok(match m.role {
        PromptRole::System => json!({"role": "system", "content": m.content}),
        PromptRole::User => json!({"role": "user", "content": m.content}),
        PromptRole::Assistant if m.tool_calls.is_empty() => {
            json!({"role": "assistant", "content": m.content})
        }
        PromptRole::Assistant => {
            let calls: Vec<Value> = m
                .tool_calls
                .iter()
                .map(|c| {
                    json!({
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments},
                    })
                })
                .collect();
            // The API's spelling of "no text, only calls" is a null content.
            let content = if m.content.is_empty() {
                Value::Null
            } else {
                Value::String(m.content.clone())
            };
            json!({"role": "assistant", "content": content, "tool_calls": calls})
        }
        PromptRole::Tool => {
            let (id, _name) = m.answers.as_ref().ok_or_else(unanswerable)?;
            json!({"role": "tool", "tool_call_id": id, "content": m.content})
        }
    })
}

#[derive(serde::Deserialize)]
struct WireReply {
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(serde::Deserialize)]
struct WireChoice {
    message: WireMessage,
}

#[derive(serde::Deserialize)]
struct WireMessage {
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(serde::Deserialize)]
struct WireToolCall {
    id: String,
    /// Always `function` from OpenAI; some compatible servers leave it out.
    #[serde(default, rename = "type")]
    kind: Option<String>,
    function: WireFunction,
}

#[derive(serde::Deserialize)]
struct WireFunction {
    name: String,
    /// JSON text, kept as text: the loop parses it strictly.
    arguments: String,
}

#[derive(serde::Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// The first choice's text and tool calls, and the usage. An answer needs text or at least
/// one call; anything else, or calls beyond the bounds, is malformed.
pub fn parse_reply(bytes: &[u8]) -> Result<Completion, ProviderError> {
    let reply: WireReply =
        serde_json::from_slice(bytes).map_err(|e| shape_error("a chat completion", &e))?;
    let message = reply
        .choices
        .into_iter()
        .next()
        .map(|c| c.message)
        .ok_or_else(|| ProviderError::Malformed("no assistant content".to_owned()))?;
    let mut tool_calls = Vec::new();
    for (i, call) in message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        if call.kind.as_deref().is_some_and(|k| k != "function") {
            return Err(ProviderError::Malformed(format!(
                "tool call {i} is not a function call"
            )));
        }
        tool_calls.push(ModelToolCall {
            id: call.id,
            name: call.function.name,
            arguments: call.function.arguments,
        });
    }
    let usage = reply.usage.map_or(Usage::default(), |u| Usage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
    });
    answer(message.content.unwrap_or_default(), tool_calls, usage)
}

#[async_trait]
impl Provider for OpenAiProvider {
    fn name(&self) -> &'static str {
        "openai-compatible"
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
        body["stream_options"] = json!({"include_usage": true});
        let stream = self.endpoint.post_stream(&body).await?;
        super::http::read_stream::<super::openai_stream::Assembly>(stream, sink).await
    }
}

#[cfg(test)]
#[path = "openai_tests.rs"]
mod tests;
