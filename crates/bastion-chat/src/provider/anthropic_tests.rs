//! Unit tests of the Messages mapping: the exact request JSON (system, blocks, merged roles,
//! tool results), and what replies are accepted, bounded or refused.

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
        model: "claude-test".to_owned(),
        messages,
        tools,
    }
}

#[test]
fn a_plain_prompt_has_a_top_level_system_max_tokens_and_no_tools_field() {
    let body = wire_request(
        &request(
            vec![PromptMessage::system("be terse"), PromptMessage::user("hi")],
            Vec::new(),
        ),
        DEFAULT_MAX_TOKENS,
    )
    .unwrap();
    assert_eq!(
        body,
        json!({
            "model": "claude-test",
            "max_tokens": 4096,
            "system": "be terse",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        })
    );
    let no_system = wire_request(&request(vec![PromptMessage::user("hi")], Vec::new()), 7).unwrap();
    assert_eq!(no_system.get("system"), None);
    assert_eq!(no_system["max_tokens"], 7);
}

#[test]
fn calls_become_tool_use_blocks_and_a_run_of_results_one_user_message() {
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
                PromptMessage::assistant(
                    "let me look",
                    vec![
                        call("call_3", "list_files", ""),
                        call("call_4", "read_file", "{broken"),
                        call("call_5", "read_file", r#"["not","an","object"]"#),
                    ],
                ),
                PromptMessage::tool_result("call_3", "list_files", "{}".into()),
                PromptMessage::tool_result("call_4", "read_file", "e4".into()),
                PromptMessage::tool_result("call_5", "read_file", "e5".into()),
            ],
            vec![ToolName::WriteFile, ToolName::ListFiles],
        ),
        100,
    )
    .unwrap();
    assert_eq!(
        body,
        json!({
            "model": "claude-test",
            "max_tokens": 100,
            "system": "sys",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "count the lines"}]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "call_1", "name": "write_file", "input": {"path": "a.txt", "content": "x\n"}},
                    {"type": "tool_use", "id": "call_2", "name": "run_command", "input": {"command": "wc -l a.txt"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "{\"ok\":true}"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "{\"ok\":false}", "is_error": true},
                ]},
                {"role": "assistant", "content": [{"type": "text", "text": "one line"}]},
                {"role": "user", "content": [{"type": "text", "text": "and now?"}]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "let me look"},
                    {"type": "tool_use", "id": "call_3", "name": "list_files", "input": {}},
                    {"type": "tool_use", "id": "call_4", "name": "read_file", "input": {}},
                    {"type": "tool_use", "id": "call_5", "name": "read_file", "input": {}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_3", "content": "{}"},
                    {"type": "tool_result", "tool_use_id": "call_4", "content": "e4"},
                    {"type": "tool_result", "tool_use_id": "call_5", "content": "e5"},
                ]},
            ],
            "tools": [
                {"name": "write_file", "description": ToolName::WriteFile.description(), "input_schema": ToolName::WriteFile.schema()},
                {"name": "list_files", "description": ToolName::ListFiles.description(), "input_schema": ToolName::ListFiles.schema()},
            ],
        })
    );
}

#[test]
fn adjacent_lines_of_one_role_are_merged_so_roles_alternate() {
    let body = wire_request(
        &request(
            vec![
                PromptMessage::user("first"),
                PromptMessage::user("second"),
                PromptMessage::assistant("a", Vec::new()),
                PromptMessage::assistant("", Vec::new()),
                PromptMessage::assistant("b", vec![call("c1", "list_files", "{}")]),
                PromptMessage::tool_result("c1", "list_files", "r".into()),
                PromptMessage::user("next"),
            ],
            Vec::new(),
        ),
        10,
    )
    .unwrap();
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "a"},
                {"type": "text", "text": "b"},
                {"type": "tool_use", "id": "c1", "name": "list_files", "input": {}},
            ]},
            // Results open the user message; the new text follows them.
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "c1", "content": "r"},
                {"type": "text", "text": "next"},
            ]},
        ])
    );
}

#[test]
fn replayed_steps_on_a_request_offering_no_tools_define_them_but_forbid_their_use() {
    let prompt = vec![
        PromptMessage::user("list"),
        PromptMessage::assistant("", vec![call("c1", "list_files", "{}")]),
        PromptMessage::tool_result("c1", "list_files", "r".into()),
        PromptMessage::assistant("two files", Vec::new()),
        PromptMessage::user("thanks"),
    ];
    let body = wire_request(&request(prompt, Vec::new()), 10).unwrap();
    let names: Vec<&str> = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["run_command", "read_file", "write_file", "list_files"]
    );
    assert_eq!(body["tool_choice"], json!({"type": "none"}));
    let offered = wire_request(
        &request(vec![PromptMessage::user("hi")], vec![ToolName::ReadFile]),
        10,
    )
    .unwrap();
    assert_eq!(offered.get("tool_choice"), None);
    let plain = wire_request(&request(vec![PromptMessage::user("hi")], Vec::new()), 10).unwrap();
    assert_eq!((plain.get("tools"), plain.get("tool_choice")), (None, None));
}

#[test]
fn the_messages_start_at_the_first_user_line() {
    let body = wire_request(
        &request(
            vec![
                PromptMessage::system("sys"),
                PromptMessage::assistant("cut", vec![call("c0", "list_files", "{}")]),
                PromptMessage::tool_result("c0", "list_files", "r".into()),
                PromptMessage::user("new"),
            ],
            Vec::new(),
        ),
        10,
    )
    .unwrap();
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "new"}]}])
    );
    assert_eq!(body["system"], "sys");
}

#[test]
fn text_and_tool_use_blocks_are_read_with_input_as_json_text() {
    let reply = parse_reply(
        br#"{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[
            {"type":"text","text":"Let me "},
            {"type":"thinking","thinking":"hm","signature":"s"},
            {"type":"text","text":"check."},
            {"type":"tool_use","id":"toolu_1","name":"read_file","input":{"path":"a.txt"}},
            {"type":"tool_use","id":"toolu_2","name":"list_files","input":{}}
        ],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":34}}"#,
    )
    .unwrap();
    assert_eq!(reply.content, "Let me check.");
    assert_eq!(
        reply.tool_calls,
        vec![
            call("toolu_1", "read_file", r#"{"path":"a.txt"}"#),
            call("toolu_2", "list_files", "{}"),
        ]
    );
    assert_eq!(
        reply.usage,
        Usage {
            prompt_tokens: 12,
            completion_tokens: 34
        }
    );
    for stop in ["end_turn", "max_tokens", "stop_sequence", "pause_turn"] {
        let text = format!(
            r#"{{"content":[{{"type":"text","text":"done"}}],"stop_reason":"{stop}","usage":{{"input_tokens":1,"output_tokens":2}}}}"#
        );
        let reply = parse_reply(text.as_bytes()).unwrap();
        assert_eq!(
            (reply.content.as_str(), reply.tool_calls.len()),
            ("done", 0),
            "{stop}"
        );
    }
}

#[test]
fn replies_without_text_or_calls_or_of_the_wrong_shape_are_malformed_and_never_quoted() {
    let secret = "my-secret-diary";
    let use_block = |id: &str, name: &str| json!({"type": "tool_use", "id": id, "name": name, "input": {"path": secret}});
    let reply_with = |blocks: Vec<Value>, stop: &str| {
        json!({"content": blocks, "stop_reason": stop, "usage": {"input_tokens": 1, "output_tokens": 1}})
            .to_string()
    };
    for bad in [
        "not json".to_owned(),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": secret}})
            .to_string(),
        json!({"content": secret}).to_string(),
        reply_with(Vec::new(), "end_turn"),
        reply_with(vec![json!({"type": "text", "text": "   "})], "end_turn"),
        reply_with(vec![json!({"type": "text", "text": secret})], "tool_use"),
        reply_with(vec![json!({"type": "text", "text": 7})], "end_turn"),
        reply_with(
            vec![json!({"type": "tool_use", "id": "t", "name": secret})],
            "tool_use",
        ),
        reply_with(
            vec![use_block(&format!("{secret} id"), "read_file")],
            "tool_use",
        ),
        reply_with(vec![use_block("t", &"n".repeat(65))], "tool_use"),
        reply_with(vec![use_block("t", "a"), use_block("t", "b")], "tool_use"),
        reply_with(
            (0..65)
                .map(|i| use_block(&format!("t{i}"), "read_file"))
                .collect(),
            "tool_use",
        ),
    ] {
        let err = parse_reply(bad.as_bytes()).unwrap_err();
        assert!(matches!(err, ProviderError::Malformed(_)), "{bad}: {err:?}");
        assert!(!err.to_string().contains("secret"), "{err}");
    }
    let sixty_four = reply_with(
        (0..64)
            .map(|i| use_block(&format!("t{i}"), "read_file"))
            .collect(),
        "tool_use",
    );
    assert_eq!(
        parse_reply(sixty_four.as_bytes()).unwrap().tool_calls.len(),
        64
    );
}

#[test]
fn a_tool_line_that_names_no_call_is_refused_before_sending() {
    let mut orphan = PromptMessage::tool_result("x", "read_file", "{}".into());
    orphan.answers = None;
    let err = wire_request(
        &request(vec![PromptMessage::user("hi"), orphan], Vec::new()),
        1,
    )
    .unwrap_err();
    assert_eq!(err, unanswerable());
}
