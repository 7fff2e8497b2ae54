//! The `echo` provider: answers by quoting the user, so `bastion-local` works with no model.
//! It is for the local server only and refuses to exist inside AWS Lambda.

use async_trait::async_trait;
use bastion_core::config::{ConfigError, Env};

use super::{Completion, CompletionRequest, PromptRole, Provider, ProviderError, Usage};

/// Set by the Lambda runtime in every function's environment.
const LAMBDA_MARKER: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// Every answer starts with this, so no one mistakes it for a model.
pub const ECHO_PREFIX: &str = "[echo provider: no LLM configured] You said: ";

#[derive(Debug, Clone)]
pub struct EchoProvider(());

impl EchoProvider {
    /// Refuses when the environment is a Lambda function's: production never echoes.
    pub fn new(env: &dyn Env) -> Result<Self, ConfigError> {
        if env.get(LAMBDA_MARKER).is_some() {
            return Err(ConfigError::new(
                "LLM_BASE_URL",
                "is required in AWS Lambda; the echo provider is for bastion-local only",
            ));
        }
        Ok(Self(()))
    }
}

/// A rough token estimate (4 characters per token), only so echo turns record some usage.
fn estimate_tokens(text: &str) -> u64 {
    u64::try_from(text.chars().count().div_ceil(4)).unwrap_or(u64::MAX)
}

#[async_trait]
impl Provider for EchoProvider {
    fn name(&self) -> &'static str {
        "echo"
    }

    async fn complete(&self, request: &CompletionRequest) -> Result<Completion, ProviderError> {
        let last = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == PromptRole::User)
            .ok_or_else(|| ProviderError::Malformed("no user message to echo".to_owned()))?;
        let content = format!("{ECHO_PREFIX}{}", last.content);
        let prompt: u64 = request
            .messages
            .iter()
            .map(|m| estimate_tokens(&m.content))
            .sum();
        Ok(Completion {
            tool_calls: Vec::new(),
            usage: Usage {
                prompt_tokens: prompt,
                completion_tokens: estimate_tokens(&content),
            },
            content,
            served_by: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::provider::PromptMessage;

    #[test]
    fn the_echo_provider_refuses_to_be_built_inside_lambda() {
        let lambda: HashMap<String, String> =
            [(LAMBDA_MARKER.to_owned(), "bastion-chat".to_owned())].into();
        let err = EchoProvider::new(&lambda).unwrap_err();
        assert_eq!(err.var, "LLM_BASE_URL");
        assert!(EchoProvider::new(&HashMap::new()).is_ok());
    }

    #[tokio::test]
    async fn the_echo_provider_quotes_the_last_user_message_with_its_label() {
        let echo = EchoProvider::new(&HashMap::<String, String>::new()).unwrap();
        let line = |role, content: &str| PromptMessage {
            role,
            content: content.to_owned(),
            tool_calls: Vec::new(),
            answers: None,
        };
        let reply = echo
            .complete(&CompletionRequest {
                model: "echo".to_owned(),
                messages: vec![
                    line(PromptRole::System, "be nice"),
                    line(PromptRole::User, "first"),
                    line(PromptRole::Assistant, "ok"),
                    line(PromptRole::User, "hello"),
                ],
                tools: Vec::new(),
            })
            .await
            .unwrap();
        assert_eq!(reply.content, format!("{ECHO_PREFIX}hello"));
        assert_eq!(reply.usage.prompt_tokens, 2 + 2 + 1 + 2);
    }
}
