//! The Messages stream assembly, event by event, without a server.

use super::*;

fn feed(events: &[&str]) -> (Vec<Step>, Assembly) {
    let mut assembly = Assembly::default();
    let steps = events.iter().map(|e| assembly.data(e).unwrap()).collect();
    (steps, assembly)
}

const START: &str = r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"m","stop_reason":null,"usage":{"input_tokens":25,"output_tokens":1}}}"#;

#[test]
fn text_deltas_are_handed_on_as_they_come_and_usage_is_read_from_start_and_delta() {
    let (steps, assembly) = feed(&[
        START,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"ping"}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#,
        r#"{"type":"message_stop"}"#,
    ]);
    assert_eq!(
        steps,
        vec![
            Step::Nothing,
            Step::Nothing,
            Step::Nothing,
            Step::Text("Hel".into()),
            Step::Text("lo".into()),
            Step::Nothing,
            Step::Nothing,
            Step::Done
        ]
    );
    let done = assembly.finish().unwrap();
    assert_eq!(done.content, "Hello");
    assert_eq!(
        done.usage,
        Usage {
            prompt_tokens: 25,
            completion_tokens: 15
        }
    );
}

#[test]
fn tool_use_input_is_assembled_from_json_fragments_and_empty_input_means_an_empty_object() {
    let (_, assembly) = feed(&[
        START,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Reading."}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"read_file","input":{}}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"path\": \"a"}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":".txt\"}"}}"#,
        r#"{"type":"content_block_stop","index":1}"#,
        r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_2","name":"list_dir","input":{}}}"#,
        r#"{"type":"content_block_stop","index":2}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":40}}"#,
        r#"{"type":"message_stop"}"#,
    ]);
    let done = assembly.finish().unwrap();
    assert_eq!(done.content, "Reading.");
    assert_eq!(
        done.tool_calls,
        vec![
            ModelToolCall {
                id: "toolu_1".into(),
                name: "read_file".into(),
                arguments: r#"{"path": "a.txt"}"#.into()
            },
            ModelToolCall {
                id: "toolu_2".into(),
                name: "list_dir".into(),
                arguments: "{}".into()
            },
        ]
    );
}

#[test]
fn error_events_become_the_status_they_stand_for_and_others_are_malformed() {
    for (kind, want) in [
        ("overloaded_error", ProviderError::Status(529)),
        ("rate_limit_error", ProviderError::Status(429)),
        ("api_error", ProviderError::Status(500)),
        (
            "invalid_request_error",
            ProviderError::Malformed("the stream reported an error".into()),
        ),
    ] {
        let mut a = Assembly::default();
        a.data(START).unwrap();
        let event = format!(
            r#"{{"type":"error","error":{{"type":"{kind}","message":"secret prompt text"}}}}"#
        );
        let err = a.data(&event).unwrap_err();
        assert_eq!(err, want, "{kind}");
        assert!(!err.to_string().contains("secret"));
    }
}

#[test]
fn deltas_for_blocks_never_started_or_of_the_wrong_kind_are_malformed() {
    let mut a = Assembly::default();
    let err = a
        .data(
            r#"{"type":"content_block_delta","index":3,"delta":{"type":"text_delta","text":"x"}}"#,
        )
        .unwrap_err();
    assert_eq!(
        err,
        ProviderError::Malformed("content block 3 was never started".into())
    );
    a.data(r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#)
        .unwrap();
    let err = a
        .data(r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{"}}"#)
        .unwrap_err();
    assert_eq!(
        err,
        ProviderError::Malformed("content block 0 got a delta of another block's kind".into())
    );
    let err = a
        .data(
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        )
        .unwrap_err();
    assert_eq!(
        err,
        ProviderError::Malformed("content block 0 started twice".into())
    );
}

#[test]
fn text_carried_by_a_block_start_is_part_of_the_answer_and_reaches_the_sink() {
    let (steps, a) = feed(&[
        START,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":"Hi"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" there"}}"#,
    ]);
    assert_eq!(steps[1], Step::Text("Hi".into()));
    assert_eq!(steps[2], Step::Text(" there".into()));
    assert_eq!(a.finish().unwrap().content, "Hi there");
}

#[test]
fn unknown_events_and_deltas_are_skipped() {
    let (steps, a) = feed(&[
        START,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hm"}}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"citations_delta","citation":{}}}"#,
        r#"{"type":"brand_new_event","x":1}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"ok"}}"#,
    ]);
    assert_eq!(steps[6], Step::Text("ok".into()));
    assert_eq!(a.finish().unwrap().content, "ok");
}

#[test]
fn a_tool_use_stop_without_a_call_and_an_empty_answer_are_malformed() {
    let (_, a) = feed(&[
        START,
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"}}"#,
    ]);
    assert_eq!(
        a.finish().unwrap_err(),
        ProviderError::Malformed("stopped for tool use without a tool_use block".into())
    );
    let (_, a) = feed(&[START]);
    assert_eq!(
        a.finish().unwrap_err(),
        ProviderError::Malformed("no assistant content".into())
    );
}

#[test]
fn an_event_that_is_not_json_is_malformed_without_quoting_it() {
    let err = Assembly::default()
        .data(r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"secret"#)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("provider reply is malformed: not a stream event"),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");
}
