//! The agent's tools as a protocol between the chat function, which offers them to the model
//! and asks for runs, and the exec function, which runs them: the names, the strict argument
//! types, the JSON Schemas a model is shown, the result shape, and the internal event chat
//! invokes exec with.
//!
//! Everything a model sends is untrusted: arguments are parsed here, strictly (unknown fields,
//! wrong types and malformed JSON are refused), and a refusal is a [`ToolError`] the loop hands
//! back to the model as a result, never a failure of the turn.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{RequestId, UserId};

/// The top-level key of the event chat invokes exec with. API Gateway's events never carry it
/// at the top level: everything a client sends is inside their strings.
pub const INVOCATION_KEY: &str = "bastion_tool_invocation";
/// The most bytes of argument text a model may send for one call (`write_file`'s 1 MiB
/// content, JSON-escaped, fits).
pub const MAX_ARGUMENT_BYTES: usize = 3 * 1024 * 1024;

/// A tool the agent may offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolName {
    RunCommand,
    ReadFile,
    WriteFile,
    ListFiles,
}

impl ToolName {
    pub const ALL: [ToolName; 4] = [
        ToolName::RunCommand,
        ToolName::ReadFile,
        ToolName::WriteFile,
        ToolName::ListFiles,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ToolName::RunCommand => "run_command",
            ToolName::ReadFile => "read_file",
            ToolName::WriteFile => "write_file",
            ToolName::ListFiles => "list_files",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }

    /// What the model is told the tool does.
    pub fn description(self) -> &'static str {
        match self {
            ToolName::RunCommand => {
                "Run one allowlisted command line in the user's workspace, or a pipeline of up \
                 to 8 of them joined by `|` (no shell: no redirection, `;`, `&&`, globbing or \
                 expansion; quote a literal `|`). The toolset has coreutils, grep, sed, awk, jq, \
                 find, xargs and python3 (-c CODE or a script file) where the deployment allows \
                 them. Returns exit_code, stdout, stderr, whether each was truncated, and each \
                 stage's status."
            }
            ToolName::ReadFile => {
                "Read a file of the user's workspace by its relative path. Returns its content \
                 (UTF-8 text, or base64 with encoding \"base64\")."
            }
            ToolName::WriteFile => {
                "Create or replace a file of the user's workspace (relative path, UTF-8 content, \
                 at most 1 MiB)."
            }
            ToolName::ListFiles => {
                "List the files of the user's workspace, optionally only those whose path \
                 starts with prefix."
            }
        }
    }

    /// The tool's arguments as a JSON Schema: an object, every field typed, nothing else allowed.
    pub fn schema(self) -> Value {
        let (properties, required): (Value, &[&str]) = match self {
            ToolName::RunCommand => (
                json!({"command": {"type": "string", "description": "The command line, e.g. `wc -l notes.txt`."}}),
                &["command"],
            ),
            ToolName::ReadFile => (
                json!({"path": {"type": "string", "description": "A relative path in the workspace."}}),
                &["path"],
            ),
            ToolName::WriteFile => (
                json!({
                    "path": {"type": "string", "description": "A relative path in the workspace."},
                    "content": {"type": "string", "description": "The file's new content."}
                }),
                &["path", "content"],
            ),
            ToolName::ListFiles => (
                json!({"prefix": {"type": "string", "description": "Only paths starting with this."}}),
                &[],
            ),
        };
        json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        })
    }
}

impl std::fmt::Display for ToolName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunCommandArgs {
    pub command: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadFileArgs {
    pub path: String,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteFileArgs {
    pub path: String,
    pub content: String,
}

/// The content is user data: `Debug` shows its size only.
impl std::fmt::Debug for WriteFileArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteFileArgs")
            .field("path", &self.path)
            .field("content_bytes", &self.content.len())
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListFilesArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// One tool call with arguments that passed their schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolCall {
    RunCommand(RunCommandArgs),
    ReadFile(ReadFileArgs),
    WriteFile(WriteFileArgs),
    ListFiles(ListFilesArgs),
}

impl ToolCall {
    pub fn name(&self) -> ToolName {
        match self {
            ToolCall::RunCommand(_) => ToolName::RunCommand,
            ToolCall::ReadFile(_) => ToolName::ReadFile,
            ToolCall::WriteFile(_) => ToolName::WriteFile,
            ToolCall::ListFiles(_) => ToolName::ListFiles,
        }
    }

    /// The call a model asked for: `name` must be a tool, `arguments` a JSON object matching
    /// its schema exactly. Every refusal is a [`ToolError`] meant for the model.
    pub fn parse(name: &str, arguments: &str) -> Result<Self, ToolError> {
        let tool = ToolName::parse(name).ok_or_else(|| {
            ToolError::new(
                "unknown_tool",
                format!("there is no tool named {:?}", cut(name, 64)),
            )
        })?;
        if arguments.len() > MAX_ARGUMENT_BYTES {
            return Err(ToolError::new(
                "invalid_arguments",
                "the arguments are larger than 3 MiB",
            ));
        }
        // An empty argument text is how some models call a tool without parameters.
        let text = if arguments.trim().is_empty() {
            "{}"
        } else {
            arguments
        };
        let value: Value = serde_json::from_str(text).map_err(|e| {
            ToolError::new(
                "invalid_arguments",
                format!(
                    "the arguments are not JSON ({e:?} at column {})",
                    e.column()
                )
                .replace(['\n', '\r'], " "),
            )
        })?;
        Self::from_value(tool, value)
    }

    /// The arguments as the JSON object the schema describes.
    pub fn arguments(&self) -> Value {
        arguments_value(self)
    }

    /// The call from already-decoded arguments (the Anthropic format's `input` object).
    pub fn from_value(tool: ToolName, value: Value) -> Result<Self, ToolError> {
        if !value.is_object() {
            return Err(ToolError::new(
                "invalid_arguments",
                "the arguments must be a JSON object",
            ));
        }
        let invalid = |e: serde_json::Error| {
            // serde's message names the field and may quote the model's own value back to it
            // (the result is cut to the loop's cap like any other).
            ToolError::new("invalid_arguments", format!("{}: {e}", tool.as_str()))
        };
        Ok(match tool {
            ToolName::RunCommand => {
                ToolCall::RunCommand(serde_json::from_value(value).map_err(invalid)?)
            }
            ToolName::ReadFile => {
                ToolCall::ReadFile(serde_json::from_value(value).map_err(invalid)?)
            }
            ToolName::WriteFile => {
                ToolCall::WriteFile(serde_json::from_value(value).map_err(invalid)?)
            }
            ToolName::ListFiles => {
                ToolCall::ListFiles(serde_json::from_value(value).map_err(invalid)?)
            }
        })
    }
}

/// At most `max` characters of `s`, for echoing a model's text back in an error.
fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Why a tool call produced no output: a code a program can branch on and a sentence for the
/// model. Never internals: both travel to the model and into the stored conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolError {
    pub code: String,
    pub message: String,
}

impl ToolError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

/// A tool call's result: `{"ok": true, "output": …}` or `{"ok": false, "error": {code, message}}`.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolOutcome {
    Ok(Value),
    Err(ToolError),
}

impl ToolOutcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, ToolOutcome::Ok(_))
    }

    pub fn to_value(&self) -> Value {
        match self {
            ToolOutcome::Ok(output) => json!({"ok": true, "output": output}),
            ToolOutcome::Err(e) => {
                json!({"ok": false, "error": {"code": e.code, "message": e.message}})
            }
        }
    }

    /// Reads a result back (exec's answer to an invocation); `None` when it is not one.
    pub fn from_value(value: Value) -> Option<Self> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Wire {
            ok: bool,
            #[serde(default)]
            output: Option<Value>,
            #[serde(default)]
            error: Option<ToolError>,
        }
        let wire: Wire = serde_json::from_value(value).ok()?;
        match (wire.ok, wire.output, wire.error) {
            (true, Some(output), None) => Some(ToolOutcome::Ok(output)),
            (false, None, Some(error)) => Some(ToolOutcome::Err(error)),
            _ => None,
        }
    }
}

/// The event the chat function invokes the exec function with: whose workspace (the user of the
/// verified token that started the turn, never anything the model said), the request it serves,
/// and the checked call. Serialised as `{"bastion_tool_invocation": {…}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolInvocation {
    pub user_id: UserId,
    pub request_id: RequestId,
    pub call: ToolCall,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct InvocationWire {
    user_id: String,
    request_id: String,
    tool: ToolName,
    arguments: Value,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    bastion_tool_invocation: InvocationWire,
}

/// Why an event that claims to be an invocation is not a valid one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed tool invocation: {0}")]
pub struct InvocationError(pub String);

impl ToolInvocation {
    pub fn to_json(&self) -> Value {
        json!({
            INVOCATION_KEY: {
                "user_id": self.user_id.as_str(),
                "request_id": self.request_id.as_str(),
                "tool": self.call.name().as_str(),
                "arguments": arguments_value(&self.call),
            }
        })
    }

    /// `None` when `raw` is not shaped as an invocation at all (an API Gateway event, a
    /// stream batch): only a document whose one top-level key is [`INVOCATION_KEY`] is one.
    pub fn decode(raw: &str) -> Option<Result<Self, InvocationError>> {
        #[derive(Deserialize)]
        struct Probe {
            bastion_tool_invocation: Option<serde::de::IgnoredAny>,
        }
        // serde reads a struct from an array too; an invocation is only ever an object.
        if !raw.trim_start().starts_with('{') {
            return None;
        }
        let probe: Probe = serde_json::from_str(raw).ok()?;
        probe.bastion_tool_invocation?;
        Some(Self::decode_strict(raw))
    }

    fn decode_strict(raw: &str) -> Result<Self, InvocationError> {
        // Only serde's class and position: its message can quote a value (a file's content)
        // and this reason is logged.
        let envelope: Envelope = serde_json::from_str(raw).map_err(|e| {
            InvocationError(format!(
                "{:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        let wire = envelope.bastion_tool_invocation;
        Ok(Self {
            user_id: UserId::parse(&wire.user_id)
                .map_err(|_| InvocationError("user_id is not a user id".to_owned()))?,
            request_id: RequestId::parse(&wire.request_id)
                .map_err(|_| InvocationError("request_id is not a request id".to_owned()))?,
            call: ToolCall::from_value(wire.tool, wire.arguments).map_err(|e| {
                InvocationError(format!(
                    "the arguments do not fit {} ({})",
                    wire.tool, e.code
                ))
            })?,
        })
    }
}

fn arguments_value(call: &ToolCall) -> Value {
    let value = match call {
        ToolCall::RunCommand(a) => serde_json::to_value(a),
        ToolCall::ReadFile(a) => serde_json::to_value(a),
        ToolCall::WriteFile(a) => serde_json::to_value(a),
        ToolCall::ListFiles(a) => serde_json::to_value(a),
    };
    value.unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_round_trip_and_unknown_ones_are_refused() {
        for t in ToolName::ALL {
            assert_eq!(ToolName::parse(t.as_str()), Some(t));
        }
        assert_eq!(ToolName::parse("shell"), None);
        assert_eq!(
            ToolCall::parse("shell", "{}").unwrap_err(),
            ToolError::new("unknown_tool", "there is no tool named \"shell\"")
        );
    }

    #[test]
    fn arguments_are_parsed_strictly() {
        assert_eq!(
            ToolCall::parse("read_file", r#"{"path":"a.txt"}"#).unwrap(),
            ToolCall::ReadFile(ReadFileArgs {
                path: "a.txt".to_owned()
            })
        );
        assert_eq!(
            ToolCall::parse("list_files", "").unwrap(),
            ToolCall::ListFiles(ListFilesArgs { prefix: None })
        );
        for (name, bad) in [
            ("read_file", r#"{"path":"a","user_id":"someone-else"}"#),
            ("read_file", r#"{"path":7}"#),
            ("read_file", r#"{}"#),
            ("read_file", r#"["a.txt"]"#),
            ("run_command", r#"{"command": "ls""#),
            ("write_file", r#"{"path":"a"}"#),
        ] {
            let e = ToolCall::parse(name, bad).unwrap_err();
            assert_eq!(e.code, "invalid_arguments", "{bad}: {e:?}");
        }
    }

    #[test]
    fn every_schema_is_a_closed_object() {
        for t in ToolName::ALL {
            let s = t.schema();
            assert_eq!(s["type"], "object");
            assert_eq!(s["additionalProperties"], false);
        }
        assert_eq!(
            ToolName::WriteFile.schema()["required"],
            json!(["path", "content"])
        );
    }

    #[test]
    fn outcomes_have_the_documented_shape_and_read_back() {
        let ok = ToolOutcome::Ok(json!({"files": []}));
        assert_eq!(ok.to_value(), json!({"ok": true, "output": {"files": []}}));
        let err = ToolOutcome::Err(ToolError::new("invalid_path", "no"));
        assert_eq!(
            err.to_value(),
            json!({"ok": false, "error": {"code": "invalid_path", "message": "no"}})
        );
        assert_eq!(ToolOutcome::from_value(ok.to_value()), Some(ok));
        assert_eq!(ToolOutcome::from_value(err.to_value()), Some(err));
        assert_eq!(ToolOutcome::from_value(json!({"ok": true})), None);
        assert_eq!(ToolOutcome::from_value(json!({"statusCode": 200})), None);
    }

    fn invocation() -> ToolInvocation {
        ToolInvocation {
            user_id: UserId::parse("0123456789abcdef0123456789abcdef").unwrap(),
            request_id: RequestId::generate(),
            call: ToolCall::WriteFile(WriteFileArgs {
                path: "notes.txt".to_owned(),
                content: "hello".to_owned(),
            }),
        }
    }

    #[test]
    fn a_refused_invocations_reason_quotes_none_of_its_values() {
        let mut wrong_type = invocation().to_json();
        wrong_type[INVOCATION_KEY]["arguments"]["content"] = json!(["secret diary line"]);
        let mut extra = invocation().to_json();
        extra[INVOCATION_KEY]["secret diary line"] = json!("secret diary line");
        for doc in [wrong_type, extra] {
            let Some(Err(e)) = ToolInvocation::decode(&doc.to_string()) else {
                panic!("{doc} was not refused");
            };
            assert!(!e.to_string().contains("secret"), "{e}");
        }
    }

    #[test]
    fn an_invocation_round_trips_through_its_event() {
        let inv = invocation();
        let raw = inv.to_json().to_string();
        assert_eq!(ToolInvocation::decode(&raw), Some(Ok(inv)));
    }

    #[test]
    fn only_a_document_keyed_by_the_invocation_key_is_an_invocation() {
        for other in [
            r#"{"httpMethod":"POST","path":"/exec/run","body":"{\"bastion_tool_invocation\":{}}"}"#,
            r#"{"Records":[]}"#,
            r#"[1,2]"#,
            r#"[{"user_id":"0123456789abcdef0123456789abcdef"}]"#,
            r#""text""#,
        ] {
            assert_eq!(ToolInvocation::decode(other), None, "{other}");
        }
        let mut with_extra = invocation().to_json();
        with_extra["httpMethod"] = json!("POST");
        assert!(matches!(
            ToolInvocation::decode(&with_extra.to_string()),
            Some(Err(_))
        ));
        let mut inner_extra = invocation().to_json();
        inner_extra[INVOCATION_KEY]["workspace"] = json!("someone-else");
        assert!(matches!(
            ToolInvocation::decode(&inner_extra.to_string()),
            Some(Err(_))
        ));
    }
}
