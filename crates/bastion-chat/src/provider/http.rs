//! What both wire formats share: the HTTPS plumbing (one client over the process's trust
//! store, rustls on aws-lc, a 5 s connect timeout, no redirects, a capped reply size, and one
//! overall deadline that retries, at most 2 on 429 and 5xx with Anthropic's 529 included, and
//! their backoff must fit inside), a streamed reply read as server-sent events (retried only
//! before its body, an idle timeout on every read, the same 1 MiB cap over the whole stream),
//! the bounds on the tool calls an answer may carry, and where a prompt may start. The formats
//! differ only in endpoint, headers and bodies.

use std::time::Duration;

use bastion_core::config::Live;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{RequestBuilder, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use super::ProviderError;
use super::sse::{SseDecoder, SseEvent};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Retries after the first attempt, only for 429 and 5xx.
pub const MAX_RETRIES: u32 = 2;
/// A reply larger than this is refused as malformed; for a streamed reply, the whole stream.
pub const MAX_REPLY_BYTES: usize = 1024 * 1024;
/// How long a streamed reply may go without a byte (`LLM_STREAM_IDLE_SECS`'s default).
pub const DEFAULT_STREAM_IDLE: Duration = Duration::from_secs(20);

/// The provider's API key, swappable by a secret refresh while requests run.
pub type ApiKey = Live<Option<SecretString>>;

/// How a client reaches its provider; the same for both formats.
#[derive(Clone)]
pub struct ProviderSettings {
    /// The API base, e.g. `https://api.openai.com/v1` or `https://api.anthropic.com`; each
    /// format appends its own path.
    pub base_url: Url,
    pub api_key: Option<SecretString>,
    /// The whole call, retries and backoff included, ends by then.
    pub deadline: Duration,
    /// First backoff; it doubles for the second retry.
    pub backoff: Duration,
    /// `LLM_MAX_TOKENS` when it was set; Anthropic requires a value and defaults it.
    pub max_tokens: Option<u32>,
    /// A streamed reply that sends nothing for this long has stalled (`deadline` covers the
    /// wait for its response headers).
    pub stream_idle: Duration,
}

impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("base_url", &self.base_url.as_str())
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("deadline", &self.deadline)
            .field("backoff", &self.backoff)
            .field("max_tokens", &self.max_tokens)
            .field("stream_idle", &self.stream_idle)
            .finish()
    }
}

/// How the key travels: OpenAI's `Authorization: Bearer`, or Anthropic's `x-api-key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHeader {
    Bearer,
    XApiKey,
}

/// One provider endpoint with its key, headers and retry budget.
#[derive(Debug, Clone)]
pub struct Endpoint {
    client: reqwest::Client,
    url: Url,
    key_header: KeyHeader,
    /// Sent on every request besides the key (e.g. `anthropic-version`).
    fixed_headers: Vec<(HeaderName, HeaderValue)>,
    deadline: Duration,
    backoff: Duration,
    stream_idle: Duration,
    api_key: ApiKey,
}

impl Endpoint {
    /// Builds the client once (at start-up) over the process's one trust store and TLS stack
    /// (aws-lc), so no root certificate is read again for it.
    pub fn new(
        settings: &ProviderSettings,
        url: Url,
        key_header: KeyHeader,
        fixed_headers: Vec<(HeaderName, HeaderValue)>,
    ) -> Result<Self, ProviderError> {
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
            url,
            key_header,
            fixed_headers,
            deadline: settings.deadline,
            backoff: settings.backoff,
            stream_idle: settings.stream_idle,
            api_key: Live::new(settings.api_key.clone()),
        })
    }

    /// The handle a secret refresh stores a new key through.
    pub fn api_key(&self) -> ApiKey {
        self.api_key.clone()
    }

    /// POSTs `body` until a success (its bytes), a status that is not worth retrying, the
    /// retries running out, or the deadline.
    pub async fn post(&self, body: &serde_json::Value) -> Result<Vec<u8>, ProviderError> {
        let deadline = Instant::now() + self.deadline;
        let mut retries = 0;
        loop {
            let budget = deadline.saturating_duration_since(Instant::now());
            if budget.is_zero() {
                return Err(ProviderError::Timeout);
            }
            let (status, bytes) = self.attempt(body, budget).await?;
            if status.is_success() {
                return Ok(bytes);
            }
            self.before_retry(status, &mut retries, deadline).await?;
        }
    }

    /// POSTs `body` like [`Self::post`] until a success status, and hands back that response
    /// with its body unread: retries happen only before any byte of a success was read. The
    /// deadline covers the wait for the headers; each read of the body then has `stream_idle`.
    pub async fn post_stream(&self, body: &serde_json::Value) -> Result<Streamed, ProviderError> {
        let deadline = Instant::now() + self.deadline;
        let mut retries = 0;
        loop {
            let budget = deadline.saturating_duration_since(Instant::now());
            if budget.is_zero() {
                return Err(ProviderError::Timeout);
            }
            let req = self.request(body)?;
            let res = match tokio::time::timeout(budget, req.send()).await {
                Ok(res) => res.map_err(transport)?,
                Err(_) => return Err(ProviderError::Timeout),
            };
            let status = res.status();
            if status.is_success() {
                return Ok(Streamed::new(res, self.stream_idle));
            }
            // The error body is read (capped, in the same budget) so the connection can be
            // reused, and never shown: it may quote the prompt.
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, read_capped(res)).await {
                Ok(read) => drop(read?),
                Err(_) => return Err(ProviderError::Timeout),
            }
            self.before_retry(status, &mut retries, deadline).await?;
        }
    }

    /// After a failed status: `Status` when it is not worth retrying, the retries ran out or
    /// the backoff would pass the deadline; otherwise the backoff's pause.
    async fn before_retry(
        &self,
        status: StatusCode,
        retries: &mut u32,
        deadline: Instant,
    ) -> Result<(), ProviderError> {
        if !retryable(status) || *retries >= MAX_RETRIES {
            return Err(ProviderError::Status(status.as_u16()));
        }
        let pause = self.backoff.saturating_mul(1 << *retries);
        // A retry that cannot finish before the deadline is not worth starting.
        if Instant::now() + pause >= deadline {
            return Err(ProviderError::Status(status.as_u16()));
        }
        tokio::time::sleep(pause).await;
        *retries += 1;
        Ok(())
    }

    fn request(&self, body: &serde_json::Value) -> Result<RequestBuilder, ProviderError> {
        let mut req = self.client.post(self.url.clone()).json(body);
        for (name, value) in &self.fixed_headers {
            req = req.header(name, value);
        }
        if let Some(key) = self.api_key.load().as_ref() {
            req = match self.key_header {
                KeyHeader::Bearer => req.bearer_auth(key.expose_secret()),
                KeyHeader::XApiKey => {
                    // Never the key itself in the error: it is logged.
                    let mut value = HeaderValue::from_str(key.expose_secret()).map_err(|_| {
                        ProviderError::Transport("the API key is not a valid header value".into())
                    })?;
                    value.set_sensitive(true);
                    req.header("x-api-key", value)
                }
            };
        }
        Ok(req)
    }

    async fn attempt(
        &self,
        body: &serde_json::Value,
        budget: Duration,
    ) -> Result<(StatusCode, Vec<u8>), ProviderError> {
        let req = self.request(body)?;
        let call = async {
            let res = req.send().await.map_err(transport)?;
            let status = res.status();
            Ok((status, read_capped(res).await?))
        };
        match tokio::time::timeout(budget, call).await {
            Ok(result) => result,
            Err(_) => Err(ProviderError::Timeout),
        }
    }
}

/// The whole body, refused beyond 1 MiB.
async fn read_capped(mut res: reqwest::Response) -> Result<Vec<u8>, ProviderError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(transport)? {
        if bytes.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err(too_big());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn too_big() -> ProviderError {
    ProviderError::Malformed("reply exceeds 1 MiB".to_owned())
}

/// What one event of a streamed answer did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Text for the sink (never empty).
    Text(String),
    Nothing,
    Done,
}

/// How a wire format reads its stream: each event's data in turn, then the completion.
pub(super) trait Assemble: Default {
    /// The event that ends the format's stream, named when a stream is cut before it.
    const END: &'static str;
    fn data(&mut self, data: &str) -> Result<Step, ProviderError>;
    fn finish(self) -> Result<super::Completion, ProviderError>;
}

/// Reads `stream` to its format's end, text to `sink` as it arrives, and returns the
/// completion; a stream that ends before it is malformed.
pub(super) async fn read_stream<A: Assemble>(
    mut stream: Streamed,
    sink: &mut dyn super::TextSink,
) -> Result<super::Completion, ProviderError> {
    let mut assembly = A::default();
    while let Some(event) = stream.next_event().await? {
        match assembly.data(&event.data)? {
            Step::Text(text) => sink.text(&text).await,
            Step::Nothing => {}
            Step::Done => return assembly.finish(),
        }
    }
    Err(ProviderError::Malformed(format!(
        "stream ended before {}",
        A::END
    )))
}

/// A success response whose body is read as server-sent events, each read within the idle
/// timeout and the whole body within 1 MiB. No `Debug`: the response's would show headers
/// and URL, and nothing here is worth logging.
pub struct Streamed {
    res: reqwest::Response,
    idle: Duration,
    decoder: SseDecoder,
    read: usize,
    ready: std::collections::VecDeque<SseEvent>,
    ended: bool,
}

impl Streamed {
    fn new(res: reqwest::Response, idle: Duration) -> Self {
        Self {
            res,
            idle,
            decoder: SseDecoder::new(),
            read: 0,
            ready: std::collections::VecDeque::new(),
            ended: false,
        }
    }

    /// The next event, or `None` when the body ended between events. A body cut inside an
    /// event is malformed.
    pub async fn next_event(&mut self) -> Result<Option<SseEvent>, ProviderError> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(Some(event));
            }
            if self.ended {
                return Ok(None);
            }
            match self.chunk().await? {
                Some(chunk) => self.ready.extend(self.decoder.push(&chunk)?),
                None => {
                    self.ended = true;
                    if self.decoder.is_mid_event() {
                        return Err(ProviderError::Malformed(
                            "stream ended inside an event".to_owned(),
                        ));
                    }
                }
            }
        }
    }

    async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, ProviderError> {
        let chunk = match tokio::time::timeout(self.idle, self.res.chunk()).await {
            Ok(chunk) => chunk.map_err(transport)?,
            Err(_) => return Err(ProviderError::Timeout),
        };
        if let Some(chunk) = &chunk {
            self.read = self.read.saturating_add(chunk.len());
            if self.read > MAX_REPLY_BYTES {
                return Err(too_big());
            }
        }
        Ok(chunk)
    }
}

fn transport(e: reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        return ProviderError::Timeout;
    }
    // Without the URL: it is configuration, and error texts reach logs.
    ProviderError::Transport(e.without_url().to_string())
}

/// An error reported inside a success stream, by its type: overload, rate limit and server
/// errors as the statuses they stand for (so the failover wrapper treats them alike), any
/// other as malformed. The server's message is never kept: it may quote the prompt.
pub fn stream_error(kind: Option<&str>) -> ProviderError {
    match kind {
        Some("overloaded_error") => ProviderError::Status(529),
        Some("rate_limit_error" | "rate_limit_exceeded") => ProviderError::Status(429),
        Some("api_error" | "server_error") => ProviderError::Status(500),
        _ => ProviderError::Malformed("the stream reported an error".to_owned()),
    }
}

/// 429 and every 5xx, which covers Anthropic's 529 "overloaded".
pub fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// `base` with `suffix` appended to its path, keeping any prefix such as `/v1` or `/api/v1`
/// and dropping query and fragment.
pub fn join_path(base: &Url, suffix: &str) -> Url {
    let mut url = base.clone();
    let path = format!("{}{suffix}", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// Why a body did not parse, without serde's message: it can quote the reply, which may hold
/// conversation text, and this string is logged.
pub fn shape_error(what: &str, e: &serde_json::Error) -> ProviderError {
    ProviderError::Malformed(format!(
        "not {what} ({:?} error at line {} column {})",
        e.classify(),
        e.line(),
        e.column()
    ))
}

/// The most tool calls one answer may carry.
pub const MAX_TOOL_CALLS: usize = 64;
const MAX_CALL_ID_CHARS: usize = 256;
const MAX_TOOL_NAME_CHARS: usize = 64;

/// Checks an answer's tool calls against the bounds both formats share: at most 64, ids of 1
/// to 256 printable ASCII characters and unique, names of 1 to 64 characters. The errors
/// never quote the model's text.
pub fn check_tool_calls(calls: &[super::ModelToolCall]) -> Result<(), ProviderError> {
    if calls.len() > MAX_TOOL_CALLS {
        return Err(ProviderError::Malformed(format!(
            "{} tool calls in one answer (at most {MAX_TOOL_CALLS})",
            calls.len()
        )));
    }
    let mut seen = std::collections::HashSet::with_capacity(calls.len());
    for (i, call) in calls.iter().enumerate() {
        let id_chars = call.id.chars().count();
        if id_chars == 0
            || id_chars > MAX_CALL_ID_CHARS
            || !call.id.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(ProviderError::Malformed(format!(
                "tool call {i} has an id that is not 1 to {MAX_CALL_ID_CHARS} printable characters"
            )));
        }
        let name_chars = call.name.chars().count();
        if name_chars == 0 || name_chars > MAX_TOOL_NAME_CHARS {
            return Err(ProviderError::Malformed(format!(
                "tool call {i} has a name that is not 1 to {MAX_TOOL_NAME_CHARS} characters"
            )));
        }
        if !seen.insert(call.id.as_str()) {
            return Err(ProviderError::Malformed(format!(
                "tool call {i} repeats an earlier call's id"
            )));
        }
    }
    Ok(())
}

/// An answer as both formats accept it, buffered or streamed: its tool calls within the
/// bounds ([`check_tool_calls`]), blank text dropped, and text or at least one call.
pub fn answer(
    mut content: String,
    tool_calls: Vec<super::ModelToolCall>,
    usage: super::Usage,
) -> Result<super::Completion, ProviderError> {
    check_tool_calls(&tool_calls)?;
    if content.trim().is_empty() {
        content.clear();
    }
    if content.is_empty() && tool_calls.is_empty() {
        return Err(ProviderError::Malformed("no assistant content".to_owned()));
    }
    Ok(super::Completion {
        content,
        tool_calls,
        usage,
        served_by: super::ServedBy::Primary,
    })
}

/// A tool line without the call it answers cannot be expressed in either format.
pub fn unanswerable() -> ProviderError {
    ProviderError::Malformed("the prompt holds a tool result that names no call".to_owned())
}

/// The prompt as a provider may send it: from its first user line on. Anthropic requires a
/// user message first, and a history cut by the context budget could otherwise begin with a
/// model answer or with tool results whose calls were cut off.
pub fn from_first_user(
    messages: &[super::PromptMessage],
) -> impl Iterator<Item = &super::PromptMessage> {
    let first_user = messages
        .iter()
        .position(|m| m.role == super::PromptRole::User)
        .unwrap_or(messages.len());
    let system = messages[..first_user]
        .iter()
        .filter(|m| m.role == super::PromptRole::System);
    system.chain(messages[first_user..].iter())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ModelToolCall;

    fn call(id: &str, name: &str) -> ModelToolCall {
        ModelToolCall {
            id: id.to_owned(),
            name: name.to_owned(),
            arguments: "{}".to_owned(),
        }
    }

    #[test]
    fn paths_are_appended_to_the_base_path_without_query_or_fragment() {
        for (base, suffix, want) in [
            (
                "https://api.openai.com/v1",
                "/chat/completions",
                "https://api.openai.com/v1/chat/completions",
            ),
            (
                "https://openrouter.ai/api/v1/",
                "/chat/completions",
                "https://openrouter.ai/api/v1/chat/completions",
            ),
            (
                "http://127.0.0.1:11434/v1?x=1#f",
                "/chat/completions",
                "http://127.0.0.1:11434/v1/chat/completions",
            ),
            (
                "https://api.anthropic.com",
                "/v1/messages",
                "https://api.anthropic.com/v1/messages",
            ),
            (
                "https://gateway.example.com/anthropic/",
                "/v1/messages",
                "https://gateway.example.com/anthropic/v1/messages",
            ),
        ] {
            assert_eq!(join_path(&Url::parse(base).unwrap(), suffix).as_str(), want);
        }
    }

    #[test]
    fn statuses_worth_retrying_are_429_and_every_5xx_including_529() {
        for code in [429, 500, 502, 503, 529] {
            assert!(retryable(StatusCode::from_u16(code).unwrap()), "{code}");
        }
        for code in [400, 401, 403, 404, 413, 422] {
            assert!(!retryable(StatusCode::from_u16(code).unwrap()), "{code}");
        }
    }

    #[test]
    fn tool_calls_beyond_the_bounds_are_malformed_without_quoting_them() {
        assert!(check_tool_calls(&[call("call_1", "read_file")]).is_ok());
        let many: Vec<_> = (0..65).map(|i| call(&format!("c{i}"), "x")).collect();
        assert_eq!(
            check_tool_calls(&many).unwrap_err(),
            ProviderError::Malformed("65 tool calls in one answer (at most 64)".into())
        );
        assert!(check_tool_calls(&many[..64]).is_ok());
        for bad in [
            vec![call("", "x")],
            vec![call(&"i".repeat(257), "x")],
            vec![call("secret id", "x")],
            vec![call("id\u{1b}[2J", "x")],
            vec![call("ok", "")],
            vec![call("ok", &"n".repeat(65))],
            vec![call("same", "a"), call("same", "b")],
        ] {
            let err = check_tool_calls(&bad).unwrap_err().to_string();
            assert!(
                err.starts_with("provider reply is malformed: tool call "),
                "{err}"
            );
            assert!(!err.contains("secret") && !err.contains("same"), "{err}");
        }
        assert!(check_tool_calls(&[call(&"i".repeat(256), &"n".repeat(64))]).is_ok());
    }

    fn settings(key: &str) -> ProviderSettings {
        ProviderSettings {
            base_url: Url::parse("https://api.example.com").unwrap(),
            api_key: Some(SecretString::from(key)),
            deadline: Duration::from_secs(25),
            backoff: Duration::from_millis(200),
            max_tokens: None,
            stream_idle: DEFAULT_STREAM_IDLE,
        }
    }

    #[test]
    fn the_key_travels_only_in_its_formats_header_marked_sensitive_and_never_in_debug() {
        for (kind, header, value) in [
            (KeyHeader::Bearer, "authorization", "Bearer sk-live-123"),
            (KeyHeader::XApiKey, "x-api-key", "sk-live-123"),
        ] {
            let url = Url::parse("https://api.example.com/v1/x").unwrap();
            let endpoint = Endpoint::new(&settings("sk-live-123"), url, kind, Vec::new()).unwrap();
            let built = endpoint
                .request(&serde_json::json!({}))
                .unwrap()
                .build()
                .unwrap();
            let sent = built.headers().get(header).unwrap();
            assert_eq!(sent.to_str().unwrap(), value);
            assert!(sent.is_sensitive(), "{header}");
            let other = if header == "x-api-key" {
                "authorization"
            } else {
                "x-api-key"
            };
            assert_eq!(built.headers().get(other), None);
            assert!(!built.url().as_str().contains("sk-live"));
            let shown = format!("{endpoint:?}");
            assert!(!shown.contains("sk-live-123"), "{shown}");
        }
        let url = Url::parse("https://api.example.com/v1/x").unwrap();
        let bad =
            Endpoint::new(&settings("sk\nlive"), url, KeyHeader::XApiKey, Vec::new()).unwrap();
        bad.api_key()
            .store(Some(SecretString::from("sk-live\n-123")));
        let err = bad.request(&serde_json::json!({})).unwrap_err().to_string();
        assert!(!err.contains("sk-live"), "{err}");
    }

    #[test]
    fn settings_debug_redacts_the_key() {
        let s = ProviderSettings {
            base_url: Url::parse("https://api.example.com/v1").unwrap(),
            api_key: Some(SecretString::from("sk-live-123")),
            deadline: Duration::from_secs(25),
            backoff: Duration::from_millis(200),
            max_tokens: None,
            stream_idle: DEFAULT_STREAM_IDLE,
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("sk-live-123"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}
