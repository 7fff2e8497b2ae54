//! The fake's Messages side: what the real API refuses (`x-api-key`, `anthropic-version`,
//! model, missing `max_tokens`, unknown fields, tool shapes, role order, `tool_use` left
//! without its `tool_result` or a result anywhere but at the start of the next user message),
//! how it answers, and how a test reads a request back.

use std::collections::HashSet;

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::{FAKE_KEY, FAKE_MODELS, Refusal, Reply, object_schema, only_keys, valid_tool_name};

/// The version header the fake requires.
const VERSION: &str = "2023-06-01";
const ORDER: &str = "bad role order";

pub(super) fn check(headers: &HeaderMap, body: &Value) -> Result<(), Refusal> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("x-api-key") != Some(FAKE_KEY) {
        return Err(Refusal::new(StatusCode::UNAUTHORIZED, "bad x-api-key"));
    }
    if header("anthropic-version") != Some(VERSION) {
        return Err(Refusal::bad("bad anthropic-version"));
    }
    let model = body["model"].as_str().unwrap_or("");
    if !FAKE_MODELS.contains(&model) {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            format!("unknown model {model}"),
        ));
    }
    only_keys(
        body,
        &[
            "model",
            "max_tokens",
            "messages",
            "system",
            "tools",
            "tool_choice",
            "stream",
            "temperature",
            "stop_sequences",
            "metadata",
        ],
        "request",
    )?;
    match body.get("max_tokens") {
        None => return Err(Refusal::bad("max_tokens: field required")),
        Some(n) if n.as_u64().is_none_or(|n| n == 0) => {
            return Err(Refusal::bad("max_tokens must be a positive integer"));
        }
        Some(_) => {}
    }
    if body.get("stream").is_some_and(|s| !s.is_boolean()) {
        return Err(Refusal::bad("stream must be a boolean"));
    }
    if let Some(system) = body.get("system")
        && !system.is_string()
    {
        text_blocks(system, "system")?;
    }
    if let Some(tools) = body.get("tools") {
        check_tools(tools)?;
    }
    let defines_tools = body["tools"].as_array().is_some_and(|t| !t.is_empty());
    if let Some(choice) = body.get("tool_choice") {
        check_tool_choice(choice, defines_tools)?;
    }
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    check_messages(&messages)?;
    let tool_blocks = messages
        .iter()
        .flat_map(blocks)
        .any(|b| b["type"] == "tool_use" || b["type"] == "tool_result");
    if tool_blocks && !defines_tools {
        return Err(Refusal::bad(
            "requests which include tool_use or tool_result blocks must define tools",
        ));
    }
    Ok(())
}

/// `{"type": "auto" | "any" | "none"}` or `{"type": "tool", "name"}`, only with tools.
fn check_tool_choice(choice: &Value, defines_tools: bool) -> Result<(), Refusal> {
    only_keys(
        choice,
        &["type", "name", "disable_parallel_tool_use"],
        "tool_choice",
    )?;
    let named = choice["name"].is_string();
    let valid = match choice["type"].as_str() {
        Some("auto" | "any" | "none") => !named,
        Some("tool") => named,
        _ => false,
    };
    if !valid || !defines_tools {
        return Err(Refusal::bad("tool_choice without the right shape or tools"));
    }
    Ok(())
}

fn check_tools(tools: &Value) -> Result<(), Refusal> {
    let shape = |why: &str| Refusal::bad(format!("tools without the right shape: {why}"));
    let list = tools.as_array().ok_or_else(|| shape("not a list"))?;
    let mut names = HashSet::new();
    for tool in list {
        only_keys(
            tool,
            &["name", "description", "input_schema", "cache_control"],
            "tool",
        )?;
        let name = tool["name"].as_str().unwrap_or("");
        if !valid_tool_name(name) || !names.insert(name.to_owned()) {
            return Err(shape("a missing, invalid or repeated name"));
        }
        if tool.get("description").is_some_and(|d| !d.is_string()) {
            return Err(shape("a description that is not a string"));
        }
        if !object_schema(&tool["input_schema"]) {
            return Err(shape("input_schema missing or not an object schema"));
        }
    }
    Ok(())
}

/// User first and last, strict alternation, and every assistant's `tool_use` ids answered by
/// `tool_result` blocks that open the very next user message.
fn check_messages(messages: &[Value]) -> Result<(), Refusal> {
    let mut pending: Vec<String> = Vec::new();
    let mut all_ids: HashSet<String> = HashSet::new();
    for (i, m) in messages.iter().enumerate() {
        only_keys(m, &["role", "content"], "message")?;
        let want = if i % 2 == 0 { "user" } else { "assistant" };
        if m["role"] != want {
            return Err(Refusal::bad(ORDER));
        }
        let blocks = blocks_of(m)?;
        if want == "assistant" {
            pending = assistant_blocks(&blocks)?;
            for id in &pending {
                if !all_ids.insert(id.clone()) {
                    return Err(Refusal::bad(format!("tool_use id {id} used twice")));
                }
            }
        } else {
            user_blocks(&blocks, &pending, &all_ids)?;
            pending.clear();
        }
    }
    if messages.len().is_multiple_of(2) {
        // Empty, or ending with the assistant.
        return Err(Refusal::bad(ORDER));
    }
    Ok(())
}

/// A message's content as blocks: a non-empty string is one text block.
fn blocks_of(m: &Value) -> Result<Vec<Value>, Refusal> {
    match &m["content"] {
        Value::String(s) if !s.is_empty() => Ok(vec![json!({"type": "text", "text": s})]),
        Value::Array(blocks) if !blocks.is_empty() => Ok(blocks.clone()),
        _ => Err(Refusal::bad(
            "content must be a non-empty string or list of blocks",
        )),
    }
}

fn check_text(block: &Value) -> Result<(), Refusal> {
    only_keys(block, &["type", "text", "cache_control"], "text block")?;
    match block["text"].as_str() {
        Some(t) if !t.is_empty() => Ok(()),
        _ => Err(Refusal::bad("text content blocks must be non-empty")),
    }
}

/// The `tool_use` ids of an assistant message of text and `tool_use` blocks.
fn assistant_blocks(blocks: &[Value]) -> Result<Vec<String>, Refusal> {
    let mut ids = Vec::new();
    for block in blocks {
        match block["type"].as_str() {
            Some("text") => check_text(block)?,
            Some("tool_use") => {
                only_keys(block, &["type", "id", "name", "input"], "tool_use block")?;
                let id = block["id"].as_str().unwrap_or("");
                if id.is_empty() || !block["name"].is_string() || !block["input"].is_object() {
                    return Err(Refusal::bad("a tool_use block without the right shape"));
                }
                ids.push(id.to_owned());
            }
            _ => return Err(Refusal::bad("an assistant block of an unknown type")),
        }
    }
    Ok(ids)
}

/// A user message: `tool_result` blocks first, exactly one per id the assistant just used,
/// then text. A result later in the message, for another id, or missing, is refused.
fn user_blocks(
    blocks: &[Value],
    pending: &[String],
    all_ids: &HashSet<String>,
) -> Result<(), Refusal> {
    let mut open: Vec<&String> = pending.iter().collect();
    let mut seen_text = false;
    for block in blocks {
        match block["type"].as_str() {
            Some("text") => {
                check_text(block)?;
                seen_text = true;
            }
            Some("tool_result") => {
                only_keys(
                    block,
                    &["type", "tool_use_id", "content", "is_error"],
                    "tool_result block",
                )?;
                if let Some(content) = block.get("content")
                    && !content.is_string()
                {
                    text_blocks(content, "tool_result content")?;
                }
                if block.get("is_error").is_some_and(|e| !e.is_boolean()) {
                    return Err(Refusal::bad("is_error must be a boolean"));
                }
                let id = block["tool_use_id"].as_str().unwrap_or("");
                if seen_text {
                    return Err(Refusal::bad("tool results spliced into user text"));
                }
                match open.iter().position(|p| *p == id) {
                    Some(at) => {
                        open.remove(at);
                    }
                    None if all_ids.contains(id) => {
                        return Err(Refusal::bad(format!(
                            "tool_result {id} is not right after its tool_use"
                        )));
                    }
                    None => {
                        return Err(Refusal::bad(format!(
                            "tool_result for an unknown tool_use id: {id}"
                        )));
                    }
                }
            }
            _ => return Err(Refusal::bad("a user block of an unknown type")),
        }
    }
    if !open.is_empty() {
        return Err(Refusal::bad(
            "tool_use left without a tool_result before the next user text",
        ));
    }
    Ok(())
}

/// A list of non-empty text blocks (a `system` prompt's or a result's content).
fn text_blocks(value: &Value, what: &str) -> Result<(), Refusal> {
    let list = value
        .as_array()
        .ok_or_else(|| Refusal::bad(format!("{what} must be a string or text blocks")))?;
    for block in list {
        if block["type"] != "text" {
            return Err(Refusal::bad(format!(
                "{what} must be a string or text blocks"
            )));
        }
        check_text(block)?;
    }
    Ok(())
}

/// A string, or the text of a list of text blocks.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

fn messages(body: &Value) -> Vec<Value> {
    body["messages"].as_array().cloned().unwrap_or_default()
}

fn blocks(m: &Value) -> Vec<Value> {
    match &m["content"] {
        Value::String(s) => vec![json!({"type": "text", "text": s})],
        Value::Array(b) => b.clone(),
        _ => Vec::new(),
    }
}

pub(super) fn last_user_text(body: &Value) -> String {
    messages(body)
        .iter()
        .rev()
        .filter(|m| m["role"] == "user")
        .flat_map(|m| blocks(m).into_iter().rev())
        .find(|b| b["type"] == "text")
        .map(|b| text_of(&b["text"]))
        .unwrap_or_default()
}

pub(super) fn render(reply: &Reply) -> Value {
    // The API never answers with an empty text block.
    let mut content: Vec<Value> = reply
        .text
        .iter()
        .filter(|t| !t.is_empty())
        .map(|t| json!({"type": "text", "text": t}))
        .collect();
    for (id, name, arguments) in &reply.calls {
        // A model's input is always a value: text that is not JSON arrives as a string.
        let input = serde_json::from_str::<Value>(arguments)
            .unwrap_or_else(|_| Value::String(arguments.clone()));
        content.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
    }
    let stop = if reply.calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    };
    json!({
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": reply.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": {"input_tokens": 11, "output_tokens": 7}
    })
}

pub(super) fn error_body(status: StatusCode, message: &str) -> Value {
    let kind = match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

pub(super) fn transcript(body: &Value) -> Vec<(String, String)> {
    let mut lines = Vec::new();
    if let Some(system) = body.get("system") {
        lines.push(("system".to_owned(), text_of(system)));
    }
    for m in messages(body) {
        let blocks = blocks(&m);
        if m["role"] == "assistant" {
            let text: Vec<&str> = blocks
                .iter()
                .filter(|b| b["type"] == "text")
                .filter_map(|b| b["text"].as_str())
                .collect();
            lines.push(("assistant".to_owned(), text.join("")));
            continue;
        }
        for b in &blocks {
            match b["type"].as_str() {
                Some("tool_result") => lines.push(("tool".to_owned(), text_of(&b["content"]))),
                _ => lines.push(("user".to_owned(), text_of(&b["text"]))),
            }
        }
    }
    lines
}

pub(super) fn tool_results(body: &Value) -> Vec<(String, String)> {
    messages(body)
        .iter()
        .flat_map(blocks)
        .filter(|b| b["type"] == "tool_result")
        .map(|b| {
            (
                b["tool_use_id"].as_str().unwrap().to_owned(),
                text_of(&b["content"]),
            )
        })
        .collect()
}

pub(super) fn tool_calls(body: &Value) -> Vec<(String, String, String)> {
    messages(body)
        .iter()
        .flat_map(blocks)
        .filter(|b| b["type"] == "tool_use")
        .map(|b| {
            (
                b["id"].as_str().unwrap().to_owned(),
                b["name"].as_str().unwrap().to_owned(),
                b["input"].to_string(),
            )
        })
        .collect()
}
