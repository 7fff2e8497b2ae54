//! The failover wrapper against scripted in-test providers: which errors fail over, that text
//! already streamed pins a call to the primary, the breaker's open, probe and close, the metric
//! line per failover, and a Debug that names providers only.

use std::collections::VecDeque;
use std::sync::Mutex;

use bastion_core::{ManualClock, Timestamp};
use tokio::sync::Notify;

use super::*;
use crate::provider::{ModelToolCall, NoSink, PromptMessage, Usage};
use bastion_core::metrics::LineSink;

/// One scripted model call.
enum Step {
    Answer(&'static str),
    Fail(ProviderError),
    /// Streams this text, then fails.
    StreamThenFail(&'static str, ProviderError),
    /// Waits for the gate, then answers.
    Gated(Arc<Notify>, &'static str),
}

struct Scripted {
    name: &'static str,
    script: Mutex<VecDeque<Step>>,
    /// The model of every request received, in order.
    seen: Mutex<Vec<String>>,
}

impl Scripted {
    fn new(name: &'static str, steps: impl IntoIterator<Item = Step>) -> Arc<Self> {
        Arc::new(Self {
            name,
            script: Mutex::new(steps.into_iter().collect()),
            seen: Mutex::new(Vec::new()),
        })
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    fn completion(text: &str) -> Completion {
        Completion {
            content: text.to_owned(),
            tool_calls: vec![ModelToolCall {
                id: "call_1".into(),
                name: "read_file".into(),
                arguments: "{}".into(),
            }],
            usage: Usage {
                prompt_tokens: 3,
                completion_tokens: 2,
            },
            served_by: ServedBy::Primary,
        }
    }

    async fn run(
        &self,
        request: &CompletionRequest,
        sink: &mut dyn TextSink,
    ) -> Result<Completion, ProviderError> {
        self.seen.lock().unwrap().push(request.model.clone());
        let step = self.script.lock().unwrap().pop_front();
        match step {
            None => Ok(Self::completion(&format!("{} default", self.name))),
            Some(Step::Answer(text)) => {
                sink.text(text).await;
                Ok(Self::completion(text))
            }
            Some(Step::Fail(e)) => Err(e),
            Some(Step::StreamThenFail(text, e)) => {
                sink.text(text).await;
                Err(e)
            }
            Some(Step::Gated(gate, text)) => {
                gate.notified().await;
                sink.text(text).await;
                Ok(Self::completion(text))
            }
        }
    }
}

#[async_trait]
impl Provider for Scripted {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn complete(&self, request: &CompletionRequest) -> Result<Completion, ProviderError> {
        self.run(request, &mut NoSink).await
    }

    async fn stream(
        &self,
        request: &CompletionRequest,
        sink: &mut dyn TextSink,
    ) -> Result<Completion, ProviderError> {
        self.run(request, sink).await
    }
}

#[derive(Default)]
struct Lines(Mutex<Vec<serde_json::Value>>);

impl LineSink for Lines {
    fn write_line(&self, line: &str) {
        self.0
            .lock()
            .unwrap()
            .push(serde_json::from_str(line).unwrap());
    }
}

impl Lines {
    fn reasons(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|l| l["Reason"].as_str().unwrap().to_owned())
            .collect()
    }
}

#[derive(Default)]
struct Collect(Vec<String>);

#[async_trait]
impl TextSink for Collect {
    async fn text(&mut self, chunk: &str) {
        self.0.push(chunk.to_owned());
    }
}

struct Harness {
    provider: Arc<FailoverProvider>,
    primary: Arc<Scripted>,
    fallback: Arc<Scripted>,
    clock: ManualClock,
    lines: Arc<Lines>,
}

fn harness(
    primary: impl IntoIterator<Item = Step>,
    fallback: impl IntoIterator<Item = Step>,
) -> Harness {
    let clock = ManualClock::new(Timestamp(1_764_000_000));
    let lines = Arc::new(Lines::default());
    let primary = Scripted::new("primary-fake", primary);
    let fallback = Scripted::new("fallback-fake", fallback);
    let metric = FailoverMetric::new("Bastion/test", Arc::new(clock.clone()), lines.clone());
    let provider = Arc::new(FailoverProvider::new(
        primary.clone(),
        fallback.clone(),
        "fallback-model",
        Breaker::new(Arc::new(clock.clone())),
        metric,
    ));
    Harness {
        provider,
        primary,
        fallback,
        clock,
        lines,
    }
}

fn request() -> CompletionRequest {
    CompletionRequest {
        model: "primary-model".into(),
        messages: vec![PromptMessage::user("hi")],
        tools: Vec::new(),
    }
}

#[tokio::test]
async fn availability_failures_before_output_go_to_the_fallback_with_its_model() {
    for (error, why) in [
        (ProviderError::Status(503), "status_503"),
        (ProviderError::Status(429), "status_429"),
        (ProviderError::Status(500), "status_500"),
        (ProviderError::Timeout, "timeout"),
        (
            ProviderError::Transport("connection refused".into()),
            "transport",
        ),
    ] {
        let h = harness(
            [Step::Fail(error.clone())],
            [Step::Answer("from the fallback")],
        );
        let mut sink = Collect::default();
        let got = h.provider.stream(&request(), &mut sink).await.unwrap();
        assert_eq!(got.content, "from the fallback", "{error:?}");
        assert_eq!(got.served_by, ServedBy::Fallback, "{error:?}");
        assert_eq!(sink.0, vec!["from the fallback".to_owned()], "{error:?}");
        assert_eq!(h.primary.seen(), vec!["primary-model".to_owned()]);
        assert_eq!(h.fallback.seen(), vec!["fallback-model".to_owned()]);
        assert_eq!(h.lines.reasons(), vec![why.to_owned()]);
    }
}

#[tokio::test]
async fn a_buffered_call_fails_over_the_same_way() {
    let h = harness([Step::Fail(ProviderError::Status(502))], []);
    let got = h.provider.complete(&request()).await.unwrap();
    assert_eq!(got.content, "fallback-fake default");
    assert_eq!(got.served_by, ServedBy::Fallback);
    assert_eq!(h.fallback.seen(), vec!["fallback-model".to_owned()]);
}

#[tokio::test]
async fn a_primary_answer_is_served_by_the_primary_and_the_fallback_is_never_called() {
    let h = harness([Step::Answer("hello")], []);
    let mut sink = Collect::default();
    let got = h.provider.stream(&request(), &mut sink).await.unwrap();
    assert_eq!(got.served_by, ServedBy::Primary);
    assert_eq!(sink.0, vec!["hello".to_owned()]);
    assert!(h.fallback.seen().is_empty());
    assert!(h.lines.reasons().is_empty());
}

#[tokio::test]
async fn a_bad_request_or_malformed_answer_is_not_failed_over() {
    for error in [
        ProviderError::Status(400),
        ProviderError::Status(401),
        ProviderError::Status(404),
        ProviderError::Malformed("no choices".into()),
    ] {
        let h = harness([Step::Fail(error.clone())], []);
        let got = h.provider.complete(&request()).await.unwrap_err();
        assert_eq!(got, error);
        assert!(h.fallback.seen().is_empty(), "{error:?}");
        assert!(h.lines.reasons().is_empty(), "{error:?}");
    }
}

#[tokio::test]
async fn a_failure_after_text_was_streamed_returns_the_primarys_error_and_never_calls_the_fallback()
{
    let h = harness(
        [Step::StreamThenFail(
            "half an ans",
            ProviderError::Status(503),
        )],
        [],
    );
    let mut sink = Collect::default();
    let got = h.provider.stream(&request(), &mut sink).await.unwrap_err();
    assert_eq!(got, ProviderError::Status(503));
    assert_eq!(sink.0, vec!["half an ans".to_owned()]);
    assert!(h.fallback.seen().is_empty());
    assert!(h.lines.reasons().is_empty());
}

/// Three failed calls (each answered by the fallback) open the breaker.
async fn open(h: &Harness) {
    for _ in 0..3 {
        let got = h.provider.complete(&request()).await.unwrap();
        assert_eq!(got.served_by, ServedBy::Fallback);
    }
    assert!(h.provider.breaker().is_open());
}

fn failing(n: usize) -> Vec<Step> {
    (0..n)
        .map(|_| Step::Fail(ProviderError::Status(503)))
        .collect()
}

#[tokio::test]
async fn three_failures_open_the_breaker_and_for_thirty_seconds_the_primary_sees_nothing() {
    let h = harness(failing(3), []);
    open(&h).await;
    assert_eq!(h.primary.seen().len(), 3);
    h.clock.advance(29);
    let got = h.provider.complete(&request()).await.unwrap();
    assert_eq!(got.served_by, ServedBy::Fallback);
    assert_eq!(h.primary.seen().len(), 3);
    assert_eq!(
        h.lines.reasons(),
        ["status_503", "status_503", "status_503", "breaker_open"]
    );
}

#[tokio::test]
async fn two_failures_and_a_success_do_not_open_the_breaker() {
    let mut steps = failing(2);
    steps.push(Step::Answer("ok"));
    steps.extend(failing(2));
    let h = harness(steps, []);
    for _ in 0..5 {
        h.provider.complete(&request()).await.unwrap();
    }
    assert!(!h.provider.breaker().is_open());
    assert_eq!(h.primary.seen().len(), 5);
}

#[tokio::test]
async fn after_thirty_seconds_one_probe_reaches_the_primary_while_others_use_the_fallback() {
    let gate = Arc::new(Notify::new());
    let mut steps = failing(3);
    steps.push(Step::Gated(gate.clone(), "probe answer"));
    let h = harness(steps, []);
    open(&h).await;
    h.clock.advance(30);
    let probe = {
        let provider = h.provider.clone();
        tokio::spawn(async move { provider.complete(&request()).await })
    };
    // The probe is admitted when its call starts; wait until the primary has it.
    while h.primary.seen().len() < 4 {
        tokio::task::yield_now().await;
    }
    let other = h.provider.complete(&request()).await.unwrap();
    assert_eq!(other.served_by, ServedBy::Fallback);
    assert_eq!(h.primary.seen().len(), 4);
    gate.notify_one();
    let probed = probe.await.unwrap().unwrap();
    assert_eq!(probed.served_by, ServedBy::Primary);
    assert!(!h.provider.breaker().is_open());
    let after = h.provider.complete(&request()).await.unwrap();
    assert_eq!(after.served_by, ServedBy::Primary);
    assert_eq!(h.primary.seen().len(), 5);
}

#[tokio::test]
async fn a_failed_probe_reopens_the_breaker_for_another_thirty_seconds() {
    let h = harness(failing(4), []);
    open(&h).await;
    h.clock.advance(30);
    let probed = h.provider.complete(&request()).await.unwrap();
    assert_eq!(probed.served_by, ServedBy::Fallback);
    assert_eq!(h.primary.seen().len(), 4);
    h.clock.advance(29);
    h.provider.complete(&request()).await.unwrap();
    assert_eq!(h.primary.seen().len(), 4);
    h.clock.advance(1);
    let closed = h.provider.complete(&request()).await.unwrap();
    assert_eq!(closed.served_by, ServedBy::Primary);
    assert_eq!(h.primary.seen().len(), 5);
}

#[test]
fn debug_names_the_providers_and_model_only() {
    let h = harness([], []);
    let debug = format!("{:?}", h.provider);
    assert!(debug.starts_with("FailoverProvider { primary: \"primary-fake\", fallback: \"fallback-fake\", fallback_model: \"fallback-model\", breaker: Breaker { state: Closed { failures: 0 }"), "{debug}");
}
