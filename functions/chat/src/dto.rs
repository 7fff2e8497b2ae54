//! Request and response bodies of the chat routes.

use bastion_chat::Usage;
use bastion_store::{ConversationRecord, MessageRecord};
use serde::{Deserialize, Serialize};

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
}

impl MessageView {
    pub fn of(m: MessageRecord) -> Self {
        Self {
            id: m.id,
            role: m.role.as_str(),
            content: m.content,
            created_at: m.created_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SendResponse {
    pub conversation_id: String,
    pub message: MessageView,
    #[schema(value_type = UsageView)]
    pub usage: Usage,
    pub credits_remaining: u64,
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
