//! `POST /chat` streamed as server-sent events, end to end with the exec tools in-process: the
//! events of an agent turn in order on both stores and both wire formats, what is refused
//! before the stream begins (still the JSON envelope and its status), a failure after it began
//! (an `error` event), keep-alive comments while a tool runs, and a client that goes away.

use std::collections::VecDeque;

use axum::body::Body;
use bastion_chat::provider::sse::SseDecoder;
use bastion_chat::testing::{Answer, FakeLlm};
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::agent::{Store, Wire, agent_app, fake, reply, tools};
use crate::helpers::{Session, TestApp};

/// One event as a client parses it: its name and its data.
pub type Event = (String, Value);

/// A streamed answer read as it arrives, through the decoder the provider adapters use.
pub struct Sse {
    pub status: StatusCode,
    pub content_type: String,
    body: Body,
    decoder: SseDecoder,
    pending: VecDeque<Event>,
}

impl Sse {
    /// The next event, or `None` when the stream has ended (never in the middle of one).
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            let Some(frame) = self.body.frame().await else {
                assert!(
                    !self.decoder.is_mid_event(),
                    "the stream ended inside an event"
                );
                return None;
            };
            if let Ok(data) = frame.unwrap().into_data() {
                for e in self.decoder.push(&data).unwrap() {
                    let data = serde_json::from_str(&e.data).unwrap();
                    self.pending.push_back((e.event, data));
                }
            }
        }
    }

    /// Every event left, up to the end of the stream.
    pub async fn rest(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(e) = self.next().await {
            events.push(e);
        }
        events
    }

    /// Comment lines (keep-alives) seen so far.
    pub fn comments(&self) -> u64 {
        self.decoder.comments()
    }
}

impl TestApp {
    /// `POST /chat` with `body`, its answer read as a stream.
    pub async fn stream_chat(&self, who: &Session, body: Value) -> Sse {
        let req = Request::builder()
            .method(Method::POST)
            .uri("/chat")
            .header("authorization", format!("Bearer {}", who.access))
            .header("content-type", "application/json")
            .header("accept", "text/event-stream")
            .body(Body::from(body.to_string()))
            .unwrap();
        let res = self.open(req).await;
        let content_type = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        Sse {
            status: res.status(),
            content_type,
            body: res.into_body(),
            decoder: SseDecoder::new(),
            pending: VecDeque::new(),
        }
    }

    /// Waits (polling, never a fixed pause) until every streamed turn's task has ended.
    pub async fn settled(&self) {
        for _ in 0..500 {
            if self.streamed_turns_running() == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("a streamed turn is still running after 5 s");
    }
}

/// The credits left after one more (buffered) turn, which takes one.
async fn credits_after_a_turn(app: &TestApp, fake: &FakeLlm, who: &Session) -> Value {
    fake.script([reply("one more")]);
    let r = app
        .call(
            Method::POST,
            "/chat",
            Some(&who.access),
            Some(json!({"message": "hi"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["credits_remaining"].clone()
}

/// The events' names, a run of `delta`s counted as one (the fakes stream text word by word).
fn names(events: &[Event]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for (n, _) in events {
        if !(n == "delta" && names.last() == Some(&"delta")) {
            names.push(n);
        }
    }
    names
}

/// The text of every `delta`, joined.
fn text_of(events: &[Event]) -> String {
    events
        .iter()
        .filter(|(n, _)| n == "delta")
        .map(|(_, d)| d["text"].as_str().unwrap())
        .collect()
}

async fn streamed_agent_turn(wire: Wire, store: Store) {
    let fake = fake(wire).await;
    let app = agent_app(&fake, store, &[]).await;
    let alice = app.signed_up("alice@example.com").await;
    fake.script([
        tools(&[("write_file", json!({"path": "a.txt", "content": "hi\n"}))]),
        reply("a.txt is written."),
    ]);
    let mut sse = app
        .stream_chat(&alice, json!({"message": "write a.txt", "stream": true}))
        .await;
    assert_eq!(sse.status, StatusCode::OK);
    assert_eq!(sse.content_type, "text/event-stream");
    let events = sse.rest().await;
    assert_eq!(
        names(&events),
        ["turn", "tool_call", "tool_result", "delta", "done"],
        "{events:?}"
    );
    let conversation = events[0].1["conversation_id"].as_str().unwrap().to_owned();
    assert_eq!(events[0].1, json!({"conversation_id": conversation}));
    assert_eq!(
        events[1].1,
        json!({"type": "tool_call", "step": 1, "id": events[1].1["id"], "name": "write_file",
               "arguments": {"path": "a.txt", "content": "hi\n"}})
    );
    assert_eq!(events[2].1["type"], "tool_result");
    assert_eq!(events[2].1["ok"], true);
    assert_eq!(text_of(&events), "a.txt is written.");
    assert!(
        events.len() > 5,
        "the text came in more than one delta: {events:?}"
    );
    let done = &events.last().unwrap().1;
    assert_eq!(done["stop_reason"], "end_turn");
    assert_eq!(done["provider"], "primary");
    assert_eq!(
        done["credits_remaining"], 18,
        "two model calls, two credits"
    );
    assert_eq!(done["message"]["content"], "a.txt is written.");
    assert_eq!(
        done["usage"],
        json!({"prompt_tokens": 22, "completion_tokens": 14})
    );

    // The stored turn is the one the stream described, steps included.
    let r = app
        .get(
            &format!("/chat/conversations/{conversation}"),
            &alice.access,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let answer = &r.body["messages"][0];
    assert_eq!(answer["id"], done["message"]["id"]);
    assert_eq!(answer["steps"], json!([events[1].1, events[2].1]));
    assert_eq!(answer.get("incomplete"), None);
    assert_eq!(fake.requests()[0]["stream"], true);
    app.settled().await;
}

#[tokio::test]
async fn a_streamed_agent_turn_sends_turn_steps_deltas_and_done_in_order_openai_sqlite() {
    streamed_agent_turn(Wire::OpenAi, Store::Sqlite).await;
}

#[tokio::test]
async fn a_streamed_agent_turn_sends_turn_steps_deltas_and_done_in_order_anthropic_sqlite() {
    streamed_agent_turn(Wire::Anthropic, Store::Sqlite).await;
}

#[tokio::test]
async fn a_streamed_agent_turn_sends_turn_steps_deltas_and_done_in_order_openai_dynamodb() {
    streamed_agent_turn(Wire::OpenAi, Store::Dynamo).await;
}

#[tokio::test]
async fn the_accept_header_asks_for_the_stream_and_stream_false_keeps_json() {
    let fake = FakeLlm::start().await;
    let app = agent_app(&fake, Store::Sqlite, &[]).await;
    let alice = app.signed_up("alice@example.com").await;
    fake.script([reply("streamed"), reply("buffered")]);
    let mut sse = app.stream_chat(&alice, json!({"message": "hi"})).await;
    assert_eq!(sse.content_type, "text/event-stream");
    assert_eq!(names(&sse.rest().await), ["turn", "delta", "done"]);

    let r = app
        .call(
            Method::POST,
            "/chat",
            Some(&alice.access),
            Some(json!({"message": "hi", "stream": false})),
        )
        .header("accept", "text/event-stream")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.body["message"]["content"], "buffered");
    app.settled().await;
}

#[tokio::test]
async fn what_is_refused_before_the_stream_begins_answers_the_json_envelope_and_its_status() {
    let fake = FakeLlm::start().await;
    let app = agent_app(&fake, Store::Sqlite, &[("PLAN_FREE_DAILY_CREDITS", "1")]).await;
    let alice = app.signed_up("alice@example.com").await;
    let refusals = [
        (json!({"message": ""}), 400, "empty_message"),
        (
            json!({"message": "hi", "model": "gpt-nope"}),
            400,
            "model_not_allowed",
        ),
        (
            json!({"message": "hi", "tools": ["shell"]}),
            400,
            "invalid_request",
        ),
        (
            json!({"message": "hi", "conversation_id": "0".repeat(44)}),
            404,
            "not_found",
        ),
    ];
    for (body, status, code) in refusals {
        let sse = app.stream_chat(&alice, body.clone()).await;
        assert_eq!(sse.status.as_u16(), status, "{body}");
        assert_eq!(sse.content_type, "application/json", "{body}");
        let bytes = sse.body.collect().await.unwrap().to_bytes();
        let envelope: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(envelope["error"]["code"], code, "{body}");
    }
    // The one credit goes on a turn; the next is refused for quota before any byte streams.
    fake.script([reply("the only answer today")]);
    let mut first = app.stream_chat(&alice, json!({"message": "hi"})).await;
    assert_eq!(names(&first.rest().await), ["turn", "delta", "done"]);
    let spent = app.stream_chat(&alice, json!({"message": "again"})).await;
    assert_eq!(spent.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(spent.content_type, "application/json");
    assert_eq!(
        fake.requests().len(),
        1,
        "no model call after the quota refusal"
    );

    let mut nobody = Session::clone(&alice);
    nobody.access = "not-a-token".to_owned();
    let unauthenticated = app.stream_chat(&nobody, json!({"message": "hi"})).await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unauthenticated.content_type, "application/json");
    app.settled().await;
}

#[tokio::test]
async fn a_turn_on_a_busy_conversation_is_refused_with_409_before_the_stream_begins() {
    let fake = FakeLlm::start().await;
    let app = agent_app(&fake, Store::Sqlite, &[]).await;
    let alice = app.signed_up("alice@example.com").await;
    fake.script([
        reply("first"),
        Answer::Slow(std::time::Duration::from_secs(30)),
    ]);
    let mut first = app.stream_chat(&alice, json!({"message": "one"})).await;
    let all = first.rest().await;
    let id = all[0].1["conversation_id"].as_str().unwrap().to_owned();
    // The second turn holds the conversation while its model call is slow.
    let mut slow = app
        .stream_chat(&alice, json!({"message": "two", "conversation_id": id}))
        .await;
    assert_eq!(slow.next().await.unwrap().0, "turn");
    let busy = app
        .stream_chat(&alice, json!({"message": "three", "conversation_id": id}))
        .await;
    assert_eq!(busy.status, StatusCode::CONFLICT);
    assert_eq!(busy.content_type, "application/json");
    drop(slow);
    app.settled().await;
}

#[tokio::test]
async fn a_provider_failure_after_the_stream_began_is_an_error_event_and_the_credit_is_refunded() {
    let fake = FakeLlm::start().await;
    let app = agent_app(&fake, Store::Sqlite, &[]).await;
    let alice = app.signed_up("alice@example.com").await;
    fake.script([Answer::Status(400)]);
    let mut sse = app.stream_chat(&alice, json!({"message": "hi"})).await;
    assert_eq!(sse.status, StatusCode::OK);
    let events = sse.rest().await;
    assert_eq!(names(&events), ["turn", "error"], "{events:?}");
    assert_eq!(events[1].1["code"], "upstream_error");
    assert_eq!(events[1].1["message"], "the language model provider failed");
    assert_eq!(events[1].1["request_id"].as_str().unwrap().len(), 32);
    assert_eq!(
        credits_after_a_turn(&app, &fake, &alice).await,
        19,
        "the failed call's credit came back"
    );
    app.settled().await;
}

#[tokio::test]
async fn keep_alive_comments_flow_while_a_tool_runs() {
    let fake = FakeLlm::start().await;
    let app = agent_app(
        &fake,
        Store::Sqlite,
        &[
            ("CHAT_STREAM_KEEPALIVE_SECS", "1"),
            ("EXEC_ALLOWED_COMMANDS", "sleep"),
        ],
    )
    .await;
    let alice = app.signed_up("alice@example.com").await;
    fake.script([
        tools(&[("run_command", json!({"command": "sleep 3"}))]),
        reply("slept"),
    ]);
    let mut sse = app.stream_chat(&alice, json!({"message": "nap"})).await;
    let mut seen = Vec::new();
    while let Some((name, _)) = sse.next().await {
        seen.push((name, sse.comments()));
    }
    let at = |n: &str| seen.iter().find(|(e, _)| e == n).unwrap().1;
    assert!(
        at("tool_result") > at("tool_call"),
        "a 3 s tool under 1 s keep-alives sends comments between its call and its result: {seen:?}"
    );
    app.settled().await;
}

#[tokio::test]
async fn a_client_that_goes_away_stops_the_turn_which_is_stored_incomplete_with_its_credits_kept() {
    let fake = FakeLlm::start().await;
    let app = agent_app(&fake, Store::Sqlite, &[]).await;
    let alice = app.signed_up("alice@example.com").await;
    fake.script([
        tools(&[("list_files", json!({}))]),
        Answer::Stall { after_chunks: 1 },
        reply("never asked for"),
    ]);
    let mut sse = app.stream_chat(&alice, json!({"message": "look"})).await;
    let turn = sse.next().await.unwrap();
    let id = turn.1["conversation_id"].as_str().unwrap().to_owned();
    assert_eq!(sse.next().await.unwrap().0, "tool_call");
    assert_eq!(sse.next().await.unwrap().0, "tool_result");
    // The second model call has written its first word and holds the rest when the client goes.
    assert_eq!(
        sse.next().await.unwrap(),
        ("delta".to_owned(), json!({"text": "fake "}))
    );
    assert_eq!(fake.open_connections(), 1);
    drop(sse);
    app.settled().await;
    fake.until_connections_closed().await;
    assert_eq!(
        fake.open_connections(),
        0,
        "the stalled model call's connection is closed"
    );
    assert_eq!(
        fake.requests().len(),
        2,
        "no model call after the client left"
    );

    let r = app
        .get(&format!("/chat/conversations/{id}"), &alice.access)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let answer = &r.body["messages"][0];
    assert_eq!(answer["role"], "assistant");
    assert_eq!(answer["incomplete"], true);
    assert_eq!(
        answer["content"], "fake ",
        "what the client was sent is what is stored"
    );
    let steps: Vec<&str> = answer["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["tool_call", "tool_result"]);

    assert_eq!(
        credits_after_a_turn(&app, &fake, &alice).await,
        17,
        "both credits of the abandoned turn stay taken"
    );
}

#[tokio::test]
async fn over_a_real_socket_events_arrive_as_written_and_closing_it_stops_the_turn() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let fake = FakeLlm::start().await;
    let app = agent_app(&fake, Store::Sqlite, &[]).await;
    let alice = app.signed_up("alice@example.com").await;
    fake.script([
        tools(&[("list_files", json!({}))]),
        Answer::Stall { after_chunks: 1 },
    ]);
    // Served as bastion-local serves it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let body = json!({"message": "look", "stream": true}).to_string();
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /chat HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        alice.access,
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    // The head and the first step's events come while the second model call is still held.
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("event: delta") {
        let n = socket.read(&mut buf).await.unwrap();
        assert_ne!(n, 0, "the stream ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.starts_with("HTTP/1.1 200 OK\r\n"), "{seen}");
    assert!(
        seen.contains("content-type: text/event-stream\r\n"),
        "{seen}"
    );
    assert!(seen.contains("event: turn\n"), "{seen}");
    assert!(!seen.contains("event: done"), "{seen}");
    drop(socket);
    app.settled().await;
    assert_eq!(
        fake.requests().len(),
        2,
        "no model call after the socket closed"
    );
    server.abort();
}

#[tokio::test]
async fn a_primary_failing_before_any_output_is_answered_by_the_fallback_and_done_says_so() {
    let primary = FakeLlm::start().await;
    let fallback = FakeLlm::start_anthropic().await;
    let fallback_env = [
        ("LLM_FALLBACK_PROVIDER", "anthropic".to_owned()),
        ("LLM_FALLBACK_BASE_URL", fallback.env()[1].1.clone()),
        ("LLM_FALLBACK_MODEL", "fake-large".to_owned()),
        (
            "LLM_FALLBACK_API_KEY",
            bastion_chat::testing::FAKE_KEY.to_owned(),
        ),
    ];
    let extra: Vec<(&str, &str)> = fallback_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = agent_app(&primary, Store::Sqlite, &extra).await;
    let alice = app.signed_up("alice@example.com").await;
    // For each of the turn's two calls the first attempt and both retries fail: an
    // availability failure before any output.
    primary.script(std::iter::repeat_with(|| Answer::Status(503)).take(6));
    fallback.script([
        tools(&[("list_files", json!({}))]),
        reply("listed by the fallback"),
    ]);
    let mut sse = app.stream_chat(&alice, json!({"message": "list"})).await;
    let events = sse.rest().await;
    assert_eq!(
        names(&events),
        ["turn", "tool_call", "tool_result", "delta", "done"],
        "{events:?}"
    );
    let done = &events.last().unwrap().1;
    assert_eq!(done["provider"], "fallback");
    assert_eq!(done["message"]["content"], "listed by the fallback");
    assert_eq!(text_of(&events), "listed by the fallback");
    assert_eq!(primary.requests().len(), 6, "three tries of each call");
    assert_eq!(fallback.requests().len(), 2);
    assert_eq!(fallback.requests()[0]["model"], "fake-large");
    app.settled().await;
}

#[tokio::test]
async fn each_piece_of_text_reaches_the_client_while_the_model_still_holds_the_rest() {
    for wire in [Wire::OpenAi, Wire::Anthropic] {
        let fake = fake(wire).await;
        let app = agent_app(&fake, Store::Sqlite, &[]).await;
        let alice = app.signed_up("alice@example.com").await;
        let gate = fake.gate_chunks();
        let chunks = ["Streams ", "arrive ", "piece by piece."];
        fake.script([Answer::Streamed {
            chunks: chunks.iter().map(|c| (*c).to_owned()).collect(),
            pause: std::time::Duration::ZERO,
        }]);
        let mut sse = app.stream_chat(&alice, json!({"message": "go"})).await;
        assert_eq!(sse.next().await.unwrap().0, "turn");
        for chunk in chunks {
            // The fake writes its next chunk only now: the delta cannot have waited for the end.
            gate.allow_one();
            assert_eq!(
                sse.next().await.unwrap(),
                ("delta".to_owned(), json!({ "text": chunk })),
                "{wire:?}"
            );
        }
        let rest = sse.rest().await;
        assert_eq!(names(&rest), ["done"], "{wire:?}");
        assert_eq!(rest[0].1["message"]["content"], chunks.concat());
        app.settled().await;
    }
}

#[tokio::test]
async fn a_broken_or_stalled_model_stream_ends_the_turn_with_an_error_event_never_a_hang() {
    use bastion_chat::testing::Breakage;

    for wire in [Wire::OpenAi, Wire::Anthropic] {
        let fake = fake(wire).await;
        let app = agent_app(&fake, Store::Sqlite, &[("LLM_STREAM_IDLE_SECS", "1")]).await;
        let alice = app.signed_up("alice@example.com").await;
        for (answer, code) in [
            (Answer::Broken(Breakage::Truncated), "upstream_error"),
            (Answer::Broken(Breakage::BadJson), "upstream_error"),
            (Answer::Stall { after_chunks: 1 }, "upstream_timeout"),
        ] {
            let what = format!("{wire:?} {answer:?}");
            fake.script([answer]);
            let mut sse = app.stream_chat(&alice, json!({"message": "go"})).await;
            let events = sse.rest().await;
            // The first word reached the client before the stream broke; the turn then ends.
            assert_eq!(
                names(&events),
                ["turn", "delta", "error"],
                "{what}: {events:?}"
            );
            assert_eq!(text_of(&events), "fake ", "{what}");
            assert_eq!(events.last().unwrap().1["code"], code, "{what}");
            app.settled().await;
            fake.until_connections_closed().await;
        }
        // Every failed first call gave its credit back: all 20 are left.
        assert_eq!(
            credits_after_a_turn(&app, &fake, &alice).await,
            19,
            "{wire:?}"
        );
    }
}
