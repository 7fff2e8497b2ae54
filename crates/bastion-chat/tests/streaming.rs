//! Both provider formats streamed against their fake servers: text reaches the sink while the
//! fake still holds the rest back, tool calls are assembled from fragments, usage is read,
//! truncated, malformed, error-carrying, stalled and oversized streams end in the right
//! error and never hang, 429/5xx are retried only before a success's body, and no stream is
//! left open afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use async_trait::async_trait;
use bastion_chat::provider::{
    AnthropicProvider, Completion, CompletionRequest, OpenAiProvider, PromptMessage, Provider,
    ProviderError, ProviderSettings, TextSink, Usage,
};
use bastion_chat::testing::{Answer, Breakage, ChunkGate, FAKE_KEY, FakeLlm, Format};
use bastion_core::tools::ToolName;
use reqwest::Url;
use secrecy::SecretString;
use serde_json::{Value, json};

const FORMATS: [Format; 2] = [Format::OpenAi, Format::Anthropic];

async fn start(format: Format) -> FakeLlm {
    match format {
        Format::OpenAi => FakeLlm::start().await,
        Format::Anthropic => FakeLlm::start_anthropic().await,
    }
}

/// A client of `fake` with a 1 s idle timeout and a 5 s deadline for the headers.
fn client(fake: &FakeLlm) -> Box<dyn Provider> {
    client_with(fake, Duration::from_secs(5))
}

fn client_with(fake: &FakeLlm, deadline: Duration) -> Box<dyn Provider> {
    let settings = ProviderSettings {
        base_url: Url::parse(&fake.base_url).unwrap(),
        api_key: Some(SecretString::from(FAKE_KEY)),
        deadline,
        backoff: Duration::from_millis(10),
        max_tokens: None,
        stream_idle: Duration::from_secs(1),
    };
    match fake.format {
        Format::OpenAi => Box::new(OpenAiProvider::new(settings).unwrap()),
        Format::Anthropic => Box::new(AnthropicProvider::new(settings).unwrap()),
    }
}

fn request(tools: &[ToolName]) -> CompletionRequest {
    CompletionRequest {
        model: "fake-small".to_owned(),
        messages: vec![PromptMessage::system("be brief"), PromptMessage::user("hi")],
        tools: tools.to_vec(),
    }
}

/// Keeps every chunk, how many chunks the fake had sent when each arrived, and opens the
/// fake's gate for the next one.
struct Recording {
    fake: FakeLlm,
    gate: Option<ChunkGate>,
    chunks: Vec<String>,
    sent_when_seen: Vec<u64>,
}

impl Recording {
    fn new(fake: &FakeLlm) -> Self {
        Self {
            fake: fake.clone(),
            gate: None,
            chunks: Vec::new(),
            sent_when_seen: Vec::new(),
        }
    }
}

#[async_trait]
impl TextSink for Recording {
    async fn text(&mut self, chunk: &str) {
        self.chunks.push(chunk.to_owned());
        self.sent_when_seen.push(self.fake.chunks_sent());
        if let Some(gate) = &self.gate {
            gate.allow_one();
        }
    }
}

/// One streamed call; a hang fails the test instead of stalling the suite.
async fn stream(
    provider: &dyn Provider,
    req: &CompletionRequest,
    sink: &mut Recording,
) -> Result<Completion, ProviderError> {
    tokio::time::timeout(Duration::from_secs(20), provider.stream(req, sink))
        .await
        .expect("the streamed call hung")
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

const FAKE_USAGE: Usage = Usage {
    prompt_tokens: 11,
    completion_tokens: 7,
};

#[tokio::test]
async fn text_reaches_the_sink_chunk_by_chunk_while_the_fake_holds_the_rest_back() {
    for format in FORMATS {
        let fake = start(format).await;
        let chunks = strings(&["Once ", "upon ", "a ", "tïme 🦀"]);
        fake.script([Answer::Streamed {
            chunks: chunks.clone(),
            pause: Duration::ZERO,
        }]);
        let mut sink = Recording::new(&fake);
        // Chunk n+1 leaves the fake only after the sink has seen chunk n: a client that
        // buffered the answer would never see chunk 1 and end in its idle timeout.
        sink.gate = Some(fake.gate_chunks());
        let provider = client(&fake);
        let done = stream(provider.as_ref(), &request(&[]), &mut sink)
            .await
            .unwrap();
        assert_eq!(sink.chunks, chunks, "{format:?}");
        assert_eq!(sink.sent_when_seen, vec![1, 2, 3, 4], "{format:?}");
        assert_eq!(done.content, "Once upon a tïme 🦀");
        assert_eq!(done.usage, FAKE_USAGE);
        assert!(done.tool_calls.is_empty());
        let sent = &fake.requests()[0];
        assert_eq!(sent["stream"], json!(true));
        match format {
            Format::OpenAi => assert_eq!(sent["stream_options"], json!({"include_usage": true})),
            Format::Anthropic => assert_eq!(sent.get("stream_options"), None),
        }
        fake.until_connections_closed().await;
        assert_eq!(fake.open_connections(), 0);
    }
}

#[tokio::test]
async fn tool_calls_are_assembled_from_argument_fragments_after_the_text() {
    for format in FORMATS {
        let fake = start(format).await;
        fake.script([Answer::Tools {
            text: Some("Let me look.".to_owned()),
            calls: vec![
                (
                    "read_file".to_owned(),
                    r#"{"path": "notes/ä long name.txt"}"#.to_owned(),
                ),
                ("list_files".to_owned(), "{}".to_owned()),
            ],
        }]);
        let mut sink = Recording::new(&fake);
        let provider = client(&fake);
        let tools = [ToolName::ReadFile, ToolName::ListFiles];
        let done = stream(provider.as_ref(), &request(&tools), &mut sink)
            .await
            .unwrap();
        assert_eq!(
            sink.chunks,
            strings(&["Let ", "me ", "look."]),
            "{format:?}"
        );
        assert_eq!(done.content, "Let me look.");
        let calls: Vec<(String, String, Value)> = done
            .tool_calls
            .iter()
            .map(|c| {
                let args = serde_json::from_str(&c.arguments).unwrap();
                (c.id.clone(), c.name.clone(), args)
            })
            .collect();
        assert_eq!(
            calls,
            vec![
                (
                    "call_1".to_owned(),
                    "read_file".to_owned(),
                    json!({"path": "notes/ä long name.txt"})
                ),
                ("call_2".to_owned(), "list_files".to_owned(), json!({})),
            ],
            "{format:?}"
        );
        assert_eq!(done.usage, FAKE_USAGE);
        fake.until_connections_closed().await;
    }
}

#[tokio::test]
async fn a_stream_cut_before_its_end_is_malformed_after_the_text_it_carried() {
    for (format, want) in [
        (Format::OpenAi, "stream ended before [DONE]"),
        (Format::Anthropic, "stream ended before message_stop"),
    ] {
        let fake = start(format).await;
        fake.script([Answer::Broken(Breakage::Truncated)]);
        let mut sink = Recording::new(&fake);
        let err = stream(client(&fake).as_ref(), &request(&[]), &mut sink)
            .await
            .unwrap_err();
        assert_eq!(err, ProviderError::Malformed(want.to_owned()));
        assert_eq!(sink.chunks, strings(&["fake "]));
        fake.until_connections_closed().await;
    }
}

#[tokio::test]
async fn a_stream_line_that_is_not_json_is_malformed_without_quoting_it() {
    for (format, want, surprise) in [
        (
            Format::OpenAi,
            "not a completion chunk (Eof error at line 1 column 23)",
            "not a completion chunk (Data error at line 1 column 22)",
        ),
        (
            Format::Anthropic,
            "not a stream event (Eof error at line 1 column 32)",
            "not a stream event (Data error at line 0 column 0)",
        ),
    ] {
        let fake = start(format).await;
        fake.script([Answer::Broken(Breakage::BadJson), Answer::Malformed]);
        let provider = client(&fake);
        let mut sink = Recording::new(&fake);
        let err = stream(provider.as_ref(), &request(&[]), &mut sink)
            .await
            .unwrap_err();
        assert_eq!(err, ProviderError::Malformed(want.to_owned()), "{format:?}");
        let err = stream(provider.as_ref(), &request(&[]), &mut sink)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            ProviderError::Malformed(surprise.to_owned()),
            "{format:?}"
        );
        assert!(!err.to_string().contains("surprise"), "{err}");
        fake.until_connections_closed().await;
    }
}

#[tokio::test]
async fn an_error_in_the_stream_is_the_status_it_stands_for_and_is_not_retried() {
    let cases = [
        (
            Format::Anthropic,
            "overloaded_error",
            ProviderError::Status(529),
        ),
        (
            Format::Anthropic,
            "rate_limit_error",
            ProviderError::Status(429),
        ),
        (Format::Anthropic, "api_error", ProviderError::Status(500)),
        (
            Format::Anthropic,
            "invalid_request_error",
            ProviderError::Malformed("the stream reported an error".to_owned()),
        ),
        (Format::OpenAi, "server_error", ProviderError::Status(500)),
        (
            Format::OpenAi,
            "invalid_request_error",
            ProviderError::Malformed("the stream reported an error".to_owned()),
        ),
    ];
    for (format, kind, want) in cases {
        let fake = start(format).await;
        fake.script([Answer::Broken(Breakage::ErrorEvent(kind.to_owned()))]);
        let mut sink = Recording::new(&fake);
        let err = stream(client(&fake).as_ref(), &request(&[]), &mut sink)
            .await
            .unwrap_err();
        assert_eq!(err, want, "{format:?} {kind}");
        assert!(!err.to_string().contains("scripted"), "{err}");
        // Text had reached the client: a retry would repeat it.
        assert_eq!(fake.requests().len(), 1, "{format:?} {kind}");
        fake.until_connections_closed().await;
    }
}

#[tokio::test]
async fn a_stream_that_stalls_ends_in_a_timeout_and_its_connection_is_closed() {
    for format in FORMATS {
        // The default reply "fake answer to: hi" has four chunks: 9 sends them all, not the end.
        for after_chunks in [0, 2, 9] {
            let fake = start(format).await;
            fake.script([Answer::Stall { after_chunks }]);
            let provider = client(&fake);
            let mut sink = Recording::new(&fake);
            let err = stream(provider.as_ref(), &request(&[]), &mut sink)
                .await
                .unwrap_err();
            assert_eq!(err, ProviderError::Timeout, "{format:?} {after_chunks}");
            let want: &[&str] = match after_chunks {
                0 => &[],
                2 => &["fake ", "answer "],
                _ => &["fake ", "answer ", "to: ", "hi"],
            };
            assert_eq!(sink.chunks, strings(want));
            // The fake holds its side open forever; only the client dropping it ends it.
            fake.until_connections_closed().await;
            assert_eq!(fake.open_connections(), 0);
            drop(provider);
        }
    }
}

#[tokio::test]
async fn a_reply_whose_headers_do_not_come_within_the_deadline_is_a_timeout() {
    for format in FORMATS {
        let fake = start(format).await;
        fake.script([Answer::Slow(Duration::from_secs(30))]);
        let provider = client_with(&fake, Duration::from_secs(1));
        let mut sink = Recording::new(&fake);
        let err = stream(provider.as_ref(), &request(&[]), &mut sink)
            .await
            .unwrap_err();
        assert_eq!(err, ProviderError::Timeout);
        assert!(sink.chunks.is_empty());
    }
}

#[tokio::test]
async fn a_stream_beyond_1_mib_is_refused() {
    for format in FORMATS {
        let fake = start(format).await;
        // 17 chunks of 64 KiB: each line is well under the line cap, the whole is not.
        let chunks = vec!["x".repeat(64 * 1024); 17];
        fake.script([
            Answer::Streamed {
                chunks,
                pause: Duration::ZERO,
            },
            Answer::Streamed {
                chunks: vec!["y".repeat(60 * 1024); 15],
                pause: Duration::ZERO,
            },
        ]);
        let provider = client(&fake);
        let mut sink = Recording::new(&fake);
        let err = stream(provider.as_ref(), &request(&[]), &mut sink)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            ProviderError::Malformed("reply exceeds 1 MiB".to_owned()),
            "{format:?}"
        );
        assert!(sink.chunks.len() < 17, "{}", sink.chunks.len());
        // Just under the cap is an answer.
        let mut sink = Recording::new(&fake);
        let done = stream(provider.as_ref(), &request(&[]), &mut sink)
            .await
            .unwrap();
        assert_eq!(done.content.len(), 15 * 60 * 1024);
        fake.until_connections_closed().await;
    }
}

#[tokio::test]
async fn one_stream_line_beyond_256_kib_is_refused() {
    for (format, open) in [
        (
            Format::OpenAi,
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"",
        ),
        (
            Format::Anthropic,
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"",
        ),
    ] {
        let fake = start(format).await;
        fake.script([Answer::Body(format!("{open}{}", "z".repeat(300 * 1024)))]);
        let mut sink = Recording::new(&fake);
        let err = stream(client(&fake).as_ref(), &request(&[]), &mut sink)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            ProviderError::Malformed("a stream line or event exceeds 256 KiB".to_owned())
        );
        fake.until_connections_closed().await;
    }
}

#[tokio::test]
async fn crlf_framed_events_with_comments_from_the_wire_are_read() {
    let fake = FakeLlm::start().await;
    let chunk = |t: &str| {
        format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{t}\"}}}}]}}\r\n\r\n")
    };
    let body = format!(
        ": OPENROUTER PROCESSING\r\n\r\n{}{}data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":3,\"completion_tokens\":2}}}}\r\n\r\ndata: [DONE]\r\n\r\n",
        chunk("Hi "),
        chunk("there")
    );
    fake.script([Answer::Body(body)]);
    let mut sink = Recording::new(&fake);
    let done = stream(client(&fake).as_ref(), &request(&[]), &mut sink)
        .await
        .unwrap();
    assert_eq!(sink.chunks, strings(&["Hi ", "there"]));
    assert_eq!(done.content, "Hi there");
    assert_eq!(
        done.usage,
        Usage {
            prompt_tokens: 3,
            completion_tokens: 2
        }
    );
}

#[tokio::test]
async fn statuses_worth_retrying_before_the_body_are_retried_and_others_are_not() {
    for format in FORMATS {
        let fake = start(format).await;
        let overloaded = if format == Format::Anthropic {
            529
        } else {
            503
        };
        fake.script([
            Answer::Status(429),
            Answer::Status(overloaded),
            Answer::Reply("after two retries".to_owned()),
        ]);
        let provider = client(&fake);
        let mut sink = Recording::new(&fake);
        let done = stream(provider.as_ref(), &request(&[]), &mut sink)
            .await
            .unwrap();
        assert_eq!(done.content, "after two retries");
        assert_eq!(sink.chunks, strings(&["after ", "two ", "retries"]));
        assert_eq!(fake.requests().len(), 3);
        assert!(fake.requests().iter().all(|r| r["stream"] == json!(true)));

        fake.script([
            Answer::Status(500),
            Answer::Status(500),
            Answer::Status(502),
        ]);
        let err = stream(provider.as_ref(), &request(&[]), &mut sink)
            .await
            .unwrap_err();
        assert_eq!(err, ProviderError::Status(502));
        assert_eq!(fake.requests().len(), 6);

        fake.script([Answer::Status(400), Answer::Reply("never".to_owned())]);
        let err = stream(provider.as_ref(), &request(&[]), &mut sink)
            .await
            .unwrap_err();
        assert_eq!(err, ProviderError::Status(400));
        assert_eq!(fake.requests().len(), 7);
        fake.until_connections_closed().await;
    }
}

#[tokio::test]
async fn a_slow_stream_that_outlasts_the_deadline_and_the_idle_timeout_is_still_an_answer() {
    for format in FORMATS {
        let fake = start(format).await;
        // Three gaps of 400 ms: the whole takes longer than both the 1 s deadline and the 1 s
        // idle timeout, and no single read waits longer than 400 ms.
        fake.script([Answer::Streamed {
            chunks: strings(&["slow ", "but ", "still ", "alive"]),
            pause: Duration::from_millis(400),
        }]);
        let provider = client_with(&fake, Duration::from_secs(1));
        let mut sink = Recording::new(&fake);
        let done = stream(provider.as_ref(), &request(&[]), &mut sink)
            .await
            .unwrap();
        assert_eq!(done.content, "slow but still alive");
        assert_eq!(sink.chunks.len(), 4);
        let times = fake.chunk_times();
        assert!(times[3].duration_since(times[0]) > Duration::from_secs(1));
        fake.until_connections_closed().await;
    }
}
