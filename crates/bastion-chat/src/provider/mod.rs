//! The provider port: one Chat Completions call, and the two adapters behind it (an
//! OpenAI-compatible HTTPS client, and the local-only `echo` provider).

pub mod echo;
pub mod openai;

use async_trait::async_trait;

pub use echo::EchoProvider;
pub use openai::OpenAiProvider;

/// Who said a prompt line, in the wire's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptRole {
    System,
    User,
    Assistant,
}

/// One line of the prompt. `Debug` shows only the length: content is user data.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct PromptMessage {
    pub role: PromptRole,
    pub content: String,
}

impl std::fmt::Debug for PromptMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}({} chars)", self.role, self.content.chars().count())
    }
}

/// What the engine asks of a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletionRequest {
    pub model: String,
    pub messages: Vec<PromptMessage>,
}

/// Token counts as the provider reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// The assistant's answer.
#[derive(Clone, PartialEq, Eq)]
pub struct Completion {
    pub content: String,
    pub usage: Usage,
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completion")
            .field("chars", &self.content.chars().count())
            .field("usage", &self.usage)
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

#[async_trait]
pub trait Provider: Send + Sync {
    /// A short label for logs and start-up messages.
    fn name(&self) -> &'static str;
    async fn complete(&self, request: &CompletionRequest) -> Result<Completion, ProviderError>;
}
