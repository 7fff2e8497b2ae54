//! Both provider formats against their fake servers: multi-step tool transcripts that round
//! trip, retries (Anthropic's 529 included), the key refresh, `max_tokens`, bounded and
//! unquoted malformed answers, no redirects, and the fakes refusing what the real APIs refuse.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use bastion_chat::provider::{
    Completion, CompletionRequest, ModelToolCall, PromptMessage, ProviderError, Usage,
};
use bastion_chat::testing::{Answer, FAKE_KEY, FakeLlm, Format, default_reply};
use bastion_chat::{ChatSetup, RuntimeMode};
use bastion_core::tools::ToolName;
use serde_json::{Value, json};

fn env_of(fake: &FakeLlm, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = fake
        .env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env
}

fn setup(fake: &FakeLlm, extra: &[(&str, &str)]) -> ChatSetup {
    ChatSetup::from_env(&env_of(fake, extra), RuntimeMode::Lambda).unwrap()
}

fn request(messages: &[PromptMessage], tools: &[ToolName]) -> CompletionRequest {
    CompletionRequest {
        model: "fake-small".to_owned(),
        messages: messages.to_vec(),
        tools: tools.to_vec(),
    }
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// `(id, name, arguments as JSON)`: Anthropic re-serialises `input`, so arguments compare as
/// values, not text.
fn calls_of(completion: &Completion) -> Vec<(String, String, Value)> {
    completion
        .tool_calls
        .iter()
        .map(|c| {
            (
                c.id.clone(),
                c.name.clone(),
                serde_json::from_str(&c.arguments).unwrap(),
            )
        })
        .collect()
}

fn tools(name: &str, arguments: Value) -> (String, String) {
    (name.to_owned(), arguments.to_string())
}

const R1: &str = r#"{"ok":true,"output":{"bytes":4}}"#;
const R2: &str = r#"{"ok":true,"output":{"exit_code":0,"stdout":"2 notes.txt\n"}}"#;
const R3: &str = r#"{"ok":false,"error":{"code":"not_found","message":"no such file"}}"#;

/// The model's side of [`a_multi_step_transcript_round_trips`].
fn script_three_steps(fake: &FakeLlm) {
    fake.script([
        Answer::Tools {
            text: None,
            calls: vec![
                tools(
                    "write_file",
                    json!({"path": "notes.txt", "content": "a\nb\n"}),
                ),
                tools("run_command", json!({"command": "wc -l notes.txt"})),
            ],
        },
        Answer::Tools {
            text: Some("Reading it back.".into()),
            calls: vec![tools("read_file", json!({"path": "nope.txt"}))],
        },
        Answer::Reply("notes.txt has 2 lines.".into()),
    ]);
}

/// Write a file and run a command on it (two calls in one answer), read it back (text and a
/// call), then answer; every request carries the whole transcript back, and the fake accepts
/// each as the real API would.
async fn a_multi_step_transcript_round_trips(fake: FakeLlm) {
    let provider = setup(&fake, &[]).provider;
    script_three_steps(&fake);
    let all = ToolName::ALL;
    let mut prompt = vec![
        PromptMessage::system("You are terse."),
        PromptMessage::user("How many lines?"),
    ];
    let first = provider.complete(&request(&prompt, &all)).await.unwrap();
    assert_eq!(first.content, "");
    assert_eq!(
        calls_of(&first),
        vec![
            (
                "call_1".into(),
                "write_file".into(),
                json!({"path": "notes.txt", "content": "a\nb\n"})
            ),
            (
                "call_2".into(),
                "run_command".into(),
                json!({"command": "wc -l notes.txt"})
            ),
        ]
    );
    assert_eq!(
        first.usage,
        Usage {
            prompt_tokens: 11,
            completion_tokens: 7
        }
    );
    prompt.push(PromptMessage::assistant("", first.tool_calls.clone()));
    prompt.push(PromptMessage::tool_result(
        "call_1",
        "write_file",
        R1.into(),
    ));
    prompt.push(PromptMessage::tool_result(
        "call_2",
        "run_command",
        R2.into(),
    ));
    let second = provider.complete(&request(&prompt, &all)).await.unwrap();
    assert_eq!(second.content, "Reading it back.");
    assert_eq!(
        calls_of(&second),
        vec![(
            "call_3".into(),
            "read_file".into(),
            json!({"path": "nope.txt"})
        )]
    );
    prompt.push(PromptMessage::assistant(
        "Reading it back.",
        second.tool_calls.clone(),
    ));
    prompt.push(PromptMessage::tool_result("call_3", "read_file", R3.into()));
    let third = provider.complete(&request(&prompt, &all)).await.unwrap();
    assert_eq!(third.content, "notes.txt has 2 lines.");
    assert_eq!(third.tool_calls, Vec::new());
    prompt.push(PromptMessage::assistant(
        "notes.txt has 2 lines.",
        Vec::new(),
    ));
    prompt.push(PromptMessage::user("Thanks!"));
    let fourth = provider.complete(&request(&prompt, &[])).await.unwrap();
    assert_eq!(fourth.content, default_reply("Thanks!"));
    the_model_was_sent_the_whole_transcript(&fake);
}

/// What the fake saw of [`a_multi_step_transcript_round_trips`], the same in both formats
/// (Anthropic's results also say whether the call failed).
fn the_model_was_sent_the_whole_transcript(fake: &FakeLlm) {
    assert_eq!(fake.refusals(), Vec::<String>::new());
    if fake.format == Format::Anthropic {
        let results = &fake.requests()[2]["messages"][4]["content"];
        assert_eq!(results[0]["tool_use_id"], "call_3");
        assert_eq!(results[0]["is_error"], true);
        let earlier = &fake.requests()[2]["messages"][2]["content"];
        assert_eq!(earlier[0].get("is_error"), None);
    }
    assert_eq!(
        fake.tools_of(0),
        ["run_command", "read_file", "write_file", "list_files"]
    );
    // Offered none, the replayed steps still need their tools defined on Anthropic's API.
    match fake.format {
        Format::OpenAi => assert_eq!(fake.tools_of(3), Vec::<String>::new()),
        Format::Anthropic => {
            assert_eq!(fake.tools_of(3), fake.tools_of(0));
            assert_eq!(fake.requests()[3]["tool_choice"], json!({"type": "none"}));
        }
    }
    assert_eq!(fake.tool_results_of(0), vec![]);
    assert_eq!(
        fake.tool_results_of(1),
        pairs(&[("call_1", R1), ("call_2", R2)])
    );
    assert_eq!(
        fake.tool_results_of(3),
        pairs(&[("call_1", R1), ("call_2", R2), ("call_3", R3)])
    );
    assert_eq!(
        fake.transcript_of(3),
        pairs(&[
            ("system", "You are terse."),
            ("user", "How many lines?"),
            ("assistant", ""),
            ("tool", R1),
            ("tool", R2),
            ("assistant", "Reading it back."),
            ("tool", R3),
            ("assistant", "notes.txt has 2 lines."),
            ("user", "Thanks!"),
        ])
    );
    let sent_back: Vec<(String, String)> = fake
        .tool_calls_of(3)
        .into_iter()
        .map(|(id, name, _)| (id, name))
        .collect();
    assert_eq!(
        sent_back,
        pairs(&[
            ("call_1", "write_file"),
            ("call_2", "run_command"),
            ("call_3", "read_file")
        ])
    );
    assert_eq!(
        serde_json::from_str::<Value>(&fake.tool_calls_of(3)[0].2).unwrap(),
        json!({"path": "notes.txt", "content": "a\nb\n"})
    );
}

#[tokio::test]
async fn a_multi_step_tool_transcript_round_trips_through_the_openai_fake() {
    a_multi_step_transcript_round_trips(FakeLlm::start().await).await;
}

#[tokio::test]
async fn a_multi_step_tool_transcript_round_trips_through_the_anthropic_fake() {
    a_multi_step_transcript_round_trips(FakeLlm::start_anthropic().await).await;
}

/// A turn that stopped at its step cap leaves results last; the next turn's user text
/// follows them (Anthropic: in the same user message, after the results).
async fn results_then_new_user_text_are_accepted(fake: FakeLlm) {
    let provider = setup(&fake, &[]).provider;
    let call = ModelToolCall {
        id: "call_77".into(),
        name: "list_files".into(),
        arguments: "{}".into(),
    };
    let prompt = [
        PromptMessage::user("list them"),
        PromptMessage::assistant("", vec![call]),
        PromptMessage::tool_result("call_77", "list_files", R1.into()),
        PromptMessage::user("go on"),
    ];
    let reply = provider.complete(&request(&prompt, &[])).await.unwrap();
    assert_eq!(reply.content, default_reply("go on"));
    assert_eq!(fake.refusals(), Vec::<String>::new());
    assert_eq!(
        fake.transcript_of(0),
        pairs(&[
            ("user", "list them"),
            ("assistant", ""),
            ("tool", R1),
            ("user", "go on")
        ])
    );
}

#[tokio::test]
async fn results_followed_by_the_next_user_text_are_accepted_in_both_formats() {
    results_then_new_user_text_are_accepted(FakeLlm::start().await).await;
    results_then_new_user_text_are_accepted(FakeLlm::start_anthropic().await).await;
}

#[tokio::test]
async fn argument_text_that_is_not_json_reaches_the_loop_as_text_in_both_formats() {
    for (fake, want) in [
        (FakeLlm::start().await, "{\"path\": "),
        (FakeLlm::start_anthropic().await, "\"{\\\"path\\\": \""),
    ] {
        let provider = setup(&fake, &[]).provider;
        fake.script([Answer::Tools {
            text: None,
            calls: vec![("read_file".into(), "{\"path\": ".into())],
        }]);
        let prompt = [PromptMessage::user("read it")];
        let reply = provider.complete(&request(&prompt, &[])).await.unwrap();
        assert_eq!(reply.tool_calls[0].arguments, want);
        // Sent back, the broken call is still a well-formed transcript.
        let mut next = prompt.to_vec();
        next.push(PromptMessage::assistant("", reply.tool_calls.clone()));
        next.push(PromptMessage::tool_result("call_1", "read_file", R3.into()));
        provider.complete(&request(&next, &[])).await.unwrap();
        assert_eq!(fake.refusals(), Vec::<String>::new());
    }
}

#[tokio::test]
async fn anthropic_overloaded_529_and_429_are_retried_within_the_budget() {
    let fake = FakeLlm::start_anthropic().await;
    let provider = setup(&fake, &[]).provider;
    fake.script([
        Answer::Status(529),
        Answer::Status(429),
        Answer::Reply("third time lucky".into()),
    ]);
    let prompt = [PromptMessage::user("hi")];
    let reply = provider.complete(&request(&prompt, &[])).await.unwrap();
    assert_eq!(reply.content, "third time lucky");
    assert_eq!(fake.requests().len(), 3);

    fake.script([
        Answer::Status(529),
        Answer::Status(529),
        Answer::Status(529),
    ]);
    let err = provider.complete(&request(&prompt, &[])).await.unwrap_err();
    assert_eq!(err, ProviderError::Status(529));
    assert_eq!(fake.requests().len(), 6);

    fake.script([Answer::Status(400)]);
    let err = provider.complete(&request(&prompt, &[])).await.unwrap_err();
    assert_eq!(err, ProviderError::Status(400));
    assert_eq!(fake.requests().len(), 7);
}

#[tokio::test]
async fn a_key_stored_by_a_secret_refresh_is_sent_by_the_anthropic_provider() {
    let fake = FakeLlm::start_anthropic().await;
    let setup = setup(&fake, &[("LLM_API_KEY", "sk-old-revoked")]);
    let prompt = [PromptMessage::user("hi")];
    let err = setup
        .provider
        .complete(&request(&prompt, &[]))
        .await
        .unwrap_err();
    assert_eq!(err, ProviderError::Status(401));
    assert_eq!(fake.refusals(), vec!["bad x-api-key".to_owned()]);
    let env: HashMap<String, String> = [("LLM_API_KEY".to_owned(), FAKE_KEY.to_owned())].into();
    setup
        .api_key
        .store(bastion_chat::config::api_key(&env).unwrap());
    let reply = setup
        .provider
        .complete(&request(&prompt, &[]))
        .await
        .unwrap();
    assert_eq!(reply.content, default_reply("hi"));
    assert_eq!(fake.refusals().len(), 1);
}

#[tokio::test]
async fn max_tokens_is_4096_for_anthropic_by_default_and_sent_to_openai_only_when_set() {
    let prompt = [PromptMessage::user("hi")];
    for (fake, extra, want) in [
        (FakeLlm::start_anthropic().await, None, Some(4096)),
        (FakeLlm::start_anthropic().await, Some("99"), Some(99)),
        (FakeLlm::start().await, None, None),
        (FakeLlm::start().await, Some("99"), Some(99)),
    ] {
        let extra: Vec<(&str, &str)> = extra.map(|n| ("LLM_MAX_TOKENS", n)).into_iter().collect();
        let provider = setup(&fake, &extra).provider;
        provider.complete(&request(&prompt, &[])).await.unwrap();
        assert_eq!(
            fake.requests()[0].get("max_tokens").and_then(Value::as_u64),
            want
        );
    }
}

#[tokio::test]
async fn malformed_or_overbounded_answers_fail_without_quoting_them_in_both_formats() {
    let secret = "my-secret-diary";
    let openai_calls = |n: usize| {
        let calls: Vec<Value> = (0..n)
            .map(|i| json!({"id": format!("c{i}"), "type": "function", "function": {"name": "read_file", "arguments": secret}}))
            .collect();
        json!({"choices": [{"message": {"content": null, "tool_calls": calls}}]}).to_string()
    };
    let anthropic_calls = |n: usize| {
        let blocks: Vec<Value> = (0..n)
            .map(|i| json!({"type": "tool_use", "id": format!("t{i}"), "name": "read_file", "input": {"path": secret}}))
            .collect();
        json!({"content": blocks, "stop_reason": "tool_use"}).to_string()
    };
    let prompt = [PromptMessage::user("hi")];
    for (fake, too_many, just_enough, quoting) in [
        (
            FakeLlm::start().await,
            openai_calls(65),
            openai_calls(64),
            // serde's own message would quote a string where a number belongs.
            json!({"choices": [{"message": {"content": "hi"}}], "usage": {"prompt_tokens": secret}}).to_string(),
        ),
        (
            FakeLlm::start_anthropic().await,
            anthropic_calls(65),
            anthropic_calls(64),
            json!({"content": [{"type": "text", "text": "hi"}], "usage": {"input_tokens": secret}}).to_string(),
        ),
    ] {
        let provider = setup(&fake, &[]).provider;
        fake.script([
            Answer::Body(too_many),
            Answer::Body(quoting),
            Answer::Malformed,
            Answer::Body(just_enough),
        ]);
        for _ in 0..3 {
            let err = provider.complete(&request(&prompt, &[])).await.unwrap_err();
            assert!(matches!(err, ProviderError::Malformed(_)), "{err:?}");
            assert!(!err.to_string().contains("secret"), "{err}");
        }
        let ok = provider.complete(&request(&prompt, &[])).await.unwrap();
        assert_eq!(ok.tool_calls.len(), 64);
    }
}

#[tokio::test]
async fn an_anthropic_answer_slower_than_the_deadline_times_out() {
    let fake = FakeLlm::start_anthropic().await;
    let provider = setup(&fake, &[("LLM_TIMEOUT_SECS", "1")]).provider;
    fake.script([Answer::Slow(std::time::Duration::from_secs(5))]);
    let err = provider
        .complete(&request(&[PromptMessage::user("hi")], &[]))
        .await
        .unwrap_err();
    assert_eq!(err, ProviderError::Timeout);
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn an_anthropic_reply_over_one_mebibyte_is_refused() {
    let fake = FakeLlm::start_anthropic().await;
    let provider = setup(&fake, &[]).provider;
    fake.script([Answer::Reply("x".repeat(1024 * 1024))]);
    let err = provider
        .complete(&request(&[PromptMessage::user("hi")], &[]))
        .await
        .unwrap_err();
    assert_eq!(err, ProviderError::Malformed("reply exceeds 1 MiB".into()));
}

/// A server that counts the requests reaching it.
async fn start_catcher() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let app = axum::Router::new().fallback(move || {
        seen.fetch_add(1, Ordering::SeqCst);
        async { "{}" }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), hits)
}

/// A provider (or something in front of it) that answers with a redirect: following it would
/// hand the key to whatever the `Location` names.
async fn start_redirector(to: String) -> String {
    let app = axum::Router::new().fallback(move || {
        let to = to.clone();
        async move {
            (
                StatusCode::TEMPORARY_REDIRECT,
                [("location", format!("{to}/stolen"))],
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_redirect_is_not_followed_so_neither_format_hands_its_key_elsewhere() {
    let (catcher_url, hits) = start_catcher().await;
    let redirector = start_redirector(catcher_url).await;
    for provider in ["openai", "anthropic"] {
        let env: HashMap<String, String> = [
            ("LLM_PROVIDER", provider),
            ("LLM_BASE_URL", redirector.as_str()),
            ("LLM_API_KEY", FAKE_KEY),
            ("LLM_MODEL", "fake-small"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let setup = ChatSetup::from_env(&env, RuntimeMode::Lambda).unwrap();
        let err = setup
            .provider
            .complete(&request(&[PromptMessage::user("hi")], &[]))
            .await
            .unwrap_err();
        assert_eq!(err, ProviderError::Status(307), "{provider}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

/// Posts `body` to the fake with `headers`; the status it answered.
async fn post_raw(fake: &FakeLlm, headers: &[(&str, &str)], body: &Value) -> u16 {
    let path = match fake.format {
        Format::OpenAi => "/chat/completions",
        Format::Anthropic => "/v1/messages",
    };
    // The process's one TLS stack (reqwest is built without a default provider).
    let tls = bastion_core::tls::roots().client_config().unwrap();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap();
    let mut req = client.post(format!("{}{path}", fake.base_url)).json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().status().as_u16()
}

/// A request the fake must refuse: its headers (`None`: the good ones), its body, and the
/// status and refusal expected.
type Case<'a> = (Option<Vec<(&'a str, &'a str)>>, Value, u16, &'a str);

/// Sends each case and checks the fake refused it as expected, then that a good request still
/// passes.
async fn expect_refusals(
    fake: &FakeLlm,
    good_headers: &[(&str, &str)],
    good: Value,
    cases: Vec<Case<'_>>,
) {
    for (n, (headers, body, status, why)) in cases.into_iter().enumerate() {
        let headers = headers.unwrap_or_else(|| good_headers.to_vec());
        assert_eq!(post_raw(fake, &headers, &body).await, status, "{why}");
        assert_eq!(fake.refusals().len(), n + 1, "{why}: {body}");
        assert_eq!(fake.refusals()[n], why, "{body}");
    }
    assert!(fake.requests().is_empty());
    assert_eq!(post_raw(fake, good_headers, &good).await, 200);
    assert_eq!(fake.requests().len(), 1);
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

#[tokio::test]
async fn the_openai_fake_refuses_what_chat_completions_refuses() {
    let fake = FakeLlm::start().await;
    let bearer = format!("Bearer {FAKE_KEY}");
    let auth = vec![("authorization", bearer.as_str())];
    let with = |messages: Value| json!({"model": "fake-small", "messages": messages});
    let calls = json!([{"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": "{}"}}]);
    let asked = json!({"role": "assistant", "content": null, "tool_calls": calls});
    let result = |id: &str| json!({"role": "tool", "tool_call_id": id, "content": "r"});
    let mut tools_as_anthropic = with(json!([user("hi")]));
    tools_as_anthropic["tools"] =
        json!([{"name": "read_file", "input_schema": {"type": "object"}}]);
    let mut empty_tools = with(json!([user("hi")]));
    empty_tools["tools"] = json!([]);
    let mut streamed = with(json!([user("hi")]));
    streamed["stream"] = json!("yes");
    let mut options_unstreamed = with(json!([user("hi")]));
    options_unstreamed["stream_options"] = json!({"include_usage": true});
    let mut choice_without_tools = with(json!([user("hi")]));
    choice_without_tools["tool_choice"] = json!("none");
    let mut unknown_field = with(json!([user("hi")]));
    unknown_field["functions"] = json!([]);
    let order = "bad message order";
    let unanswered = "tool calls without results before the next message";
    expect_refusals(
        &fake,
        &auth,
        with(json!([user("hi"), asked, result("c1"), {"role": "assistant", "content": "done"}, user("more")])),
        vec![
            (Some(vec![]), with(json!([user("hi")])), 401, "bad authorization"),
            (Some(vec![("x-api-key", FAKE_KEY)]), with(json!([user("hi")])), 401, "bad authorization"),
            (None, json!({"model": "gpt-4", "messages": [user("hi")]}), 404, "unknown model gpt-4"),
            (None, tools_as_anthropic, 400, "tool: unexpected field input_schema"),
            (None, empty_tools, 400, "tools without the right shape: an empty list"),
            (None, streamed, 400, "stream must be a boolean"),
            (None, options_unstreamed, 400, "stream_options is only allowed with stream"),
            (None, unknown_field, 400, "request: unexpected field functions"),
            (None, choice_without_tools, 400, "tool_choice without the right shape or tools"),
            (None, with(json!([user("a"), user("b")])), 400, order),
            (None, with(json!([{"role": "assistant", "content": "x"}, user("a")])), 400, order),
            (None, with(json!([user("a"), {"role": "assistant", "content": "x"}])), 400, order),
            (None, with(json!([user("a"), {"role": "system", "content": "late"}])), 400, order),
            (None, with(json!([user("a"), asked, user("b")])), 400, unanswered),
            (None, with(json!([user("a"), asked])), 400, unanswered),
            (None, with(json!([user("a"), result("c9")])), 400, "tool result for a call the assistant did not just make: c9"),
            (None, with(json!([user("a"), asked, result("c1"), result("c1")])), 400, "tool result for a call the assistant did not just make: c1"),
            (None, with(json!([user("a"), {"role": "assistant", "content": null}, user("b")])), 400, "content must be a string"),
            (None, with(json!([user("a"), {"role": "assistant", "content": "x", "tool_calls": [{"id": "c2", "function": {"name": "f", "arguments": {}}}]}])), 400, "a tool call without the right shape"),
        ],
    )
    .await;
}

#[tokio::test]
async fn the_anthropic_fake_refuses_what_the_messages_api_refuses() {
    let fake = FakeLlm::start_anthropic().await;
    let good_headers = vec![("x-api-key", FAKE_KEY), ("anthropic-version", "2023-06-01")];
    let bearer = format!("Bearer {FAKE_KEY}");
    let read_file = json!([{"name": "read_file", "input_schema": {"type": "object"}}]);
    let with = |messages: Value| json!({"model": "fake-small", "max_tokens": 64, "messages": messages, "tools": read_file});
    let text = |t: &str| json!({"type": "text", "text": t});
    let used = |id: &str| json!({"role": "assistant", "content": [{"type": "tool_use", "id": id, "name": "read_file", "input": {}}]});
    let result = |id: &str| json!({"type": "tool_result", "tool_use_id": id, "content": "r"});
    let blocks = |b: Vec<Value>| json!({"role": "user", "content": b});
    let mut tools_as_openai = with(json!([user("hi")]));
    tools_as_openai["tools"] = json!([{"type": "function", "function": {"name": "read_file", "parameters": {"type": "object"}}}]);
    let mut undefined_tools = with(json!([user("a"), used("t1"), blocks(vec![result("t1")])]));
    undefined_tools.as_object_mut().unwrap().remove("tools");
    let mut choice_without_tools = with(json!([user("hi")]));
    choice_without_tools
        .as_object_mut()
        .unwrap()
        .remove("tools");
    choice_without_tools["tool_choice"] = json!({"type": "none"});
    let mut nameless_choice = with(json!([user("hi")]));
    nameless_choice["tool_choice"] = json!({"type": "tool"});
    let mut no_schema = with(json!([user("hi")]));
    no_schema["tools"] = json!([{"name": "read_file", "description": "d"}]);
    let order = "bad role order";
    expect_refusals(
        &fake,
        &good_headers,
        with(json!([
            user("hi"),
            used("t1"),
            blocks(vec![result("t1"), text("and then")]),
            {"role": "assistant", "content": [text("done")]},
            user("more"),
        ])),
        vec![
            (Some(vec![("authorization", bearer.as_str()), ("anthropic-version", "2023-06-01")]), with(json!([user("hi")])), 401, "bad x-api-key"),
            (Some(vec![("x-api-key", FAKE_KEY)]), with(json!([user("hi")])), 400, "bad anthropic-version"),
            (Some(vec![("x-api-key", FAKE_KEY), ("anthropic-version", "2024-01-01")]), with(json!([user("hi")])), 400, "bad anthropic-version"),
            (None, json!({"model": "claude-9", "max_tokens": 5, "messages": [user("hi")]}), 404, "unknown model claude-9"),
            (None, json!({"model": "fake-small", "messages": [user("hi")]}), 400, "max_tokens: field required"),
            (None, tools_as_openai, 400, "tool: unexpected field function"),
            (None, no_schema, 400, "tools without the right shape: input_schema missing or not an object schema"),
            (None, undefined_tools, 400, "requests which include tool_use or tool_result blocks must define tools"),
            (None, choice_without_tools, 400, "tool_choice without the right shape or tools"),
            (None, nameless_choice, 400, "tool_choice without the right shape or tools"),
            (None, with(json!([{"role": "system", "content": "s"}, user("hi")])), 400, order),
            (None, with(json!([{"role": "assistant", "content": "x"}, user("hi")])), 400, order),
            (None, with(json!([user("a"), user("b")])), 400, order),
            (None, with(json!([user("a"), {"role": "assistant", "content": "x"}])), 400, order),
            (None, with(json!([user("a"), used("t1"), user("b")])), 400, "tool_use left without a tool_result before the next user text"),
            (None, with(json!([user("a"), used("t1"), blocks(vec![text("see:"), result("t1")])])), 400, "tool results spliced into user text"),
            (None, with(json!([blocks(vec![result("t9")])])), 400, "tool_result for an unknown tool_use id: t9"),
            (None, with(json!([user("a"), used("t1"), blocks(vec![result("t1")]), {"role": "assistant", "content": "ok"}, blocks(vec![result("t1"), text("again")])])), 400, "tool_result t1 is not right after its tool_use"),
            (None, with(json!([blocks(vec![text("")])])), 400, "text content blocks must be non-empty"),
            (None, with(json!([{"role": "user", "content": "hi", "name": "eve"}])), 400, "message: unexpected field name"),
        ],
    )
    .await;
}
