//! A turn's steps: the tool calls a model made and their results, as the API returns them, as
//! they are stored (sealed, beside the answer) and as they are replayed to the model.
//!
//! Sizes are bounded twice: each result reaches the model cut to [`RESULT_CAP_BYTES`] (marked
//! `"cut": true`, and the cut text ends with a marker), and a turn's stored steps fit
//! [`STORED_STEPS_BYTES`], the earliest results' contents giving way first (`"omitted": true`),
//! so the stored answer always fits one DynamoDB item.

use serde_json::{Map, Value, json};

use crate::message::truncate_at_char;

/// The most of one tool result, as JSON text, that reaches the model.
pub const RESULT_CAP_BYTES: usize = 16 * 1024;
/// The most of one call's arguments, as JSON text, that is stored and replayed.
pub const ARGUMENTS_CAP_BYTES: usize = 16 * 1024;
/// The most a turn's steps take in the store, as JSON text (the answer's 96 KiB beside it).
pub const STORED_STEPS_BYTES: usize = 160 * 1024;
/// Attempts at shortening the longest string before the fallback preview.
const CUT_ROUNDS: usize = 12;

/// One step of a turn. `step` is the model call (1-based) that asked for the tool.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    ToolCall {
        step: u32,
        id: String,
        name: String,
        /// The arguments object when the model sent JSON, else the text it sent.
        arguments: Value,
        cut: bool,
        omitted: bool,
    },
    ToolResult {
        step: u32,
        id: String,
        name: String,
        /// `{"ok": true, "output": …}` or `{"ok": false, "error": {…}}` as the model saw it.
        result: Value,
        cut: bool,
        omitted: bool,
    },
}

impl Step {
    /// The call as stored: the arguments text parsed when it is JSON, cut to the cap.
    pub fn call(step: u32, id: &str, name: &str, arguments_text: &str) -> Self {
        let arguments = serde_json::from_str::<Value>(arguments_text)
            .unwrap_or_else(|_| Value::String(arguments_text.to_owned()));
        let (arguments, cut) = cap_value(arguments, ARGUMENTS_CAP_BYTES);
        Step::ToolCall {
            step,
            id: id.to_owned(),
            name: name.to_owned(),
            arguments,
            cut,
            omitted: false,
        }
    }

    /// The result as the model sees it: `result` cut to [`RESULT_CAP_BYTES`].
    pub fn result(step: u32, id: &str, name: &str, result: Value) -> Self {
        let ok = result["ok"].as_bool().unwrap_or(false);
        // Room for the `"cut":true` the cut result gains.
        let (mut result, cut) = cap_value(result, RESULT_CAP_BYTES - 16);
        if result.get("ok").is_none() {
            // The fallback preview: still a result, its output the preview.
            result = json!({"ok": ok, "output": result});
        }
        if cut && let Value::Object(map) = &mut result {
            map.insert("cut".to_owned(), Value::Bool(true));
        }
        Step::ToolResult {
            step,
            id: id.to_owned(),
            name: name.to_owned(),
            result,
            cut,
            omitted: false,
        }
    }

    pub fn step(&self) -> u32 {
        match self {
            Step::ToolCall { step, .. } | Step::ToolResult { step, .. } => *step,
        }
    }

    /// The result's text as the model is sent it.
    pub fn model_text(&self) -> String {
        match self {
            Step::ToolCall { arguments, .. } => match arguments {
                Value::String(raw) => raw.clone(),
                other => other.to_string(),
            },
            Step::ToolResult { result, .. } => result.to_string(),
        }
    }

    /// The step as `POST /chat` and `GET /chat/conversations/{id}` return it.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        let (kind, step, id, name, cut, omitted) = match self {
            Step::ToolCall {
                step,
                id,
                name,
                cut,
                omitted,
                ..
            } => ("tool_call", step, id, name, cut, omitted),
            Step::ToolResult {
                step,
                id,
                name,
                cut,
                omitted,
                ..
            } => ("tool_result", step, id, name, cut, omitted),
        };
        map.insert("type".into(), json!(kind));
        map.insert("step".into(), json!(step));
        map.insert("id".into(), json!(id));
        map.insert("name".into(), json!(name));
        match self {
            Step::ToolCall { arguments, .. } => {
                map.insert("arguments".into(), arguments.clone());
            }
            Step::ToolResult { result, .. } => {
                map.insert("ok".into(), result["ok"].clone());
                for field in ["output", "error"] {
                    if let Some(v) = result.get(field) {
                        map.insert(field.into(), v.clone());
                    }
                }
            }
        }
        if *cut {
            map.insert("cut".into(), json!(true));
        }
        if *omitted {
            map.insert("omitted".into(), json!(true));
        }
        Value::Object(map)
    }

    /// Reads a stored step back; `None` when it is not one.
    pub fn from_json(v: &Value) -> Option<Self> {
        let step = u32::try_from(v.get("step")?.as_u64()?).ok()?;
        let id = v.get("id")?.as_str()?.to_owned();
        let name = v.get("name")?.as_str()?.to_owned();
        let flag = |f: &str| v.get(f).and_then(Value::as_bool).unwrap_or(false);
        let (cut, omitted) = (flag("cut"), flag("omitted"));
        match v.get("type")?.as_str()? {
            "tool_call" => Some(Step::ToolCall {
                step,
                id,
                name,
                arguments: v.get("arguments").cloned().unwrap_or(Value::Null),
                cut,
                omitted,
            }),
            "tool_result" => {
                let mut result = Map::new();
                result.insert("ok".into(), Value::Bool(v.get("ok")?.as_bool()?));
                for field in ["output", "error"] {
                    if let Some(x) = v.get(field) {
                        result.insert(field.into(), x.clone());
                    }
                }
                if cut {
                    result.insert("cut".into(), Value::Bool(true));
                }
                if omitted {
                    result.insert("omitted".into(), Value::Bool(true));
                }
                Some(Step::ToolResult {
                    step,
                    id,
                    name,
                    result: Value::Object(result),
                    cut,
                    omitted,
                })
            }
            _ => None,
        }
    }

    /// Drops the bulky half (arguments or output), keeping what happened.
    fn omit(&mut self) {
        match self {
            Step::ToolCall {
                arguments, omitted, ..
            } => {
                *arguments = Value::Null;
                *omitted = true;
            }
            Step::ToolResult {
                result, omitted, ..
            } => {
                let ok = result["ok"].as_bool().unwrap_or(false);
                *result = json!({"ok": ok, "omitted": true});
                *omitted = true;
            }
        }
    }

    fn is_omitted(&self) -> bool {
        match self {
            Step::ToolCall { omitted, .. } | Step::ToolResult { omitted, .. } => *omitted,
        }
    }
}

/// The stored text of a turn's steps (empty for none), within [`STORED_STEPS_BYTES`]: results
/// give way first, earliest first, then arguments.
pub fn encode(steps: &[Step]) -> String {
    if steps.is_empty() {
        return String::new();
    }
    // Each step is serialised once, and again only when it gives way: the array is the
    // brackets, the commas and the steps.
    let mut steps = steps.to_vec();
    let mut texts: Vec<String> = steps.iter().map(|s| s.to_json().to_string()).collect();
    let mut total = texts.iter().map(String::len).sum::<usize>() + texts.len() + 1;
    let order: Vec<usize> = (0..steps.len())
        .filter(|&i| matches!(steps[i], Step::ToolResult { .. }))
        .chain((0..steps.len()).filter(|&i| matches!(steps[i], Step::ToolCall { .. })))
        .collect();
    for i in order {
        if total <= STORED_STEPS_BYTES {
            break;
        }
        if !steps[i].is_omitted() {
            steps[i].omit();
            let text = steps[i].to_json().to_string();
            total = total - texts[i].len() + text.len();
            texts[i] = text;
        }
    }
    format!("[{}]", texts.join(","))
}

/// The steps of a stored answer; text that is not a list of steps reads as none, logged by the
/// caller (it was sealed by us, so it only happens to a corrupted item).
pub fn decode(stored: &str) -> Option<Vec<Step>> {
    if stored.is_empty() {
        return Some(Vec::new());
    }
    let value: Value = serde_json::from_str(stored).ok()?;
    value.as_array()?.iter().map(Step::from_json).collect()
}

/// `value` as JSON text of at most `limit` bytes: the longest strings are cut (ending with a
/// marker) until it fits; a value that still does not fit becomes a preview of its text.
/// Returns whether anything was cut.
pub fn cap_value(value: Value, limit: usize) -> (Value, bool) {
    let size = |v: &Value| v.to_string().len();
    let mut total = size(&value);
    if total <= limit {
        return (value, false);
    }
    let mut value = value;
    for _ in 0..CUT_ROUNDS {
        let excess = total.saturating_sub(limit);
        if excess == 0 {
            return (value, true);
        }
        let Some(longest) = longest_string(&mut value) else {
            break;
        };
        let marker = format!("…[cut: {} bytes in all]", longest.len());
        let escaped: usize = longest.chars().map(escaped_len).sum();
        let keep = prefix_within(longest, escaped.saturating_sub(excess + marker.len()));
        longest.truncate(keep);
        longest.push_str(&marker);
        total = size(&value);
    }
    if total <= limit {
        return (value, true);
    }
    let mut preview = value.to_string();
    truncate_at_char(&mut preview, limit.saturating_sub(64) / 2);
    (json!({ "preview": preview }), true)
}

/// The bytes `c` takes inside a JSON string as serde_json writes it.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// The longest prefix of `s` (a byte index at a character boundary) whose JSON-escaped form
/// takes at most `budget` bytes.
fn prefix_within(s: &str, budget: usize) -> usize {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        used += escaped_len(c);
        if used > budget {
            return i;
        }
    }
    s.len()
}

/// The longest string anywhere in `value` (object values and array items, at any depth).
fn longest_string(value: &mut Value) -> Option<&mut String> {
    match value {
        Value::String(s) => Some(s),
        Value::Array(items) => items
            .iter_mut()
            .filter_map(longest_string)
            .max_by_key(|s| s.len()),
        Value::Object(map) => map
            .values_mut()
            .filter_map(longest_string)
            .max_by_key(|s| s.len()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_result_reaches_the_model_whole() {
        let s = Step::result(
            1,
            "c1",
            "read_file",
            json!({"ok": true, "output": {"content": "hi"}}),
        );
        assert_eq!(s.model_text(), r#"{"ok":true,"output":{"content":"hi"}}"#);
        assert_eq!(
            s.to_json(),
            json!({"type": "tool_result", "step": 1, "id": "c1", "name": "read_file", "ok": true, "output": {"content": "hi"}})
        );
    }

    #[test]
    fn a_megabyte_of_output_is_cut_to_sixteen_kib_and_marked() {
        let stdout = "x".repeat(1024 * 1024);
        let s = Step::result(
            2,
            "c9",
            "run_command",
            json!({"ok": true, "output": {"exit_code": 0, "stdout": stdout, "stderr": "", "stdout_truncated": false}}),
        );
        let text = s.model_text();
        assert!(text.len() <= RESULT_CAP_BYTES, "{}", text.len());
        assert!(text.len() > RESULT_CAP_BYTES - 200, "{}", text.len());
        let seen: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(seen["cut"], json!(true));
        assert_eq!(seen["output"]["exit_code"], json!(0));
        assert!(
            seen["output"]["stdout"]
                .as_str()
                .unwrap()
                .ends_with("…[cut: 1048576 bytes in all]")
        );
        assert_eq!(s.to_json()["cut"], json!(true));
    }

    #[test]
    fn escaped_text_is_cut_by_its_escaped_size_keeping_as_much_as_fits() {
        let lines: String = (1..200_000).map(|i| format!("{i}\n")).collect();
        let (v, cut) = cap_value(json!({"stdout": lines}), RESULT_CAP_BYTES);
        assert!(cut);
        let text = v.to_string();
        assert!(text.len() <= RESULT_CAP_BYTES, "{}", text.len());
        assert!(text.len() > RESULT_CAP_BYTES - 64, "{}", text.len());
        assert!(v["stdout"].as_str().unwrap().starts_with("1\n2\n3\n"));
    }

    #[test]
    fn text_that_escapes_large_is_still_capped() {
        let control = "\u{1}".repeat(200_000);
        let (v, cut) = cap_value(json!({"a": control, "b": "\u{2}".repeat(90_000)}), 4096);
        assert!(cut);
        assert!(v.to_string().len() <= 4096, "{}", v.to_string().len());
    }

    #[test]
    fn many_small_strings_fall_back_to_a_bounded_preview() {
        let files: Vec<Value> = (0..5_000)
            .map(|i| json!({"path": format!("f{i}"), "size": i}))
            .collect();
        let (v, cut) = cap_value(
            json!({"ok": true, "output": {"files": files}}),
            RESULT_CAP_BYTES,
        );
        assert!(cut);
        assert!(v.to_string().len() <= RESULT_CAP_BYTES);
        assert!(v["preview"].as_str().unwrap().starts_with(r#"{"ok":true"#));
        let s = Step::result(
            1,
            "c1",
            "list_files",
            json!({"ok": true, "output": {"files": (0..5_000).map(|i| json!({"path": format!("f{i}")})).collect::<Vec<_>>()}}),
        );
        let seen: Value = serde_json::from_str(&s.model_text()).unwrap();
        assert_eq!(seen["ok"], json!(true));
        assert_eq!(seen["cut"], json!(true));
        assert!(seen["output"]["preview"].is_string());
        assert!(s.model_text().len() <= RESULT_CAP_BYTES);
    }

    #[test]
    fn arguments_that_are_not_json_are_kept_as_the_text_sent() {
        let s = Step::call(1, "c1", "read_file", "{\"path\": ");
        assert_eq!(
            s.to_json(),
            json!({"type": "tool_call", "step": 1, "id": "c1", "name": "read_file", "arguments": "{\"path\": "})
        );
        assert_eq!(s.model_text(), "{\"path\": ");
    }

    #[test]
    fn stored_steps_read_back_as_they_were() {
        let steps = vec![
            Step::call(1, "c1", "write_file", r#"{"path":"a.txt","content":"hi"}"#),
            Step::result(
                1,
                "c1",
                "write_file",
                json!({"ok": true, "output": {"path": "a.txt"}}),
            ),
            Step::result(
                1,
                "c2",
                "shell",
                json!({"ok": false, "error": {"code": "unknown_tool", "message": "no"}}),
            ),
        ];
        assert_eq!(decode(&encode(&steps)).unwrap(), steps);
        assert_eq!(decode("").unwrap(), Vec::new());
        assert_eq!(encode(&[]), "");
        assert_eq!(decode("{\"not\": \"steps\"}"), None);
    }

    #[test]
    fn stored_steps_fit_their_cap_with_the_earliest_results_omitted_first() {
        let big = |i: u32| {
            Step::result(
                i,
                &format!("c{i}"),
                "read_file",
                json!({"ok": true, "output": {"content": "y".repeat(15_000)}}),
            )
        };
        let steps: Vec<Step> = (1..=16).map(big).collect();
        let stored = encode(&steps);
        assert!(stored.len() <= STORED_STEPS_BYTES, "{}", stored.len());
        let back = decode(&stored).unwrap();
        assert!(back[0].is_omitted());
        assert!(!back[15].is_omitted());
        assert_eq!(
            back[0].to_json(),
            json!({"type": "tool_result", "step": 1, "id": "c1", "name": "read_file", "ok": true, "omitted": true})
        );
    }
}
