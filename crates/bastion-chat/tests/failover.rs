//! The fallback provider end to end, against two fake model servers: an OpenAI-format primary
//! that fails (503, 429, timeout, connection refused) hands the call to an Anthropic-format
//! fallback in that format, tool history included; 400 and malformed answers stay with the
//! primary; the circuit breaker skips the primary, probes it once and closes or re-opens; the
//! fallback's configuration errors name their variable; a secret refresh swaps the fallback's
//! key; and the key never shows in Debug output or errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bastion_chat::config::ProviderKeys;
use bastion_chat::provider::{
    CompletionRequest, ModelToolCall, PromptMessage, ProviderError, ServedBy, TextSink,
};
use bastion_chat::testing::{Answer, FAKE_KEY, FakeLlm, default_reply};
use bastion_chat::{ChatSetup, RuntimeMode};
use bastion_core::metrics::LineSink;
use bastion_core::tools::ToolName;
use bastion_core::{ManualClock, Timestamp};
use serde_json::json;

const FALLBACK_SECRET: &str = "sk-fallback-never-shown-7f3a";

/// The primary's and the fallback's variables (the fallback on `fake-large`), then `extra`.
fn env_of(
    primary: &FakeLlm,
    fallback: &FakeLlm,
    extra: &[(&str, &str)],
) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = primary
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let kind = match fallback.format {
        bastion_chat::testing::Format::OpenAi => "openai",
        bastion_chat::testing::Format::Anthropic => "anthropic",
    };
    env.insert("LLM_FALLBACK_PROVIDER".into(), kind.into());
    env.insert("LLM_FALLBACK_BASE_URL".into(), fallback.base_url.clone());
    env.insert("LLM_FALLBACK_MODEL".into(), "fake-large".into());
    env.insert("LLM_FALLBACK_API_KEY".into(), FAKE_KEY.into());
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env
}

/// The metric lines a setup wrote.
#[derive(Default)]
struct Lines(Mutex<Vec<serde_json::Value>>);

impl LineSink for Lines {
    fn write_line(&self, line: &str) {
        let value = serde_json::from_str(line).unwrap();
        self.0.lock().unwrap().push(value);
    }
}

impl Lines {
    /// Each failover's `Reason`, after checking the line is the `ChatProviderFailover` count.
    fn reasons(&self) -> Vec<String> {
        let lines = self.0.lock().unwrap();
        lines
            .iter()
            .map(|l| {
                assert_eq!(l["ChatProviderFailover"], 1.0);
                assert_eq!(
                    l["_aws"]["CloudWatchMetrics"][0]["Namespace"],
                    "Bastion/test"
                );
                l["Reason"].as_str().unwrap().to_owned()
            })
            .collect()
    }
}

struct Pair {
    primary: FakeLlm,
    fallback: FakeLlm,
    setup: ChatSetup,
    clock: ManualClock,
    lines: Arc<Lines>,
}

/// An OpenAI-format primary with an Anthropic-format fallback.
async fn pair(extra: &[(&str, &str)]) -> Pair {
    let primary = FakeLlm::start().await;
    let fallback = FakeLlm::start_anthropic().await;
    let clock = ManualClock::new(Timestamp(1_764_000_000));
    let mut env = env_of(&primary, &fallback, extra);
    env.insert("METRICS_NAMESPACE".into(), "Bastion/test".into());
    let lines = Arc::new(Lines::default());
    let setup = ChatSetup::from_env_with(
        &env,
        RuntimeMode::Lambda,
        Arc::new(clock.clone()),
        lines.clone(),
    )
    .unwrap();
    Pair {
        primary,
        fallback,
        setup,
        clock,
        lines,
    }
}

fn request(messages: &[PromptMessage], tools: &[ToolName]) -> CompletionRequest {
    CompletionRequest {
        model: "fake-small".to_owned(),
        messages: messages.to_vec(),
        tools: tools.to_vec(),
    }
}

fn hi() -> CompletionRequest {
    request(&[PromptMessage::user("hi")], &[])
}

/// Enough 503s to exhaust the primary's retries on one call.
fn unavailable() -> Vec<Answer> {
    vec![Answer::Status(503); 3]
}

const R1: &str = r#"{"ok":true,"output":{"bytes":4}}"#;

#[tokio::test]
async fn a_503_from_an_openai_primary_is_answered_by_the_anthropic_fallback_in_its_own_format() {
    let p = pair(&[]).await;
    p.primary.script(unavailable());
    let prompt = [
        PromptMessage::system("You are terse."),
        PromptMessage::user("Write it."),
        PromptMessage::assistant(
            "Writing.",
            vec![ModelToolCall {
                id: "call_9".into(),
                name: "write_file".into(),
                arguments: json!({"path": "a.txt", "content": "a"}).to_string(),
            }],
        ),
        PromptMessage::tool_result("call_9", "write_file", R1.into()),
    ];
    let got = p
        .setup
        .provider
        .complete(&request(&prompt, &ToolName::ALL))
        .await
        .unwrap();
    assert_eq!(got.served_by, ServedBy::Fallback);
    assert_eq!(got.content, default_reply("Write it."));
    assert_eq!(p.primary.requests().len(), 3);
    assert_eq!(p.fallback.refusals(), Vec::<String>::new());
    assert_eq!(p.fallback.requests().len(), 1);
    let sent = &p.fallback.requests()[0];
    assert_eq!(sent["model"], "fake-large");
    assert_eq!(sent["system"], "You are terse.");
    assert_eq!(
        p.fallback.tools_of(0),
        ["run_command", "read_file", "write_file", "list_files"]
    );
    assert_eq!(
        p.fallback.tool_calls_of(0),
        vec![(
            "call_9".to_owned(),
            "write_file".to_owned(),
            json!({"path": "a.txt", "content": "a"}).to_string()
        )]
    );
    assert_eq!(
        p.fallback.tool_results_of(0),
        vec![("call_9".to_owned(), R1.to_owned())]
    );
    assert_eq!(sent["messages"][1]["content"][1]["type"], "tool_use");
    assert_eq!(sent["messages"][2]["content"][0]["type"], "tool_result");
    assert_eq!(p.lines.reasons(), ["status_503"]);
}

#[derive(Default)]
struct Collect(Vec<String>);

#[async_trait]
impl TextSink for Collect {
    async fn text(&mut self, chunk: &str) {
        self.0.push(chunk.to_owned());
    }
}

#[tokio::test]
async fn a_streamed_call_the_primary_failed_reaches_the_sink_once_from_the_fallback() {
    let p = pair(&[]).await;
    p.primary.script(unavailable());
    let mut sink = Collect::default();
    let got = p.setup.provider.stream(&hi(), &mut sink).await.unwrap();
    assert_eq!(got.served_by, ServedBy::Fallback);
    // The fallback's answer, streamed in its pieces, and nothing from the primary.
    assert_eq!(sink.0.concat(), default_reply("hi"));
    assert_eq!(p.fallback.requests().len(), 1);
}

#[tokio::test]
async fn a_429_or_a_timeout_from_the_primary_is_answered_by_the_fallback() {
    let p = pair(&[("LLM_TIMEOUT_SECS", "1")]).await;
    p.primary.script(vec![Answer::Status(429); 3]);
    let got = p.setup.provider.complete(&hi()).await.unwrap();
    assert_eq!(got.served_by, ServedBy::Fallback);
    p.primary.script([Answer::Slow(Duration::from_secs(3))]);
    let got = p.setup.provider.complete(&hi()).await.unwrap();
    assert_eq!(got.served_by, ServedBy::Fallback);
    assert_eq!(got.content, default_reply("hi"));
    assert_eq!(p.primary.requests().len(), 4);
    assert_eq!(p.fallback.requests().len(), 2);
    assert_eq!(p.lines.reasons(), ["status_429", "timeout"]);
}

#[tokio::test]
async fn a_primary_refusing_connections_is_answered_by_the_fallback() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let unreachable = format!("http://{addr}/v1");
    let p = pair(&[("LLM_BASE_URL", unreachable.as_str())]).await;
    let got = p.setup.provider.complete(&hi()).await.unwrap();
    assert_eq!(got.served_by, ServedBy::Fallback);
    assert_eq!(p.fallback.requests()[0]["model"], "fake-large");
    assert_eq!(p.lines.reasons(), ["transport"]);
}

#[tokio::test]
async fn a_400_or_a_malformed_answer_from_the_primary_is_not_failed_over() {
    let p = pair(&[]).await;
    p.primary.script([Answer::Status(400), Answer::Malformed]);
    let err = p.setup.provider.complete(&hi()).await.unwrap_err();
    assert_eq!(err, ProviderError::Status(400));
    let err = p.setup.provider.complete(&hi()).await.unwrap_err();
    assert!(matches!(err, ProviderError::Malformed(_)), "{err:?}");
    assert_eq!(p.fallback.requests().len(), 0);
    let ok = p.setup.provider.complete(&hi()).await.unwrap();
    assert_eq!(ok.served_by, ServedBy::Primary);
    assert_eq!(p.lines.reasons(), Vec::<String>::new());
}

/// Three failed calls, each answered by the fallback: the breaker is then open.
async fn open_the_breaker(p: &Pair) {
    p.primary.script((0..3).flat_map(|_| unavailable()));
    for _ in 0..3 {
        let got = p.setup.provider.complete(&hi()).await.unwrap();
        assert_eq!(got.served_by, ServedBy::Fallback);
    }
    assert_eq!(p.primary.requests().len(), 9);
}

#[tokio::test]
async fn an_open_breaker_sends_every_call_to_the_fallback_for_thirty_seconds() {
    let p = pair(&[]).await;
    open_the_breaker(&p).await;
    for _ in 0..3 {
        let got = p.setup.provider.complete(&hi()).await.unwrap();
        assert_eq!(got.served_by, ServedBy::Fallback);
        p.clock.advance(14);
    }
    // 42 s in the fake's time, but the last call was at 28 s.
    assert_eq!(p.primary.requests().len(), 9);
    assert_eq!(p.fallback.requests().len(), 6);
    assert_eq!(
        p.lines.reasons(),
        [
            "status_503",
            "status_503",
            "status_503",
            "breaker_open",
            "breaker_open",
            "breaker_open"
        ]
    );
}

#[tokio::test]
async fn after_thirty_seconds_one_of_two_concurrent_calls_probes_the_primary_and_closes_it() {
    let p = pair(&[]).await;
    open_the_breaker(&p).await;
    p.clock.advance(30);
    let a = hi();
    let b = hi();
    let (first, second) =
        tokio::join!(p.setup.provider.complete(&a), p.setup.provider.complete(&b));
    let mut served = [first.unwrap().served_by, second.unwrap().served_by];
    served.sort_by_key(|s| s.as_str());
    assert_eq!(served, [ServedBy::Fallback, ServedBy::Primary]);
    assert_eq!(p.primary.requests().len(), 10);
    assert_eq!(p.fallback.requests().len(), 4);
    let closed = p.setup.provider.complete(&hi()).await.unwrap();
    assert_eq!(closed.served_by, ServedBy::Primary);
    assert_eq!(p.primary.requests().len(), 11);
}

#[tokio::test]
async fn a_failed_probe_reopens_the_breaker_for_another_thirty_seconds() {
    let p = pair(&[]).await;
    open_the_breaker(&p).await;
    p.clock.advance(30);
    p.primary.script(unavailable());
    let probed = p.setup.provider.complete(&hi()).await.unwrap();
    assert_eq!(probed.served_by, ServedBy::Fallback);
    assert_eq!(p.primary.requests().len(), 12);
    p.clock.advance(29);
    let skipped = p.setup.provider.complete(&hi()).await.unwrap();
    assert_eq!(skipped.served_by, ServedBy::Fallback);
    assert_eq!(p.primary.requests().len(), 12);
    p.clock.advance(1);
    let closed = p.setup.provider.complete(&hi()).await.unwrap();
    assert_eq!(closed.served_by, ServedBy::Primary);
    assert_eq!(p.primary.requests().len(), 13);
}

#[tokio::test]
async fn a_secret_refresh_swaps_the_fallback_key() {
    let p = pair(&[("LLM_FALLBACK_API_KEY", "sk-old-revoked")]).await;
    p.primary.script(unavailable());
    let err = p.setup.provider.complete(&hi()).await.unwrap_err();
    assert_eq!(err, ProviderError::Status(401));
    assert_eq!(p.fallback.refusals(), vec!["bad x-api-key".to_owned()]);
    let refreshed = env_of(&p.primary, &p.fallback, &[]);
    p.setup
        .keys()
        .store(ProviderKeys::read(&refreshed).unwrap());
    p.primary.script(unavailable());
    let got = p.setup.provider.complete(&hi()).await.unwrap();
    assert_eq!(got.served_by, ServedBy::Fallback);
    assert_eq!(p.fallback.refusals().len(), 1);
}

#[tokio::test]
async fn a_refresh_with_a_blank_fallback_key_is_refused_naming_it() {
    let p = pair(&[]).await;
    let bad = env_of(
        &p.primary,
        &p.fallback,
        &[("LLM_API_KEY", "sk-new"), ("LLM_FALLBACK_API_KEY", " ")],
    );
    let err = ProviderKeys::read(&bad).unwrap_err();
    assert_eq!(err.var, "LLM_FALLBACK_API_KEY");
    let ok = p.setup.provider.complete(&hi()).await.unwrap();
    assert_eq!(ok.served_by, ServedBy::Primary);
    assert_eq!(p.primary.refusals(), Vec::<String>::new());
}

#[tokio::test]
async fn the_fallback_key_never_appears_in_debug_output_or_errors() {
    let p = pair(&[("LLM_FALLBACK_API_KEY", FALLBACK_SECRET)]).await;
    let keys = format!("{:?} {:?}", p.setup.keys(), p.setup.fallback_api_key);
    assert!(!keys.contains(FALLBACK_SECRET), "{keys}");
    p.primary.script(unavailable());
    let err = p.setup.provider.complete(&hi()).await.unwrap_err();
    assert_eq!(err, ProviderError::Status(401));
    assert!(!format!("{err} {err:?}").contains(FALLBACK_SECRET));
    let with_credentials = format!("https://user:{FALLBACK_SECRET}@api.example.com");
    let e = ChatSetup::from_env(
        &env_of(
            &p.primary,
            &p.fallback,
            &[("LLM_FALLBACK_BASE_URL", with_credentials.as_str())],
        ),
        RuntimeMode::Lambda,
    )
    .err()
    .unwrap();
    assert_eq!(e.var, "LLM_FALLBACK_BASE_URL");
    assert!(!format!("{e} {e:?}").contains(FALLBACK_SECRET), "{e}");
}

#[tokio::test]
async fn without_a_fallback_the_primary_serves_alone_and_its_errors_are_returned() {
    let primary = FakeLlm::start().await;
    let env: HashMap<String, String> = primary
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let setup = ChatSetup::from_env(&env, RuntimeMode::Lambda).unwrap();
    assert!(setup.fallback_api_key.is_none());
    primary.script(unavailable());
    let err = setup.provider.complete(&hi()).await.unwrap_err();
    assert_eq!(err, ProviderError::Status(503));
    let ok = setup.provider.complete(&hi()).await.unwrap();
    assert_eq!(ok.served_by, ServedBy::Primary);
}

#[tokio::test]
async fn fallback_configuration_errors_name_their_variable() {
    let primary = FakeLlm::start().await;
    let fallback = FakeLlm::start_anthropic().await;
    let full = env_of(&primary, &fallback, &[]);
    let with = |changes: &[(&str, Option<&str>)]| {
        let mut env = full.clone();
        for (k, v) in changes {
            match v {
                Some(v) => env.insert((*k).to_owned(), (*v).to_owned()),
                None => env.remove(*k),
            };
        }
        ChatSetup::from_env(&env, RuntimeMode::Lambda)
            .err()
            .map(|e| e.var)
    };
    assert_eq!(with(&[]), None);
    for (changes, var) in [
        (
            vec![("LLM_FALLBACK_PROVIDER", Some("gemini"))],
            "LLM_FALLBACK_PROVIDER",
        ),
        (
            vec![("LLM_FALLBACK_BASE_URL", Some("http://api.example.com"))],
            "LLM_FALLBACK_BASE_URL",
        ),
        (
            vec![("LLM_FALLBACK_BASE_URL", Some("not a url"))],
            "LLM_FALLBACK_BASE_URL",
        ),
        (
            vec![(
                "LLM_FALLBACK_BASE_URL",
                Some("https://api.anthropic.com/v1"),
            )],
            "LLM_FALLBACK_BASE_URL",
        ),
        (vec![("LLM_FALLBACK_MODEL", None)], "LLM_FALLBACK_MODEL"),
        (
            vec![("LLM_FALLBACK_MODEL", Some("bad model!"))],
            "LLM_FALLBACK_MODEL",
        ),
        (
            vec![("LLM_FALLBACK_API_KEY", Some("  "))],
            "LLM_FALLBACK_API_KEY",
        ),
        (
            vec![("LLM_FALLBACK_BASE_URL", None)],
            "LLM_FALLBACK_API_KEY",
        ),
        (
            vec![
                ("LLM_FALLBACK_BASE_URL", None),
                ("LLM_FALLBACK_API_KEY", None),
            ],
            "LLM_FALLBACK_MODEL",
        ),
    ] {
        assert_eq!(with(&changes).as_deref(), Some(var), "{changes:?}");
    }
    // The template always sets the provider: alone it configures nothing.
    let unset = [
        ("LLM_FALLBACK_BASE_URL", None),
        ("LLM_FALLBACK_API_KEY", None),
        ("LLM_FALLBACK_MODEL", None),
    ];
    assert_eq!(with(&unset), None);
    let local: HashMap<String, String> = [
        (
            "LLM_FALLBACK_BASE_URL".to_owned(),
            fallback.base_url.clone(),
        ),
        ("LLM_FALLBACK_MODEL".to_owned(), "fake-large".to_owned()),
    ]
    .into();
    let e = ChatSetup::from_env(&local, RuntimeMode::Local)
        .err()
        .unwrap();
    assert_eq!(e.var, "LLM_FALLBACK_BASE_URL");
}
