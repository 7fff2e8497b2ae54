//! Request and response bodies of the chat routes.

use bastion_chat::agent::steps;
use bastion_chat::{Step, StopReason, Usage};
use bastion_store::{ConversationRecord, MessageRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// Continue this conversation; a new one starts without it.
    #[serde(default)]
    pub conversation_id: Option<String>,
    /// 1 to 32000 characters.
    #[schema(min_length = 1, max_length = 32000)]
    pub message: String,
    #[serde(default)]
    pub model: Option<String>,
    /// Narrows the tools this turn offers to these (of `run_command`, `read_file`,
    /// `write_file`, `list_files`); it can never add one the deployment does not offer.
    /// Absent: every configured tool. Empty: none.
    #[serde(default)]
    #[schema(max_items = 8)]
    pub tools: Option<Vec<String>>,
    /// Answer as server-sent events (`text/event-stream`) while the turn runs. Absent: as the
    /// `Accept` header asks, else one JSON answer at the end.
    #[serde(default)]
    pub stream: Option<bool>,
}

/// `?cursor=` of the listing routes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CursorQuery {
    /// The `next_cursor` of the previous page (at most 256 bytes).
    #[serde(default)]
    #[param(max_length = 256)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageView {
    pub id: String,
    #[schema(value_type = String, example = "assistant")]
    pub role: &'static str,
    pub content: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// An answer's tool calls and results (absent when it called no tool).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<StepView>)]
    pub steps: Vec<Value>,
    /// Present (and true) on an answer whose streamed turn stopped because its client went
    /// away: it holds what was generated until then.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub incomplete: bool,
}

impl MessageView {
    /// A stored message with its steps.
    pub fn of(m: MessageRecord) -> Self {
        let steps = steps::decode(&m.steps).unwrap_or_else(|| {
            tracing::error!(message = %m.id, "stored steps are unreadable; not shown");
            Vec::new()
        });
        Self {
            id: m.id,
            role: m.role.as_str(),
            content: m.content,
            created_at: m.created_at.to_rfc3339(),
            steps: step_views(&steps),
            incomplete: m.stop_reason == StopReason::ClientDisconnected.as_str(),
        }
    }

    /// The message without its steps (a turn's answer, whose steps are beside it).
    pub fn bare(m: MessageRecord) -> Self {
        Self {
            steps: Vec::new(),
            ..Self::of(MessageRecord {
                steps: String::new(),
                ..m
            })
        }
    }
}

pub fn step_views(steps: &[Step]) -> Vec<Value> {
    steps.iter().map(Step::to_json).collect()
}

/// One step of an agent turn (see README "The agent"): a `tool_call` (`arguments`) or a
/// `tool_result` (`ok` and `output` or `error`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // only its schema is used
pub struct StepView {
    /// `tool_call` or `tool_result`.
    #[schema(rename = "type", value_type = String)]
    kind: String,
    /// The model call (1-based) that asked for the tool.
    #[schema(minimum = 1)]
    step: u32,
    /// The call's id; a result carries the id of the call it answers.
    id: String,
    name: String,
    /// A call's arguments: the object the model sent, or its text when that was not JSON.
    arguments: Option<Value>,
    ok: Option<bool>,
    /// A successful result's output, as the model saw it.
    output: Option<Value>,
    /// A failed result's `code` and `message`.
    #[schema(value_type = Option<Object>)]
    error: Option<Value>,
    /// The result (or arguments) reached the model cut to 16 KiB.
    cut: Option<bool>,
    /// Left out of the stored conversation to keep it within its size limit.
    omitted: Option<bool>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SendResponse {
    pub conversation_id: String,
    pub message: MessageView,
    /// Every model call's tokens summed.
    #[schema(value_type = UsageView)]
    pub usage: Usage,
    pub credits_remaining: u64,
    /// The tool calls and results of this turn, in order.
    #[schema(value_type = Vec<StepView>)]
    pub steps: Vec<Value>,
    /// `end_turn`, `max_steps`, `credits_exhausted`, `deadline` or `provider_error`.
    #[schema(value_type = String, example = "end_turn")]
    pub stop_reason: &'static str,
    /// Which provider answered the last model call: `primary`, or `fallback` when
    /// `LLM_FALLBACK_*` took over.
    #[schema(value_type = String, example = "primary")]
    pub provider: &'static str,
}

/// One server-sent event of a streamed turn, as a client's SSE parser hands it over.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // only its schema is used
pub struct SseEvent {
    /// `turn`, `delta`, `tool_call`, `tool_result`, `done` or `error`.
    #[schema(value_type = String, pattern = "^(turn|delta|tool_call|tool_result|done|error)$")]
    event: String,
    /// The event's JSON object, as text: `turn` `{"conversation_id"}`, `delta` `{"text"}`,
    /// `tool_call` / `tool_result` a steps entry, `done` `{"message","usage",
    /// "credits_remaining","stop_reason","provider"}`, `error` `{"code","message","request_id"}`.
    data: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConversationView {
    pub id: String,
    pub title: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl ConversationView {
    pub fn of(c: &ConversationRecord) -> Self {
        Self {
            id: c.id.to_string(),
            title: c.title.clone(),
            created_at: c.created_at.to_rfc3339(),
            updated_at: c.updated_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConversationsResponse {
    pub conversations: Vec<ConversationView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConversationResponse {
    pub conversation: ConversationView,
    pub messages: Vec<MessageView>,
    pub next_cursor: Option<String>,
}

/// Tokens the provider reported for a turn (`bastion_chat::Usage`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // only its schema is used
pub struct UsageView {
    #[schema(minimum = 0)]
    prompt_tokens: u64,
    #[schema(minimum = 0)]
    completion_tokens: u64,
}
