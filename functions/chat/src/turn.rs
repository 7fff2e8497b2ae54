//! One `POST /chat` turn as both answers run it, buffered or streamed: what was asked, owned so
//! a streamed turn's task can outlive its handler, and the engine call with the tool-call audit
//! and the audited failure mapped to the envelope.

use bastion_chat::{ChatMessage, TurnEvents, TurnReply, TurnRequest};
use bastion_core::tools::ToolName;
use bastion_core::{Owner, UserId};
use bastion_http::{ApiError, RequestMeta};
use bastion_store::ConversationId;

use crate::ChatState;
use crate::audit::{EdgeToolAudit, audit_failure};
use crate::error::chat_error;

/// What the turn was asked, after the handler's checks.
pub struct ChatTurn {
    pub user: UserId,
    pub conversation: Option<ConversationId>,
    pub message: ChatMessage,
    pub model: Option<String>,
    pub tools: Vec<ToolName>,
}

/// Runs `turn`, streamed through `events` when given. A failure is audited (awaited) before it
/// is answered, whether or not anyone is still listening.
pub async fn run(
    state: &ChatState,
    meta: &RequestMeta,
    turn: &ChatTurn,
    events: Option<&TurnEvents>,
) -> Result<TurnReply, ApiError> {
    let owner = Owner::User(turn.user.clone());
    let audit = EdgeToolAudit {
        edge: &state.edge,
        meta,
        user: &turn.user,
    };
    let request = TurnRequest {
        owner: &owner,
        conversation: turn.conversation.as_ref(),
        message: &turn.message,
        model: turn.model.as_deref(),
        tools: &turn.tools,
        audit: &audit,
        request_id: &meta.request_id,
    };
    let result = match events {
        Some(events) => state.engine.agent_turn_streamed(request, events).await,
        None => state.engine.agent_turn(request).await,
    };
    match result {
        Ok(reply) => Ok(reply),
        Err(e) => {
            audit_failure(state, meta, &turn.user, &e).await?;
            Err(chat_error(e, state.edge.clock.now()))
        }
    }
}
