//! The provider port: one model call, and the adapters behind it (the OpenAI-compatible Chat
//! Completions format, the Anthropic Messages format, both over the shared HTTPS plumbing in
//! `http`, and the local-only `echo` provider), and the `failover` wrapper that puts a second
//! provider behind the first.

pub mod anthropic;
pub mod breaker;
pub mod echo;
pub mod failover;
pub mod failover_metric;
pub mod http;
pub mod openai;

use async_trait::async_trait;
use bastion_core::tools::ToolName;

pub use anthropic::AnthropicProvider;
pub use echo::EchoProvider;
pub use failover::FailoverProvider;
pub use http::{ApiKey, ProviderSettings};
pub use openai::OpenAiProvider;

/// Who said a prompt line, in the wire's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptRole {
    System,
    User,
    Assistant,
    /// A tool call's result (OpenAI's `tool` message, Anthropic's `tool_result` block).
    Tool,
}

/// A tool call as the model asked for it: its id (the provider's, echoed back with the
/// result), the tool's name and the argument text, all untrusted. Anthropic's `input` object
/// is carried as its JSON text, so both formats look the same to the loop.
#[derive(Clone, PartialEq, Eq)]
pub struct ModelToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

impl std::fmt::Debug for ModelToolCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelToolCall")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("argument_bytes", &self.arguments.len())
            .finish()
    }
}

/// One line of the prompt. `Debug` shows only sizes: content is user data.
#[derive(Clone, PartialEq, Eq)]
pub struct PromptMessage {
    pub role: PromptRole,
    /// The text; for `Tool`, the result's JSON text.
    pub content: String,
    /// `Assistant` only: the tool calls it made, in order (empty for a plain answer).
    pub tool_calls: Vec<ModelToolCall>,
    /// `Tool` only: the id and tool name of the call this result answers.
    pub answers: Option<(String, String)>,
}

impl PromptMessage {
    pub fn system(content: impl Into<String>) -> Self {
        Self::text(PromptRole::System, content)
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::text(PromptRole::User, content)
    }

    /// An assistant line: its text (possibly empty) and the calls it made.
    pub fn assistant(content: impl Into<String>, tool_calls: Vec<ModelToolCall>) -> Self {
        Self {
            role: PromptRole::Assistant,
            content: content.into(),
            tool_calls,
            answers: None,
        }
    }

    /// The result of call `id` of tool `name`, as JSON text.
    pub fn tool_result(id: impl Into<String>, name: impl Into<String>, content: String) -> Self {
        Self {
            role: PromptRole::Tool,
            content,
            tool_calls: Vec::new(),
            answers: Some((id.into(), name.into())),
        }
    }

    fn text(role: PromptRole, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            answers: None,
        }
    }
}

impl std::fmt::Debug for PromptMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?}({} chars, {} tool calls)",
            self.role,
            self.content.chars().count(),
            self.tool_calls.len()
        )
    }
}

/// What the engine asks of a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletionRequest {
    pub model: String,
    pub messages: Vec<PromptMessage>,
    /// The tools the model may call on this request (empty: none are offered).
    pub tools: Vec<ToolName>,
}

/// Token counts as the provider reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Usage {
    /// Both counts summed, saturating: a turn's usage is every model call's.
    pub fn plus(self, other: Usage) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens.saturating_add(other.prompt_tokens),
            completion_tokens: self
                .completion_tokens
                .saturating_add(other.completion_tokens),
        }
    }
}

/// Which configured provider answered a model call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServedBy {
    /// `LLM_PROVIDER` at `LLM_BASE_URL`.
    #[default]
    Primary,
    /// `LLM_FALLBACK_PROVIDER` at `LLM_FALLBACK_BASE_URL`, after the primary failed before
    /// any output or while its circuit breaker was open.
    Fallback,
}

impl ServedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            ServedBy::Primary => "primary",
            ServedBy::Fallback => "fallback",
        }
    }
}

/// The assistant's answer: text (possibly empty when it calls tools) and the tool calls it
/// asks for, in order.
#[derive(Clone, PartialEq, Eq)]
pub struct Completion {
    pub content: String,
    pub tool_calls: Vec<ModelToolCall>,
    pub usage: Usage,
    /// Set by the failover wrapper; every adapter answers as `Primary`.
    pub served_by: ServedBy,
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completion")
            .field("chars", &self.content.chars().count())
            .field("tool_calls", &self.tool_calls)
            .field("usage", &self.usage)
            .field("served_by", &self.served_by)
            .finish()
    }
}

/// Why a completion failed. The texts name statuses and causes, never prompt or key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// No answer within the overall deadline (retries included).
    #[error("provider did not answer within the deadline")]
    Timeout,
    /// A non-success status after any retries.
    #[error("provider answered HTTP {0}")]
    Status(u16),
    /// A success status whose body is not a usable completion.
    #[error("provider reply is malformed: {0}")]
    Malformed(String),
    /// The request could not be sent or its reply not read.
    #[error("provider unreachable: {0}")]
    Transport(String),
}

/// Where a streamed answer's text goes as the model writes it. The sink never fails: a
/// client that went away is noticed by the agent loop, which then drops the model call.
#[async_trait]
pub trait TextSink: Send {
    /// One piece of the answer's text, in order; never empty.
    async fn text(&mut self, chunk: &str);
}

/// A sink that keeps nothing: a buffered turn.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSink;

#[async_trait]
impl TextSink for NoSink {
    async fn text(&mut self, _chunk: &str) {}
}

#[async_trait]
pub trait Provider: Send + Sync {
    /// A short label for logs and start-up messages.
    fn name(&self) -> &'static str;
    async fn complete(&self, request: &CompletionRequest) -> Result<Completion, ProviderError>;

    /// The same model call, streamed: each piece of text goes to `sink` as it arrives, and the
    /// whole completion (text, assembled tool calls, usage) is returned at the end. An adapter
    /// without a streamed form answers buffered and hands its text over in one piece.
    async fn stream(
        &self,
        request: &CompletionRequest,
        sink: &mut dyn TextSink,
    ) -> Result<Completion, ProviderError> {
        let completion = self.complete(request).await?;
        if !completion.content.is_empty() {
            sink.text(&completion.content).await;
        }
        Ok(completion)
    }
}
