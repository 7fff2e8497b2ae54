//! The fallback provider as deployed: its key comes from the Secrets Manager document (and is
//! refused in the plain environment), a primary failing before any output hands the streamed
//! turn to the fallback in its own wire format, the `done` event and an EMF metric line say so,
//! and after three failures the breaker keeps the primary out of the way.

use std::time::Duration;

use bastion_chat::testing::{Answer, FAKE_KEY, FakeLlm};
use bastion_lambda_tests::deployment::default_secrets;
use bastion_lambda_tests::{Deployment, Function, LambdaEnv, RestEvent};
use serde_json::{Value, json};

use crate::signed_up;

/// A deployment whose document holds the fallback's key, and chat's environment pointing the
/// fallback at an Anthropic-format fake.
async fn with_fallback() -> (Deployment, FakeLlm) {
    let mut document = default_secrets();
    document["LLM_FALLBACK_API_KEY"] = json!(FAKE_KEY);
    let d = Deployment::with_secrets(&document).await;
    let fallback = FakeLlm::start_anthropic().await;
    (d, fallback)
}

fn chat_env(d: &Deployment, fallback: &FakeLlm) -> LambdaEnv {
    d.env("chat")
        .set("LLM_FALLBACK_PROVIDER", "anthropic")
        .set("LLM_FALLBACK_BASE_URL", &fallback.env()[1].1)
        .set("LLM_FALLBACK_MODEL", "fake-large")
}

/// A streamed turn read to its end: the `done` event's data.
async fn streamed_done(chat: &Function, access: &str, message: &str) -> Value {
    let event =
        RestEvent::post_json("/chat", &json!({"message": message, "stream": true})).bearer(access);
    let stream = chat.stream(&event).await;
    assert_eq!(stream.status, 200, "{stream:?}");
    let collected = stream.collect().await;
    assert!(collected.error.is_none(), "{collected:?}");
    let body = String::from_utf8(collected.chunks.concat()).unwrap();
    let done = body
        .split("\n\n")
        .find_map(|block| block.strip_prefix("event: done\ndata: "))
        .unwrap_or_else(|| panic!("no done event in {body}"));
    serde_json::from_str(done).unwrap()
}

fn unavailable() -> Vec<Answer> {
    vec![Answer::Status(503); 3]
}

/// The failover metric lines in `output`, by their `Reason`.
fn failover_reasons(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("ChatProviderFailover").is_some())
        .map(|v| v["Reason"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_primary_failing_before_any_output_hands_the_streamed_turn_to_the_fallback() {
    let (d, fallback) = with_fallback().await;
    let auth = d.start("auth").await;
    let chat = d.start_with("chat", &chat_env(&d, &fallback)).await;
    let (_, access) = signed_up(&auth, "failover@example.com").await;
    d.llm.script(unavailable());
    fallback.script([Answer::Reply("the fallback answers".to_owned())]);

    let done = streamed_done(&chat, &access, "hello").await;
    assert_eq!(done["provider"], "fallback");
    assert_eq!(done["message"]["content"], "the fallback answers");
    assert_eq!(
        d.llm.requests().len(),
        3,
        "the first try and its two retries"
    );
    let sent = &fallback.requests()[0];
    assert_eq!(sent["model"], "fake-large");
    assert_eq!(sent["stream"], true);
    // In the fallback's own (Anthropic) format: content blocks, not OpenAI's plain string.
    assert_eq!(
        sent["messages"][0],
        json!({"role": "user", "content": [{"type": "text", "text": "hello"}]})
    );
    assert_eq!(failover_reasons(&chat.output()), ["status_503"]);
    // The key reached the fallback from the secret document.
    assert!(fallback.refusals().is_empty(), "{:?}", fallback.refusals());
}

#[tokio::test]
async fn after_three_failures_the_breaker_sends_turns_straight_to_the_fallback() {
    let (d, fallback) = with_fallback().await;
    let auth = d.start("auth").await;
    let chat = d.start_with("chat", &chat_env(&d, &fallback)).await;
    let (_, access) = signed_up(&auth, "breaker@example.com").await;
    for i in 0..3 {
        d.llm.script(unavailable());
        let done = streamed_done(&chat, &access, &format!("try {i}")).await;
        assert_eq!(done["provider"], "fallback", "{i}");
    }
    assert_eq!(d.llm.requests().len(), 9);
    // Open now: the primary would answer, but it is not asked.
    d.llm
        .script([Answer::Reply("the primary is back".to_owned())]);
    let done = streamed_done(&chat, &access, "and now?").await;
    assert_eq!(done["provider"], "fallback");
    assert_eq!(
        d.llm.requests().len(),
        9,
        "the open breaker skipped the primary"
    );
    assert_eq!(
        failover_reasons(&chat.output()),
        ["status_503", "status_503", "status_503", "breaker_open"]
    );
}

#[tokio::test]
async fn the_fallback_key_in_the_plain_environment_stops_chat_at_start_naming_it() {
    let (d, fallback) = with_fallback().await;
    let env = chat_env(&d, &fallback).set("LLM_FALLBACK_API_KEY", "sk-plain-fallback-key");
    let mut chat = d.start_with("chat", &env).await;
    let status = chat
        .exit_within(Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("chat kept running: {}", chat.output()));
    assert!(!status.success());
    let report = chat.runtime.init_error_report().unwrap();
    assert_eq!(
        report.body["errorMessage"],
        json!(
            "configuration LLM_FALLBACK_API_KEY: is a secret and must not be in the Lambda \
             environment; put it in the Secrets Manager document named by BASTION_SECRET_ID"
        )
    );
    assert!(!chat.output().contains("sk-plain-fallback-key"));
}
