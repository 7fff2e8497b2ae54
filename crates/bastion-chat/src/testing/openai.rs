//! The fake's Chat Completions side: what the real API refuses (key, model, unknown fields,
//! tool shapes, role order, calls left unanswered or results without a call), how it answers,
//! and how a test reads a request back.

use std::collections::HashSet;

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::{FAKE_KEY, FAKE_MODELS, Refusal, Reply, object_schema, only_keys, valid_tool_name};

const ORDER: &str = "bad message order";
const UNANSWERED: &str = "tool calls without results before the next message";

pub(super) fn check(headers: &HeaderMap, body: &Value) -> Result<(), Refusal> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("Bearer {FAKE_KEY}") {
        return Err(Refusal::new(StatusCode::UNAUTHORIZED, "bad authorization"));
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
            "messages",
            "stream",
            "stream_options",
            "tools",
            "tool_choice",
            "max_tokens",
            "temperature",
        ],
        "request",
    )?;
    if body.get("stream").is_some_and(|s| !s.is_boolean()) {
        return Err(Refusal::bad("stream must be a boolean"));
    }
    if let Some(options) = body.get("stream_options") {
        if body["stream"] != true {
            return Err(Refusal::bad("stream_options is only allowed with stream"));
        }
        only_keys(options, &["include_usage"], "stream_options")?;
        if options
            .get("include_usage")
            .is_some_and(|u| !u.is_boolean())
        {
            return Err(Refusal::bad("include_usage must be a boolean"));
        }
    }
    if let Some(n) = body.get("max_tokens")
        && n.as_u64().is_none_or(|n| n == 0)
    {
        return Err(Refusal::bad("max_tokens must be a positive integer"));
    }
    if let Some(tools) = body.get("tools") {
        check_tools(tools)?;
    }
    if let Some(choice) = body.get("tool_choice") {
        check_tool_choice(choice, body.get("tools").is_some())?;
    }
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    check_messages(&messages)
}

fn check_tools(tools: &Value) -> Result<(), Refusal> {
    let shape = |why: &str| Refusal::bad(format!("tools without the right shape: {why}"));
    let list = tools.as_array().ok_or_else(|| shape("not a list"))?;
    if list.is_empty() {
        return Err(shape("an empty list"));
    }
    let mut names = HashSet::new();
    for tool in list {
        only_keys(tool, &["type", "function"], "tool")?;
        if tool["type"] != "function" {
            return Err(shape("type is not function"));
        }
        let function = &tool["function"];
        only_keys(
            function,
            &["name", "description", "parameters", "strict"],
            "tool function",
        )?;
        let name = function["name"].as_str().unwrap_or("");
        if !valid_tool_name(name) || !names.insert(name.to_owned()) {
            return Err(shape("a missing, invalid or repeated name"));
        }
        if function.get("description").is_some_and(|d| !d.is_string()) {
            return Err(shape("a description that is not a string"));
        }
        if function
            .get("parameters")
            .is_some_and(|p| !object_schema(p))
        {
            return Err(shape("parameters that are not an object schema"));
        }
    }
    Ok(())
}

/// `"none" | "auto" | "required"` or `{"type": "function", "function": {"name"}}`, only with
/// tools.
fn check_tool_choice(choice: &Value, with_tools: bool) -> Result<(), Refusal> {
    let valid = match choice {
        Value::String(mode) => ["none", "auto", "required"].contains(&mode.as_str()),
        Value::Object(_) => {
            only_keys(choice, &["type", "function"], "tool_choice")?;
            only_keys(&choice["function"], &["name"], "tool_choice function")?;
            choice["type"] == "function" && choice["function"]["name"].is_string()
        }
        _ => false,
    };
    if !valid || !with_tools {
        return Err(Refusal::bad("tool_choice without the right shape or tools"));
    }
    Ok(())
}

/// An optional system line, then user first; user and assistant alternate, an assistant's
/// tool calls are answered by `tool` messages right after it, one per id, after which the
/// assistant or new user text may follow, and the prompt ends with a user message or the last
/// result.
fn check_messages(messages: &[Value]) -> Result<(), Refusal> {
    let body = match messages.first() {
        Some(m) if m["role"] == "system" => {
            only_keys(m, &["role", "content", "name"], "system message")?;
            text_content(m)?;
            &messages[1..]
        }
        _ => messages,
    };
    let mut pending: Vec<String> = Vec::new();
    let mut all_ids: HashSet<String> = HashSet::new();
    let mut prev: Option<&str> = None;
    for m in body {
        let role = m["role"].as_str().unwrap_or("");
        match role {
            "user" => {
                only_keys(m, &["role", "content", "name"], "user message")?;
                text_content(m)?;
                if !pending.is_empty() {
                    return Err(Refusal::bad(UNANSWERED));
                }
                // After results the API takes new user text (a turn that stopped at its cap).
                if !matches!(prev, None | Some("assistant" | "tool")) {
                    return Err(Refusal::bad(ORDER));
                }
            }
            "assistant" => {
                if !pending.is_empty() {
                    return Err(Refusal::bad(UNANSWERED));
                }
                if !matches!(prev, Some("user" | "tool")) {
                    return Err(Refusal::bad(ORDER));
                }
                pending = assistant_calls(m)?;
                for id in &pending {
                    if !all_ids.insert(id.clone()) {
                        return Err(Refusal::bad(format!("tool call id {id} used twice")));
                    }
                }
            }
            "tool" => {
                only_keys(m, &["role", "tool_call_id", "content"], "tool message")?;
                text_content(m)?;
                let id = m["tool_call_id"].as_str().unwrap_or("");
                let Some(at) = pending.iter().position(|p| p == id) else {
                    return Err(Refusal::bad(format!(
                        "tool result for a call the assistant did not just make: {id}"
                    )));
                };
                pending.remove(at);
            }
            _ => return Err(Refusal::bad(ORDER)),
        }
        prev = Some(role);
    }
    if !pending.is_empty() {
        return Err(Refusal::bad(UNANSWERED));
    }
    match prev {
        Some("user" | "tool") => Ok(()),
        _ => Err(Refusal::bad(ORDER)),
    }
}

fn text_content(m: &Value) -> Result<(), Refusal> {
    if m["content"].is_string() {
        Ok(())
    } else {
        Err(Refusal::bad("content must be a string"))
    }
}

/// An assistant line's call ids; its content is text, or null when it calls tools.
fn assistant_calls(m: &Value) -> Result<Vec<String>, Refusal> {
    only_keys(
        m,
        &["role", "content", "tool_calls", "name"],
        "assistant message",
    )?;
    let Some(calls) = m.get("tool_calls") else {
        return text_content(m).map(|()| Vec::new());
    };
    if !(m["content"].is_string() || m["content"].is_null()) {
        return Err(Refusal::bad("content must be a string or null"));
    }
    let list = calls
        .as_array()
        .filter(|l| !l.is_empty())
        .ok_or_else(|| Refusal::bad("tool_calls must be a non-empty list"))?;
    let mut ids = Vec::new();
    for call in list {
        only_keys(call, &["id", "type", "function"], "tool call")?;
        only_keys(
            &call["function"],
            &["name", "arguments"],
            "tool call function",
        )?;
        let id = call["id"].as_str().unwrap_or("");
        if id.is_empty()
            || call["type"] != "function"
            || !call["function"]["name"].is_string()
            || !call["function"]["arguments"].is_string()
        {
            return Err(Refusal::bad("a tool call without the right shape"));
        }
        ids.push(id.to_owned());
    }
    Ok(ids)
}

pub(super) fn last_user_text(body: &Value) -> String {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_owned()
}

pub(super) fn render(reply: &Reply) -> Value {
    let mut message = json!({"role": "assistant", "content": reply.text});
    if !reply.calls.is_empty() {
        let calls: Vec<Value> = reply
            .calls
            .iter()
            .map(|(id, name, arguments)| {
                json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
            })
            .collect();
        message["tool_calls"] = Value::Array(calls);
    }
    let finish = if reply.calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": reply.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    })
}

pub(super) fn error_body(_status: StatusCode, message: &str) -> Value {
    json!({"error": {"message": message, "type": "invalid_request_error"}})
}

fn messages(body: &Value) -> Vec<Value> {
    body["messages"].as_array().cloned().unwrap_or_default()
}

pub(super) fn transcript(body: &Value) -> Vec<(String, String)> {
    messages(body)
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

pub(super) fn tool_results(body: &Value) -> Vec<(String, String)> {
    messages(body)
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            (
                m["tool_call_id"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

pub(super) fn tool_calls(body: &Value) -> Vec<(String, String, String)> {
    messages(body)
        .iter()
        .filter_map(|m| m["tool_calls"].as_array().cloned())
        .flatten()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["function"]["name"].as_str().unwrap().to_owned(),
                c["function"]["arguments"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}
