//! Bench binary for a streamed chat turn through the whole app (edge, auth, engine, SSE body),
//! against the fake provider on loopback: the time from the fake writing a text chunk to the
//! client holding that chunk's `delta` event, both formats, the fake gated so each chunk leaves
//! only after the previous delta arrived; and the time to first byte of a streamed turn (its
//! `turn` event, its first `delta`) against a buffered one's whole answer, for a model that
//! takes about 200 ms to write 40 chunks. Run with `cargo bench -p bastion-e2e --bench stream`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
#[path = "../e2e/helpers.rs"]
mod helpers;

use std::time::{Duration, Instant};

use axum::body::Body;
use bastion_chat::testing::{Answer, FakeLlm};
use http::{Method, Request};
use http_body_util::BodyExt;
use serde_json::json;

use helpers::{Session, TestApp, base_env};

const CHUNKS: usize = 1000;
const TTFB_RUNS: usize = 30;

async fn app(fake: &FakeLlm) -> (TestApp, Session) {
    let mut env = base_env();
    for (k, v) in fake.env() {
        env.insert(k.to_owned(), v);
    }
    env.insert("PLAN_FREE_DAILY_CREDITS".into(), "1000000".into());
    env.insert("CHAT_RATE_LIMIT".into(), "1000000/60".into());
    let app = TestApp::builder().env(env).chat().build().await;
    let who = app.signed_up("bench@example.com").await;
    (app, who)
}

fn request(who: &Session, stream: bool) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri("/chat")
        .header("authorization", format!("Bearer {}", who.access))
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"message": "bench", "stream": stream}).to_string(),
        ))
        .unwrap()
}

/// Reads body frames until one holds `needle`; when it arrived.
async fn until(body: &mut Body, buf: &mut String, needle: &str) -> Instant {
    loop {
        if let Some(at) = buf.find(needle) {
            buf.drain(..at + needle.len());
            return Instant::now();
        }
        let frame = body.frame().await.unwrap().unwrap();
        if let Ok(data) = frame.into_data() {
            buf.push_str(std::str::from_utf8(&data).unwrap());
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{label:<44} n={:<5} p50={:>9.1?} p99={:>9.1?} max={:>9.1?}",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );
}

async fn chunk_to_delta(fake: FakeLlm, label: &str) {
    let (app, who) = app(&fake).await;
    let gate = fake.gate_chunks();
    let chunks: Vec<String> = (0..CHUNKS).map(|i| format!("w{i} ")).collect();
    fake.script([Answer::Streamed {
        chunks: chunks.clone(),
        pause: Duration::ZERO,
    }]);
    let res = app.open(request(&who, true)).await;
    let mut body = res.into_body();
    let mut buf = String::new();
    until(&mut body, &mut buf, "event: turn\n").await;
    let mut arrived = Vec::with_capacity(CHUNKS);
    for chunk in &chunks {
        gate.allow_one();
        let needle = format!("{{\"text\":\"{chunk}\"}}");
        arrived.push(until(&mut body, &mut buf, &needle).await);
    }
    until(&mut body, &mut buf, "event: done\n").await;
    let written = fake.chunk_times();
    assert_eq!(written.len(), CHUNKS);
    let samples = written
        .iter()
        .zip(&arrived)
        .map(|(w, a)| a.saturating_duration_since(*w))
        .collect();
    report(&format!("{label} chunk written -> client delta"), samples);
}

async fn ttfb() {
    let fake = FakeLlm::start().await;
    let (app, who) = app(&fake).await;
    let words: Vec<String> = (0..40).map(|i| format!("w{i} ")).collect();
    let pause = Duration::from_millis(5);
    let (mut turn, mut first_delta, mut streamed_done, mut buffered) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..TTFB_RUNS {
        fake.script([Answer::Streamed {
            chunks: words.clone(),
            pause,
        }]);
        let start = Instant::now();
        let mut body = app.open(request(&who, true)).await.into_body();
        let mut buf = String::new();
        turn.push(until(&mut body, &mut buf, "event: turn\n").await - start);
        first_delta.push(until(&mut body, &mut buf, "event: delta\n").await - start);
        streamed_done.push(until(&mut body, &mut buf, "event: done\n").await - start);

        // The same generation time, answered whole.
        fake.script([Answer::Slow(pause * 40)]);
        let start = Instant::now();
        let res = app.open(request(&who, false)).await;
        let _ = res.into_body().frame().await;
        buffered.push(start.elapsed());
    }
    report("streamed: first byte (event: turn)", turn);
    report("streamed: first delta", first_delta);
    report("streamed: done", streamed_done);
    report("buffered: first byte (the whole answer)", buffered);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    chunk_to_delta(FakeLlm::start().await, "openai").await;
    chunk_to_delta(FakeLlm::start_anthropic().await, "anthropic").await;
    ttfb().await;
}
