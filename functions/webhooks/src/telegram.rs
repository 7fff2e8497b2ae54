//! `POST /webhooks/telegram`: the secret header checked, the update deduplicated on
//! `update_id`, a text message answered through the reply port and `sendMessage`.

use axum::Json;
use axum::extract::{Request, State};
use bastion_core::Owner;
use bastion_http::body::parse_json;
use bastion_http::{ApiError, RequestMeta};
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::delivery::{self, WorkError};
use crate::reply::{ReplyError, quota_message};
use crate::verify;
use crate::{WebhooksState, raw_body};

const PLATFORM: &str = "telegram";
const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// The part of an `Update` we act on; Telegram adds fields freely, so unknown ones are ignored.
#[derive(Debug, Deserialize)]
struct Update {
    update_id: i64,
    message: Option<Message>,
}

#[derive(Debug, Deserialize)]
struct Message {
    chat: Chat,
    from: Option<User>,
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Chat {
    id: i64,
}

#[derive(Debug, Deserialize)]
struct User {
    id: i64,
    #[serde(default)]
    is_bot: bool,
}

#[utoipa::path(
    post, path = "/webhooks/telegram", tag = "webhooks", operation_id = "telegram_deliver",
    params(("X-Telegram-Bot-Api-Secret-Token" = String, Header, description = "The secret token set with setWebhook; compared in constant time.")),
    request_body(content = Object, content_type = "application/json", description = "A Telegram Bot API `Update`."),
    responses(crate::wire::ChannelDeliveryResponses)
)]
pub async fn deliver(
    State(state): State<WebhooksState>,
    meta: RequestMeta,
    req: Request,
) -> Result<Json<serde_json::Value>, ApiError> {
    let channels = state.channels();
    let Some(config) = channels.config.telegram.as_ref() else {
        return Err(delivery::reject_unconfigured(&state, &meta, PLATFORM).await);
    };
    let header = req.headers().get(SECRET_HEADER).map(|v| v.as_bytes());
    if let Err(why) = verify::telegram(header, config.webhook_secret.expose_secret().as_bytes()) {
        return Err(delivery::reject_unverified(&state, &meta, PLATFORM, why).await);
    }
    let body = raw_body(req).await?;
    let update: Update = parse_json(&body)?;
    let key = format!("telegram#{}", update.update_id);
    let processed = delivery::once(&state, &meta, &key, || {
        answer(&state, &meta, &key, update.message)
    })
    .await?;
    Ok(processed.body())
}

async fn answer(
    state: &WebhooksState,
    meta: &RequestMeta,
    key: &str,
    message: Option<Message>,
) -> Result<(), WorkError> {
    let Some(Message {
        chat,
        from: Some(from),
        text: Some(text),
    }) = message
    else {
        return Ok(());
    };
    if from.is_bot || text.trim().is_empty() {
        return Ok(());
    }
    let channels = state.channels();
    let allowed = channels
        .config
        .telegram
        .as_ref()
        .and_then(|c| c.allowed_chat_ids.as_ref())
        .is_none_or(|ids| ids.contains(&chat.id));
    if !allowed {
        tracing::info!(request_id = %meta.request_id, chat_id = chat.id, "telegram chat not in TELEGRAM_ALLOWED_CHAT_IDS; ignored");
        return Ok(());
    }
    let Some(api) = channels.telegram_api.as_ref() else {
        return Err(WorkError::NotReady("telegram is not configured".to_owned()));
    };
    // Quota and history are keyed by the sender's verified user id, never the chat id, so
    // moving between chats or groups does not reset anyone's credits.
    let owner = Owner::Telegram(from.id);
    let answer = match state
        .replier
        .reply(&owner, &text, key, &meta.request_id)
        .await
    {
        Ok(reply) => reply,
        Err(ReplyError::QuotaExceeded { resets_at }) => quota_message(resets_at),
        Err(ReplyError::Rejected(why)) => why,
        Err(e @ ReplyError::Failed(_)) => return Err(WorkError::Reply(e)),
    };
    if answer.trim().is_empty() {
        return Ok(());
    }
    match api.send(chat.id, &answer).await {
        Ok(()) => Ok(()),
        Err(e @ crate::outbound::SendError::Refused { .. }) => {
            tracing::warn!(request_id = %meta.request_id, error = %e, "telegram refused the answer; not retrying");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
