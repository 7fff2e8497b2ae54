//! The chat routes. Identity is only `auth.user_id`; every conversation lookup is keyed by the
//! caller, so another user's conversation id answers 404 exactly as a missing one does.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bastion_chat::ChatMessage;
use bastion_core::tools::ToolName;
use bastion_core::{Owner, Scope};
use bastion_http::{ApiError, Authenticated, JsonBody, Limit, Limits, RequestMeta};
use bastion_store::ConversationId;

use crate::ChatState;
use crate::dto::{
    ConversationResponse, ConversationView, ConversationsResponse, CursorQuery, MessageView,
    SendRequest, SendResponse, SseEvent, step_views,
};
use crate::error::chat_error;
use crate::turn::ChatTurn;

/// Cursors we issue are short; anything longer is refused before it reaches the store.
const MAX_CURSOR_CHARS: usize = 256;

/// A malformed id cannot name one of the caller's conversations: 404, like any other.
fn conversation_id(raw: &str) -> Result<ConversationId, ApiError> {
    ConversationId::parse(raw).map_err(|_| ApiError::not_found())
}

fn cursor(q: &CursorQuery) -> Result<Option<&str>, ApiError> {
    match q.cursor.as_deref() {
        Some(c) if c.len() > MAX_CURSOR_CHARS => {
            Err(ApiError::invalid("invalid_cursor", "cursor is not valid"))
        }
        other => Ok(other),
    }
}

#[utoipa::path(
    post, path = "/chat", tag = "chat", operation_id = "chat_send", security(("bearer_jwt" = []), ("api_key" = [])),
    request_body = SendRequest,
    responses((status = 200, description = "The assistant's answer with the turn's tool steps, stored in the conversation. With `\"stream\": true` (or `Accept: text/event-stream`) the answer is a stream of server-sent events instead: `turn`, then `delta`, `tool_call` and `tool_result` as they happen, then `done` or `error` (see README \"Streaming\"); what is refused before the stream begins answers with the statuses below.",
            content((SendResponse = "application/json"), (SseEvent = "text/event-stream", example = json!("event: turn\ndata: {\"conversation_id\":\"...\"}\n\nevent: delta\ndata: {\"text\":\"Hel\"}\n\nevent: done\ndata: {\"message\":{...},\"usage\":{...},\"credits_remaining\":49,\"stop_reason\":\"end_turn\",\"provider\":\"primary\"}\n\n")))),
        (status = 400, description = "`empty_message`, `message_too_long`, `invalid_message`, `model_not_allowed`, `invalid_request`."),
        (status = 402, description = "`quota_exceeded`: the daily credits are used up (`Retry-After` says until when)."),
        (status = 403, description = "`insufficient_scope`: the API key lacks the `chat` scope."),
        (status = 404, description = "`not_found`: no such conversation of this user."),
        (status = 409, description = "`conflict`: the conversation changed during the request; retry."),
        (status = 502, description = "`upstream_error`: the language model provider failed."),
        (status = 504, description = "`upstream_timeout`: the provider did not answer in time."))
)]
pub async fn send(
    State(state): State<ChatState>,
    meta: RequestMeta,
    auth: Authenticated,
    limits: Limits,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SendRequest>,
) -> Result<Response, ApiError> {
    auth.require_scope(Scope::Chat)?;
    limits
        .enforce(Limit::ChatTurn, auth.user_id.as_str())
        .await?;
    let message = ChatMessage::parse(&body.message).map_err(ApiError::from)?;
    let conversation = body
        .conversation_id
        .as_deref()
        .map(conversation_id)
        .transpose()?;
    let tools = turn_tools(&state, &auth, body.tools.as_deref())?;
    let turn = ChatTurn {
        user: auth.user_id.clone(),
        conversation,
        message,
        model: body.model,
        tools,
    };
    if body
        .stream
        .unwrap_or_else(|| accepts_event_stream(&headers))
    {
        return crate::stream::send(state, meta, turn).await;
    }
    let reply = crate::turn::run(&state, &meta, &turn, None).await?;
    Ok(Json(SendResponse {
        conversation_id: reply.conversation_id.to_string(),
        message: MessageView::bare(reply.message),
        usage: reply.usage,
        credits_remaining: reply.credits_remaining,
        steps: step_views(&reply.steps),
        stop_reason: reply.stop_reason.as_str(),
        provider: reply.served_by.as_str(),
    })
    .into_response())
}

/// `Accept: text/event-stream` asks for the stream when the body does not say.
fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
        })
}

/// The tools this turn offers: the configured ones, narrowed by the request, and for an API
/// key only those its scopes would allow over the exec routes (`exec` to run and write,
/// `read` to read and list), so the agent never does more than its caller could.
fn turn_tools(
    state: &ChatState,
    auth: &Authenticated,
    requested: Option<&[String]>,
) -> Result<Vec<ToolName>, ApiError> {
    if requested.is_some_and(|r| r.len() > 8) {
        return Err(ApiError::invalid(
            "invalid_request",
            "tools lists at most 8 names",
        ));
    }
    let tools = state
        .engine
        .turn_tools(requested)
        .map_err(|m| ApiError::invalid("invalid_request", m))?;
    Ok(tools
        .into_iter()
        .filter(|t| {
            let scope = match t {
                ToolName::RunCommand | ToolName::WriteFile => Scope::Exec,
                ToolName::ReadFile | ToolName::ListFiles => Scope::Read,
            };
            auth.require_scope(scope).is_ok()
        })
        .collect())
}

#[utoipa::path(
    get, path = "/chat/conversations", tag = "chat", operation_id = "chat_list", security(("bearer_jwt" = []), ("api_key" = [])),
    params(CursorQuery),
    responses((status = 200, description = "The user's conversations, newest first.", body = ConversationsResponse),
        (status = 400, description = "`invalid_cursor`."),
        (status = 403, description = "`insufficient_scope`: the API key lacks the `read` scope."))
)]
pub async fn list(
    State(state): State<ChatState>,
    auth: Authenticated,
    Query(q): Query<CursorQuery>,
) -> Result<Json<ConversationsResponse>, ApiError> {
    auth.require_scope(Scope::Read)?;
    let owner = Owner::User(auth.user_id.clone());
    let page = state
        .engine
        .conversations(&owner, cursor(&q)?)
        .await
        .map_err(|e| chat_error(e, state.edge.clock.now()))?;
    Ok(Json(ConversationsResponse {
        conversations: page.items.iter().map(ConversationView::of).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(
    get, path = "/chat/conversations/{id}", tag = "chat", operation_id = "chat_show", security(("bearer_jwt" = []), ("api_key" = [])), params(("id" = String, Path, description = "Conversation id."), CursorQuery),
    responses((status = 200, description = "The conversation and a page of its messages.", body = ConversationResponse),
        (status = 400, description = "`invalid_cursor`."),
        (status = 403, description = "`insufficient_scope`: the API key lacks the `read` scope."),
        (status = 404, description = "`not_found`: no such conversation of this user."))
)]
pub async fn show(
    State(state): State<ChatState>,
    auth: Authenticated,
    Path(id): Path<String>,
    Query(q): Query<CursorQuery>,
) -> Result<Json<ConversationResponse>, ApiError> {
    auth.require_scope(Scope::Read)?;
    let id = conversation_id(&id)?;
    let owner = Owner::User(auth.user_id.clone());
    let (conversation, page) = state
        .engine
        .messages(&owner, &id, cursor(&q)?)
        .await
        .map_err(|e| chat_error(e, state.edge.clock.now()))?;
    Ok(Json(ConversationResponse {
        conversation: ConversationView::of(&conversation),
        messages: page.items.into_iter().map(MessageView::of).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(
    delete, path = "/chat/conversations/{id}", tag = "chat", operation_id = "chat_delete", security(("bearer_jwt" = []), ("api_key" = [])), params(("id" = String, Path, description = "Conversation id.")),
    responses((status = 204, description = "The conversation and its messages are deleted."),
        (status = 403, description = "`insufficient_scope`: the API key lacks the `chat` scope."),
        (status = 404, description = "`not_found`: no such conversation of this user."))
)]
pub async fn delete(
    State(state): State<ChatState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require_scope(Scope::Chat)?;
    let id = conversation_id(&id)?;
    let owner = Owner::User(auth.user_id.clone());
    state
        .engine
        .delete(&owner, &id)
        .await
        .map_err(|e| chat_error(e, state.edge.clock.now()))?;
    Ok(StatusCode::NO_CONTENT)
}
