//! Unit tests of the Chat Completions mapping: the exact request JSON, and what replies are
//! accepted, bounded or refused.

use bastion_core::tools::ToolName;
use serde_json::json;

use super::*;

fn call(id: &str, name: &str, arguments: &str) -> ModelToolCall {
    ModelToolCall {
        id: id.to_owned(),
        name: name.to_owned(),
        arguments: arguments.to_owned(),
    }
}

fn request(messages: Vec<PromptMessage>, tools: Vec<ToolName>) -> CompletionRequest {
    CompletionRequest {
        model: "gpt-test".to_owned(),
        messages,
        tools,
    }
}

#[test]
fn a_plain_prompt_without_tools_sends_no_tools_field_and_no_max_tokens() {
    let body = wire_request(
        &request(
            vec![PromptMessage::system("be terse"), PromptMessage::user("hi")],
            Vec::new(),
        ),
        None,
    )
    .unwrap();
    assert_eq!(
        body,
        json!({
            "model": "gpt-test",
            "messages": [
                {"role": "system", "content": "be terse"},
                {"role": "user", "content": "hi"},
            ],
            "stream": false,
        })
    );
}

#[test]
fn tools_calls_and_results_map_to_the_chat_completions_shapes() {
    let body = wire_request(
        &request(
            vec![
                PromptMessage::system("sys"),
                PromptMessage::user("count the lines"),
                PromptMessage::assistant(
                    "",
                    vec![
                        call(
                            "call_1",
                            "write_file",
                            r#"{"path":"a.txt","content":"x\n"}"#,
                        ),
                        call("call_2", "run_command", r#"{"command":"wc -l a.txt"}"#),
                    ],
                ),
                PromptMessage::tool_result("call_1", "write_file", r#"{"ok":true}"#.into()),
                PromptMessage::tool_result("call_2", "run_command", r#"{"ok":false}"#.into()),
                PromptMessage::assistant("one line", Vec::new()),
                PromptMessage::user("and now?"),
                PromptMessage::assistant("let me look", vec![call("call_3", "list_files", "")]),
                PromptMessage::tool_result("call_3", "list_files", "{}".into()),
            ],
            vec![ToolName::ReadFile, ToolName::RunCommand],
        ),
        Some(1234),
    )
    .unwrap();
    assert_eq!(
        body,
        json!({
            "model": "gpt-test",
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": "count the lines"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "write_file", "arguments": "{\"path\":\"a.txt\",\"content\":\"x\\n\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "run_command", "arguments": "{\"command\":\"wc -l a.txt\"}"}},
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "{\"ok\":true}"},
                {"role": "tool", "tool_call_id": "call_2", "content": "{\"ok\":false}"},
                {"role": "assistant", "content": "one line"},
                {"role": "user", "content": "and now?"},
                {"role": "assistant", "content": "let me look", "tool_calls": [
                    {"id": "call_3", "type": "function", "function": {"name": "list_files", "arguments": ""}},
                ]},
                {"role": "tool", "tool_call_id": "call_3", "content": "{}"},
            ],
            "stream": false,
            "tools": [
                {"type": "function", "function": {"name": "read_file", "description": ToolName::ReadFile.description(), "parameters": ToolName::ReadFile.schema()}},
                {"type": "function", "function": {"name": "run_command", "description": ToolName::RunCommand.description(), "parameters": ToolName::RunCommand.schema()}},
            ],
            "max_tokens": 1234,
        })
    );
}

#[test]
fn a_history_cut_before_its_first_user_line_is_sent_from_that_line() {
    let body = wire_request(
        &request(
            vec![
                PromptMessage::system("sys"),
                PromptMessage::tool_result("call_0", "read_file", "{}".into()),
                PromptMessage::assistant("old answer", Vec::new()),
                PromptMessage::user("new"),
            ],
            Vec::new(),
        ),
        None,
    )
    .unwrap();
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "new"},
        ])
    );
}

#[test]
fn a_tool_line_that_names_no_call_is_refused_before_sending() {
    let mut orphan = PromptMessage::tool_result("x", "read_file", "{}".into());
    orphan.answers = None;
    let err = wire_request(
        &request(vec![PromptMessage::user("hi"), orphan], Vec::new()),
        None,
    )
    .unwrap_err();
    assert_eq!(err, unanswerable());
}

#[test]
fn replies_without_content_or_calls_are_malformed() {
    for bad in [
        &b"not json"[..],
        br#"{"choices":[]}"#,
        br#"{"choices":[{"message":{"content":null}}]}"#,
        br#"{"choices":[{"message":{"content":"  "}}]}"#,
        br#"{"choices":[{"message":{"content":null,"tool_calls":[]}}]}"#,
        br#"{"error":{"message":"quota"}}"#,
    ] {
        assert!(
            matches!(parse_reply(bad), Err(ProviderError::Malformed(_))),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    let ok = parse_reply(
        br#"{"choices":[{"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":3,"completion_tokens":1}}"#,
    )
    .unwrap();
    assert_eq!(ok.content, "hi");
    assert_eq!(ok.tool_calls, Vec::new());
    assert_eq!(
        ok.usage,
        Usage {
            prompt_tokens: 3,
            completion_tokens: 1
        }
    );
}

#[test]
fn tool_calls_are_read_in_order_with_their_arguments_kept_as_text() {
    let reply = parse_reply(
        br#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[
            {"id":"call_a","type":"function","function":{"name":"read_file","arguments":"{\"path\": \"a.txt\"}"}},
            {"id":"call_b","function":{"name":"nope","arguments":"{not json"}}
        ]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":2}}"#,
    )
    .unwrap();
    assert_eq!(reply.content, "");
    assert_eq!(
        reply.tool_calls,
        vec![
            call("call_a", "read_file", r#"{"path": "a.txt"}"#),
            call("call_b", "nope", "{not json"),
        ]
    );
    assert_eq!(reply.usage.prompt_tokens, 5);
    let with_text = parse_reply(
        br#"{"choices":[{"message":{"content":"checking","tool_calls":[{"id":"c","type":"function","function":{"name":"list_files","arguments":""}}]}}]}"#,
    )
    .unwrap();
    assert_eq!(with_text.content, "checking");
    assert_eq!(with_text.tool_calls.len(), 1);
}

#[test]
fn tool_calls_of_the_wrong_shape_or_beyond_the_bounds_are_malformed_and_never_quoted() {
    let one = |id: &str, kind: &str, name: &str, args: &str| {
        format!(
            r#"{{"id":{},"type":{},"function":{{"name":{},"arguments":{args}}}}}"#,
            json!(id),
            json!(kind),
            json!(name)
        )
    };
    let reply_with = |calls: Vec<String>| {
        format!(
            r#"{{"choices":[{{"message":{{"content":null,"tool_calls":[{}]}}}}]}}"#,
            calls.join(",")
        )
    };
    let secret = "my-secret-diary";
    for bad in [
        format!(r#"{{"choices":[{{"message":{{"content":null,"tool_calls":"{secret}"}}}}]}}"#),
        reply_with(vec![one("c1", "function", secret, r#"{"path":1}"#)]),
        reply_with(vec![one(
            "c1",
            "function",
            "read_file",
            &format!(r#"{{"path":"{secret}"}}"#),
        )]),
        reply_with(vec![one(
            "c1",
            "custom",
            "read_file",
            &json!(secret).to_string(),
        )]),
        reply_with(vec![one(
            &format!("{secret} id"),
            "function",
            "read_file",
            "\"{}\"",
        )]),
        reply_with(vec![one(
            &"i".repeat(257),
            "function",
            "read_file",
            "\"{}\"",
        )]),
        reply_with(vec![one(
            "c1",
            "function",
            &format!("{secret}{}", "n".repeat(60)),
            "\"{}\"",
        )]),
        reply_with(
            (0..65)
                .map(|i| {
                    one(
                        &format!("c{i}"),
                        "function",
                        "read_file",
                        &json!(secret).to_string(),
                    )
                })
                .collect(),
        ),
    ] {
        let err = parse_reply(bad.as_bytes()).unwrap_err();
        assert!(matches!(err, ProviderError::Malformed(_)), "{bad}: {err:?}");
        assert!(!err.to_string().contains("secret"), "{err}");
    }
    let sixty_four = reply_with(
        (0..64)
            .map(|i| one(&format!("c{i}"), "function", "read_file", "\"{}\""))
            .collect(),
    );
    assert_eq!(
        parse_reply(sixty_four.as_bytes()).unwrap().tool_calls.len(),
        64
    );
}

#[test]
fn a_malformed_reply_error_does_not_quote_the_reply() {
    let err = parse_reply(br#"{"choices":"my secret diary"}"#).unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("secret"), "{text}");
    assert_eq!(
        text,
        "provider reply is malformed: not a chat completion (Data error at line 1 column 28)"
    );
}
