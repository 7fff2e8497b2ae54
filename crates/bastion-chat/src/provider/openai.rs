//! The OpenAI-compatible Chat Completions client (OpenAI, OpenRouter, Ollama, vLLM…): rustls
//! on aws-lc, a 5 s connect timeout, one overall deadline that retries (at most 2, on 429 and
//! 5xx) must fit inside, and a capped reply size.

use std::time::Duration;

use async_trait::async_trait;
use bastion_core::config::Live;
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::{Completion, CompletionRequest, PromptMessage, Provider, ProviderError, Usage};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Retries after the first attempt, only for 429 and 5xx.
pub const MAX_RETRIES: u32 = 2;
/// A reply larger than this is refused as malformed.
const MAX_REPLY_BYTES: usize = 1024 * 1024;

/// How the client reaches the provider.
#[derive(Clone)]
pub struct OpenAiSettings {
    /// e.g. `https://api.openai.com/v1`; `/chat/completions` is appended.
    pub base_url: Url,
    pub api_key: Option<SecretString>,
    /// The whole call, retries and backoff included, ends by then.
    pub deadline: Duration,
    /// First backoff; it doubles for the second retry.
    pub backoff: Duration,
}

impl std::fmt::Debug for OpenAiSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiSettings")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("deadline", &self.deadline)
            .field("backoff", &self.backoff)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    client: reqwest::Client,
    endpoint: Url,
    settings: OpenAiSettings,
    /// Starts as `settings.api_key`; a secret refresh may replace it (see [`Self::api_key`]).
    api_key: ApiKey,
}

/// The provider's API key, swappable by a secret refresh while requests run.
pub type ApiKey = Live<Option<SecretString>>;

impl OpenAiProvider {
    /// Builds the client once (at start-up) over the process's one trust store and TLS stack
    /// (aws-lc), so no root certificate is read again for it.
    pub fn new(settings: OpenAiSettings) -> Result<Self, ProviderError> {
        let endpoint = chat_completions_url(&settings.base_url)?;
        let tls = bastion_core::tls::roots()
            .client_config()
            .map_err(|e| ProviderError::Transport(format!("TLS could not be configured: {e}")))?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(CONNECT_TIMEOUT)
            // A redirect would carry the key to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("bastion-chat/0.1")
            .build()
            .map_err(|e| ProviderError::Transport(format!("client could not be built: {e}")))?;
        Ok(Self {
            client,
            endpoint,
            api_key: Live::new(settings.api_key.clone()),
            settings,
        })
    }

    /// The handle a secret refresh stores a new key through.
    pub fn api_key(&self) -> ApiKey {
        self.api_key.clone()
    }

    async fn attempt(
        &self,
        body: &WireRequest<'_>,
        budget: Duration,
    ) -> Result<(StatusCode, Vec<u8>), ProviderError> {
        let mut req = self.client.post(self.endpoint.clone()).json(body);
        if let Some(key) = self.api_key.load().as_ref() {
            req = req.bearer_auth(key.expose_secret());
        }
        let call = async {
            let mut res = req.send().await.map_err(transport)?;
            let status = res.status();
            let mut bytes = Vec::new();
            while let Some(chunk) = res.chunk().await.map_err(transport)? {
                if bytes.len() + chunk.len() > MAX_REPLY_BYTES {
                    return Err(ProviderError::Malformed("reply exceeds 1 MiB".to_owned()));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok((status, bytes))
        };
        match tokio::time::timeout(budget, call).await {
            Ok(result) => result,
            Err(_) => Err(ProviderError::Timeout),
        }
    }
}

fn transport(e: reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        return ProviderError::Timeout;
    }
    // Without the URL: it is configuration, and error texts reach logs.
    ProviderError::Transport(e.without_url().to_string())
}

/// `<base>/chat/completions`, keeping any path prefix such as `/v1` or `/api/v1`.
fn chat_completions_url(base: &Url) -> Result<Url, ProviderError> {
    let mut url = base.clone();
    let path = format!("{}/chat/completions", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

#[derive(serde::Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: Vec<WireLine<'a>>,
    stream: bool,
}

#[derive(serde::Serialize)]
struct WireLine<'a> {
    role: super::PromptRole,
    content: &'a str,
}

fn wire_lines(messages: &[PromptMessage]) -> Vec<WireLine<'_>> {
    messages
        .iter()
        .map(|m| WireLine {
            role: m.role,
            content: &m.content,
        })
        .collect()
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
}

#[derive(serde::Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// The first choice's text and the usage; anything else is malformed.
fn parse_reply(bytes: &[u8]) -> Result<Completion, ProviderError> {
    // Only the error's class and position: serde's message can quote the reply, which may
    // hold conversation text, and this string is logged.
    let reply: WireReply = serde_json::from_slice(bytes).map_err(|e| {
        ProviderError::Malformed(format!(
            "not a chat completion ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    let content = reply
        .choices
        .into_iter()
        .next()
        .and_then(|c| c.message.content)
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| ProviderError::Malformed("no assistant content".to_owned()))?;
    let usage = reply.usage.map_or(Usage::default(), |u| Usage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
    });
    Ok(Completion {
        content,
        tool_calls: Vec::new(),
        usage,
    })
}

fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

#[async_trait]
impl Provider for OpenAiProvider {
    fn name(&self) -> &'static str {
        "openai-compatible"
    }

    async fn complete(&self, request: &CompletionRequest) -> Result<Completion, ProviderError> {
        let deadline = Instant::now() + self.settings.deadline;
        let body = WireRequest {
            model: &request.model,
            messages: wire_lines(&request.messages),
            stream: false,
        };
        let mut retries = 0;
        loop {
            let budget = deadline.saturating_duration_since(Instant::now());
            if budget.is_zero() {
                return Err(ProviderError::Timeout);
            }
            let (status, bytes) = self.attempt(&body, budget).await?;
            if status.is_success() {
                return parse_reply(&bytes);
            }
            if !retryable(status) || retries >= MAX_RETRIES {
                return Err(ProviderError::Status(status.as_u16()));
            }
            let pause = self.settings.backoff.saturating_mul(1 << retries);
            // A retry that cannot finish before the deadline is not worth starting.
            if Instant::now() + pause >= deadline {
                return Err(ProviderError::Status(status.as_u16()));
            }
            tokio::time::sleep(pause).await;
            retries += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_keeps_the_base_path() {
        for (base, want) in [
            (
                "https://api.openai.com/v1",
                "https://api.openai.com/v1/chat/completions",
            ),
            (
                "https://openrouter.ai/api/v1/",
                "https://openrouter.ai/api/v1/chat/completions",
            ),
            (
                "http://127.0.0.1:11434/v1?x=1",
                "http://127.0.0.1:11434/v1/chat/completions",
            ),
        ] {
            let url = chat_completions_url(&Url::parse(base).unwrap()).unwrap();
            assert_eq!(url.as_str(), want);
        }
    }

    #[test]
    fn replies_without_content_are_malformed() {
        for bad in [
            &b"not json"[..],
            br#"{"choices":[]}"#,
            br#"{"choices":[{"message":{"content":null}}]}"#,
            br#"{"choices":[{"message":{"content":"  "}}]}"#,
            br#"{"error":{"message":"quota"}}"#,
        ] {
            assert!(
                matches!(parse_reply(bad), Err(ProviderError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let ok = parse_reply(
            br#"{"choices":[{"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
        )
        .unwrap();
        assert_eq!(ok.content, "hi");
        assert_eq!(
            ok.usage,
            Usage {
                prompt_tokens: 3,
                completion_tokens: 1
            }
        );
    }

    #[test]
    fn a_malformed_reply_error_does_not_quote_the_reply() {
        let err = parse_reply(br#"{"choices":"my secret diary"}"#).unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("secret"), "{text}");
        assert_eq!(
            text,
            "provider reply is malformed: not a chat completion (Data error at line 1 column 28)"
        );
    }

    #[test]
    fn settings_debug_redacts_the_key() {
        let s = OpenAiSettings {
            base_url: Url::parse("https://api.example.com/v1").unwrap(),
            api_key: Some(SecretString::from("sk-live-123")),
            deadline: Duration::from_secs(25),
            backoff: Duration::from_millis(200),
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("sk-live-123"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}
