//! Request and response bodies of the chat routes.

use bastion_chat::Usage;
use bastion_store::{ConversationRecord, MessageRecord};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    #[serde(default)]
    pub conversation_id: Option<String>,
    pub message: String,
    #[serde(default)]
    pub model: Option<String>,
}

/// `?cursor=` of the listing routes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CursorQuery {
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MessageView {
    pub id: String,
    pub role: &'static str,
    pub content: String,
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

#[derive(Debug, Serialize)]
pub struct SendResponse {
    pub conversation_id: String,
    pub message: MessageView,
    pub usage: Usage,
    pub credits_remaining: u64,
}

#[derive(Debug, Serialize)]
pub struct ConversationView {
    pub id: String,
    pub title: String,
    pub created_at: String,
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

#[derive(Debug, Serialize)]
pub struct ConversationsResponse {
    pub conversations: Vec<ConversationView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ConversationResponse {
    pub conversation: ConversationView,
    pub messages: Vec<MessageView>,
    pub next_cursor: Option<String>,
}
