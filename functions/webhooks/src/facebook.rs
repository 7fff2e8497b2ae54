//! `/webhooks/facebook`: the Messenger subscription handshake (`GET`) and signed deliveries
//! (`POST`), each message deduplicated on its `mid` and answered through the Send API.

use axum::Json;
use axum::extract::{Query, Request, State};
use axum::response::{IntoResponse, Response};
use bastion_core::Owner;
use bastion_core::crypto::ct_eq;
use bastion_http::body::parse_json;
use bastion_http::{ApiError, ErrorKind, RequestMeta};
use http::header;
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::delivery::{self, Processed, WorkError};
use crate::reply::{ReplyError, quota_message};
use crate::verify;
use crate::{WebhooksState, raw_body};

const PLATFORM: &str = "facebook";
const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// Meta's challenges are short numeric strings; anything long or odd is not echoed.
const CHALLENGE_MAX: usize = 128;
/// Message ids are opaque but short; longer ones are not stored as keys.
const MID_MAX: usize = 256;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyParams {
    /// `subscribe`.
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    /// Echoed when the token matches: 1 to 128 of `A-Za-z0-9-_.`.
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

fn safe_challenge(c: &str) -> bool {
    !c.is_empty()
        && c.len() <= CHALLENGE_MAX
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[utoipa::path(
    get, path = "/webhooks/facebook", tag = "webhooks", operation_id = "facebook_verify",
    params(VerifyParams),
    responses((status = 200, description = "The challenge, echoed.", content_type = "text/plain", body = String),
        (status = 403, description = "`verification_failed`: wrong token or mode, or an unsafe challenge."),
        (status = 503, description = "`webhook_not_configured`, `unavailable`."))
)]
pub async fn verify_subscription(
    State(state): State<WebhooksState>,
    meta: RequestMeta,
    params: Result<Query<VerifyParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let channels = state.channels();
    let Some(expected) = channels.config.facebook.verify_token.as_ref() else {
        return Err(delivery::reject_unconfigured(&state, &meta, PLATFORM).await);
    };
    let forbidden = || {
        ApiError::new(ErrorKind::Forbidden, "subscription verification failed")
            .with_code("verification_failed")
    };
    let Ok(Query(params)) = params else {
        return Err(
            delivery::reject(&state, &meta, PLATFORM, "bad_verify_query", forbidden()).await,
        );
    };
    let token_ok = params
        .verify_token
        .as_deref()
        .is_some_and(|t| ct_eq(t.as_bytes(), expected.expose_secret().as_bytes()));
    let mode_ok = params.mode.as_deref() == Some("subscribe");
    match params.challenge {
        Some(challenge) if token_ok && mode_ok && safe_challenge(&challenge) => Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            challenge,
        )
            .into_response()),
        _ => {
            let reason = if token_ok {
                "bad_verify_request"
            } else {
                "bad_verify_token"
            };
            Err(delivery::reject(&state, &meta, PLATFORM, reason, forbidden()).await)
        }
    }
}

#[derive(Debug, Deserialize)]
struct Delivery {
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(default)]
    messaging: Vec<Messaging>,
}

#[derive(Debug, Deserialize)]
struct Messaging {
    sender: Option<Party>,
    message: Option<Message>,
    /// When Meta saw the event, in milliseconds since the epoch.
    #[serde(default)]
    timestamp: Option<i64>,
}

/// Meta's signatures carry no timestamp, so the event's own is what bounds a replay: an event
/// is refused once it is older than its dedupe record is kept (less the skew allowed between
/// Meta's clock and ours), so a captured delivery can never outlive the record that stops it.
const CLOCK_SKEW_SECS: i64 = 300;
const MAX_EVENT_AGE_SECS: i64 = bastion_store::DELIVERY_RETENTION_SECS - CLOCK_SKEW_SECS;

/// Whether an event's timestamp falls inside the window in which its dedupe record lives.
fn event_age_check(
    timestamp_ms: i64,
    now: bastion_core::Timestamp,
) -> Result<(), verify::Rejection> {
    let at = timestamp_ms.div_euclid(1000);
    if at < now.secs() - MAX_EVENT_AGE_SECS {
        Err(verify::Rejection::Stale)
    } else if at > now.secs() + CLOCK_SKEW_SECS {
        Err(verify::Rejection::Future)
    } else {
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
struct Party {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Message {
    mid: String,
    text: Option<String>,
    #[serde(default)]
    is_echo: bool,
}

#[utoipa::path(
    post, path = "/webhooks/facebook", tag = "webhooks", operation_id = "facebook_deliver",
    params(("X-Hub-Signature-256" = String, Header, description = "`sha256=` and the hex HMAC-SHA256 of the raw body under the app secret.")),
    request_body(content = Object, content_type = "application/json", description = "A Messenger Platform webhook event."),
    responses(crate::wire::ChannelDeliveryResponses)
)]
pub async fn deliver(
    State(state): State<WebhooksState>,
    meta: RequestMeta,
    req: Request,
) -> Result<Json<serde_json::Value>, ApiError> {
    let channels = state.channels();
    let Some(messaging) = channels.config.facebook.messaging.as_ref() else {
        return Err(delivery::reject_unconfigured(&state, &meta, PLATFORM).await);
    };
    let header = req
        .headers()
        .get(SIGNATURE_HEADER)
        .map(|v| v.as_bytes().to_vec());
    let body = raw_body(req).await?;
    if let Err(why) = verify::facebook(
        header.as_deref(),
        messaging.app_secret.expose_secret().as_bytes(),
        &body,
    ) {
        return Err(delivery::reject_unverified(&state, &meta, PLATFORM, why).await);
    }
    let delivery: Delivery = parse_json(&body)?;
    if delivery.object != "page" {
        return Ok(Processed::Now.body());
    }
    let now = state.edge.clock.now();
    for event in delivery.entry.iter().flat_map(|e| &e.messaging) {
        if event.message.is_none() {
            continue;
        }
        let Some(timestamp) = event.timestamp else {
            return Err(ApiError::invalid(
                "invalid_request",
                "message event has no timestamp",
            ));
        };
        if let Err(why) = event_age_check(timestamp, now) {
            return Err(delivery::reject_unverified(&state, &meta, PLATFORM, why).await);
        }
    }
    let (mut seen, mut fresh) = (false, false);
    // Meta batches several messages per delivery and redelivers the whole batch when any
    // fails; finished ones are then skipped by their own dedupe records.
    for event in delivery.entry.into_iter().flat_map(|e| e.messaging) {
        let (Some(sender), Some(message)) = (event.sender, event.message) else {
            continue;
        };
        if message.mid.is_empty()
            || message.mid.len() > MID_MAX
            || message.mid.chars().any(char::is_control)
        {
            return Err(ApiError::invalid(
                "invalid_request",
                "message id is missing or too long",
            ));
        }
        let key = format!("facebook#{}", message.mid);
        let processed = delivery::once(&state, &meta, &key, || {
            answer(&state, &meta, &key, sender, message)
        })
        .await?;
        seen = true;
        fresh |= processed == Processed::Now;
    }
    Ok(if seen && !fresh {
        Processed::Duplicate
    } else {
        Processed::Now
    }
    .body())
}

async fn answer(
    state: &WebhooksState,
    meta: &RequestMeta,
    key: &str,
    sender: Party,
    message: Message,
) -> Result<(), WorkError> {
    let Some(text) = message.text.filter(|t| !t.trim().is_empty()) else {
        return Ok(());
    };
    if message.is_echo {
        return Ok(());
    }
    let owner = match Owner::parse_key(&format!("messenger#{}", sender.id)) {
        Ok(owner @ Owner::Messenger(_)) => owner,
        _ => {
            tracing::warn!(request_id = %meta.request_id, "messenger sender id is not a page-scoped id; ignored");
            return Ok(());
        }
    };
    let channels = state.channels();
    let Some(api) = channels.messenger_api.as_ref() else {
        return Err(WorkError::NotReady(
            "messenger is not configured".to_owned(),
        ));
    };
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
    match api.send(&sender.id, &answer).await {
        Ok(()) => Ok(()),
        Err(e @ crate::outbound::SendError::Refused { .. }) => {
            tracing::warn!(request_id = %meta.request_id, error = %e, "messenger refused the answer; not retrying");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
