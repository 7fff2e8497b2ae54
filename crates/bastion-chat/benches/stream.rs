//! Bench binary for a streamed model call's added latency per chunk: the time from the fake
//! provider handing a text chunk to its response body to the client's `sink.text` receiving
//! it (HTTP/1.1 on loopback, the SSE decoder, the format's chunk parsing), for both formats.
//! The fake is gated so each chunk leaves only after the previous one arrived, which measures
//! one chunk's path rather than a queue. Run with `cargo bench -p bastion-chat --bench stream`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use async_trait::async_trait;
use bastion_chat::provider::{
    AnthropicProvider, CompletionRequest, OpenAiProvider, PromptMessage, Provider,
    ProviderSettings, TextSink,
};
use bastion_chat::testing::{Answer, ChunkGate, FAKE_KEY, FakeLlm, Format};
use reqwest::Url;
use secrecy::SecretString;

const CHUNKS: usize = 2000;

/// Notes when each chunk arrived and lets the fake send the next.
struct Timing {
    gate: ChunkGate,
    arrived: Vec<Instant>,
}

#[async_trait]
impl TextSink for Timing {
    async fn text(&mut self, _chunk: &str) {
        self.arrived.push(Instant::now());
        self.gate.allow_one();
    }
}

fn provider(fake: &FakeLlm) -> Box<dyn Provider> {
    let settings = ProviderSettings {
        base_url: Url::parse(&fake.base_url).unwrap(),
        api_key: Some(SecretString::from(FAKE_KEY)),
        deadline: Duration::from_secs(25),
        backoff: Duration::from_millis(250),
        max_tokens: None,
        stream_idle: Duration::from_secs(20),
    };
    match fake.format {
        Format::OpenAi => Box::new(OpenAiProvider::new(settings).unwrap()),
        Format::Anthropic => Box::new(AnthropicProvider::new(settings).unwrap()),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at]
}

async fn run(format: Format) {
    let fake = match format {
        Format::OpenAi => FakeLlm::start().await,
        Format::Anthropic => FakeLlm::start_anthropic().await,
    };
    let provider = provider(&fake);
    let request = CompletionRequest {
        model: "fake-small".to_owned(),
        messages: vec![PromptMessage::user("count")],
        tools: Vec::new(),
    };
    // One warm-up call opens the connection and fills the allocator's pools.
    fake.script([Answer::Reply("warm up".to_owned())]);
    provider.complete(&request).await.unwrap();

    let chunks: Vec<String> = (0..CHUNKS).map(|i| format!("token{i} ")).collect();
    fake.script([Answer::Streamed {
        chunks,
        pause: Duration::ZERO,
    }]);
    let mut sink = Timing {
        gate: fake.gate_chunks(),
        arrived: Vec::with_capacity(CHUNKS),
    };
    provider.stream(&request, &mut sink).await.unwrap();
    let sent = fake.chunk_times();
    assert_eq!(sent.len(), CHUNKS);
    assert_eq!(sink.arrived.len(), CHUNKS);
    let mut latency: Vec<Duration> = sent
        .iter()
        .zip(&sink.arrived)
        .map(|(s, a)| a.duration_since(*s))
        .collect();
    latency.sort();
    println!(
        "{:<10} chunk written -> sink.text  n={CHUNKS} p50={:>10.1?} p99={:>10.1?} max={:>10.1?}",
        format!("{format:?}"),
        percentile(&latency, 0.50),
        percentile(&latency, 0.99),
        latency[latency.len() - 1],
    );
}

#[tokio::main]
async fn main() {
    run(Format::OpenAi).await;
    run(Format::Anthropic).await;
}
