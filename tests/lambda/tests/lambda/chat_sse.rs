//! A streamed chat turn as deployed: the real chat binary answers `POST /chat` with
//! `"stream": true` as a Lambda streamed response, its tools run in the real exec binary by
//! Lambda Invoke, and the client reads the server-sent events from the Runtime API stand-in as
//! the function writes them: before the turn has ended, tool steps included, and a client that
//! goes away stops the turn, which is stored incomplete while the instance serves on.

use std::collections::VecDeque;
use std::time::Duration;

use bastion_chat::provider::sse::SseDecoder;
use bastion_chat::testing::Answer;
use bastion_lambda_tests::{Deployment, Function, RestEvent, Streamed};
use serde_json::{Value, json};

use crate::signed_up;

/// The longest a test waits for one chunk; a failure, never a pause.
const WAIT: Duration = Duration::from_secs(20);

/// Server-sent events read off a streamed answer as its chunks arrive, through the decoder
/// the provider adapters use.
struct Sse {
    stream: Streamed,
    decoder: SseDecoder,
    pending: VecDeque<(String, Value)>,
    /// Body chunks received so far.
    chunks: usize,
}

impl Sse {
    fn new(stream: Streamed) -> Self {
        Self {
            stream,
            decoder: SseDecoder::new(),
            pending: VecDeque::new(),
            chunks: 0,
        }
    }

    /// The next event (name, data), or `None` at the end of the stream.
    async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            match self.stream.next_chunk_within(WAIT).await {
                Some(Ok(chunk)) => {
                    self.chunks += 1;
                    for e in self.decoder.push(&chunk).unwrap() {
                        let data = serde_json::from_str(&e.data).unwrap();
                        self.pending.push_back((e.event, data));
                    }
                }
                Some(Err(e)) => panic!("the stream broke off: {e:?}"),
                None => {
                    assert!(!self.decoder.is_mid_event(), "a cut event");
                    return None;
                }
            }
        }
    }

    /// Every event to the end of the stream.
    async fn rest(&mut self) -> Vec<(String, Value)> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
        }
        events
    }
}

fn tools(calls: &[(&str, Value)]) -> Answer {
    Answer::Tools {
        text: None,
        calls: calls
            .iter()
            .map(|(name, args)| ((*name).to_owned(), args.to_string()))
            .collect(),
    }
}

fn streamed_turn(access: &str, message: &str) -> RestEvent {
    RestEvent::post_json("/chat", &json!({"message": message, "stream": true})).bearer(access)
}

/// Opens the stream and checks the prelude a streamed turn starts with.
async fn open(chat: &Function, event: &RestEvent) -> Sse {
    let stream = chat.stream(event).await;
    assert_eq!(stream.status, 200, "{stream:?}");
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    assert!(stream.header("x-request-id").is_some(), "{stream:?}");
    assert_eq!(stream.header("cache-control"), Some("no-store"));
    Sse::new(stream)
}

/// The events' names, a run of `delta`s counted as one (the fake streams text word by word).
fn names(events: &[(String, Value)]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for (n, _) in events {
        if !(n == "delta" && names.last() == Some(&"delta")) {
            names.push(n);
        }
    }
    names
}

/// The text of every `delta`, joined.
fn text_of(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter(|(n, _)| n == "delta")
        .map(|(_, d)| d["text"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn an_agent_turn_streams_its_tool_steps_and_text_event_by_event_then_json_still_works() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let agent = d.start_agent().await;
    let (_, access) = signed_up(&auth, "sse@example.com").await;
    d.llm.script([
        tools(&[(
            "write_file",
            json!({"path": "notes.txt", "content": "alpha\nbeta\n"}),
        )]),
        Answer::Reply("notes.txt is written.".to_owned()),
    ]);

    let mut sse = open(&agent.chat, &streamed_turn(&access, "Write notes.txt")).await;
    let events = sse.rest().await;
    assert_eq!(
        names(&events),
        ["turn", "tool_call", "tool_result", "delta", "done"],
        "{events:?}"
    );
    // Each event came in a chunk of its own (or more): written as it happened, not at the end.
    assert!(sse.chunks >= events.len(), "{} chunks", sse.chunks);
    let conversation = events[0].1["conversation_id"].as_str().unwrap().to_owned();
    assert_eq!(events[0].1, json!({"conversation_id": conversation}));
    assert_eq!(
        events[1].1,
        json!({"type": "tool_call", "step": 1, "id": events[1].1["id"], "name": "write_file",
               "arguments": {"path": "notes.txt", "content": "alpha\nbeta\n"}})
    );
    assert_eq!(events[2].1["type"], "tool_result");
    assert_eq!(events[2].1["ok"], true, "{:?}", events[2].1);
    assert_eq!(text_of(&events), "notes.txt is written.");
    let done = &events.last().unwrap().1;
    assert_eq!(done["stop_reason"], "end_turn");
    assert_eq!(done["message"]["content"], "notes.txt is written.");
    assert_eq!(done["provider"], "primary");
    // The tool ran in exec, by Lambda Invoke.
    assert_eq!(agent.lambda.invocations().len(), 1);

    // The same function, the same instance: a buffered turn is JSON, whole.
    d.llm.script([Answer::Reply("buffered".to_owned())]);
    let r = agent
        .chat
        .call(&RestEvent::post_json("/chat", &json!({"message": "again"})).bearer(&access))
        .await;
    assert!(r.streamed);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["message"]["content"], "buffered");

    // Refused before the first byte: the JSON envelope and its status, not a stream.
    let refused = agent.chat.call(&streamed_turn("not-a-token", "hi")).await;
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert_eq!(refused.header("content-type"), Some("application/json"));
    assert_eq!(refused.json()["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn events_reach_the_client_before_the_turn_ends_and_a_client_that_goes_away_stops_it() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    // Keep-alives every second: the function's next write after the client left.
    let chat_env = d.env("chat").set("CHAT_STREAM_KEEPALIVE_SECS", "1");
    let agent = d.start_agent_with(&d.env("exec"), &chat_env).await;
    let (_, access) = signed_up(&auth, "leaver@example.com").await;
    // The second model call writes one word and then holds the rest back for good: the turn
    // cannot end by itself.
    d.llm.script([
        Answer::Tools {
            text: Some("Let me look.".to_owned()),
            calls: vec![("list_files".to_owned(), "{}".to_owned())],
        },
        Answer::Stall { after_chunks: 1 },
        Answer::Reply("never asked for".to_owned()),
    ]);

    let mut sse = open(&agent.chat, &streamed_turn(&access, "Look around")).await;
    let turn = sse.next().await.unwrap();
    assert_eq!(turn.0, "turn");
    let conversation = turn.1["conversation_id"].as_str().unwrap().to_owned();
    let mut said = String::new();
    let mut call = sse.next().await.unwrap();
    while call.0 == "delta" {
        said.push_str(call.1["text"].as_str().unwrap());
        call = sse.next().await.unwrap();
    }
    assert_eq!(said, "Let me look.");
    assert_eq!(
        (call.0.as_str(), &call.1["name"]),
        ("tool_call", &json!("list_files"))
    );
    let result = sse.next().await.unwrap();
    assert_eq!(result.0, "tool_result", "{result:?}");
    assert_eq!(result.1["ok"], true, "{result:?}");
    // All this arrived while the turn is still running, and so does the stalled call's word.
    let word = sse.next().await.unwrap();
    assert_eq!(word, ("delta".to_owned(), json!({"text": "fake "})));
    assert_eq!(d.llm.requests().len(), 2);

    // The client goes away mid-turn.
    drop(sse);

    // The invocation ends with the stream; the turn's task sees its events' channel closed,
    // stops and stores what it had, long before the held answer (polled, a minute at most).
    let path = format!("/chat/conversations/{conversation}");
    let mut shown = None;
    for _ in 0..600 {
        let r = agent
            .chat
            .call(&RestEvent::get(&path).bearer(&access))
            .await;
        if r.status == 200 {
            shown = Some(r.json());
            break;
        }
        assert_eq!(r.status, 404, "{}", r.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shown = shown.expect("the abandoned turn was stored");
    let answer = &shown["messages"][0];
    assert_eq!(answer["role"], "assistant");
    assert_eq!(answer["incomplete"], true, "{answer}");
    assert_eq!(
        answer["content"], "fake ",
        "what the client was sent is stored"
    );
    let steps: Vec<&str> = answer["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["tool_call", "tool_result"]);
    assert_eq!(
        d.llm.requests().len(),
        2,
        "no model call after the client left"
    );
    d.llm.until_connections_closed().await;
    assert_eq!(
        d.llm.open_connections(),
        0,
        "the stalled call's connection is closed"
    );
    assert!(
        agent
            .chat
            .output()
            .contains("streamed chat client went away; the turn stops and is stored incomplete"),
        "{}",
        agent.chat.output()
    );
}

#[tokio::test]
async fn each_delta_reaches_the_client_through_the_stand_in_while_the_model_holds_the_rest() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let agent = d.start_agent().await;
    let (_, access) = signed_up(&auth, "pieces@example.com").await;
    let gate = d.llm.gate_chunks();
    let chunks = ["As ", "deployed, ", "piece by piece."];
    d.llm.script([Answer::Streamed {
        chunks: chunks.iter().map(|c| (*c).to_owned()).collect(),
        pause: Duration::ZERO,
    }]);
    let mut sse = open(&agent.chat, &streamed_turn(&access, "Go")).await;
    assert_eq!(sse.next().await.unwrap().0, "turn");
    for chunk in chunks {
        // The fake writes its next chunk only now, so this delta crossed the function, the
        // Runtime API and the stand-in before the model call (and the turn) could end.
        gate.allow_one();
        assert_eq!(
            sse.next().await.unwrap(),
            ("delta".to_owned(), json!({ "text": chunk }))
        );
    }
    let rest = sse.rest().await;
    assert_eq!(names(&rest), ["done"], "{rest:?}");
    assert_eq!(rest[0].1["message"]["content"], chunks.concat());
}
