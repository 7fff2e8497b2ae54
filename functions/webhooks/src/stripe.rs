//! `POST /webhooks/stripe`: the `Stripe-Signature` checked against every configured secret,
//! the event deduplicated on its id, and billing state changed in versioned writes.

use axum::Json;
use axum::extract::{Request, State};
use bastion_core::audit::AuditKind;
use bastion_core::billing::{BillingUpdate, StripeCustomerId, SubscriptionStatus};
use bastion_core::{Plan, Timestamp, UserId};
use bastion_http::body::parse_json;
use bastion_http::{ApiError, RequestMeta};
use bastion_store::{ApplyOutcome, LinkOutcome};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::Value;

use crate::delivery::{self, WorkError};
use crate::verify;
use crate::{WebhooksState, raw_body};

const PLATFORM: &str = "stripe";
const SIGNATURE_HEADER: &str = "stripe-signature";

#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    livemode: bool,
    data: EventData,
}

#[derive(Debug, Deserialize)]
struct EventData {
    object: Value,
}

fn valid_event_id(id: &str) -> bool {
    id.strip_prefix("evt_").is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 255
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

#[utoipa::path(
    post, path = "/webhooks/stripe", tag = "webhooks", operation_id = "stripe_deliver",
    params(("Stripe-Signature" = String, Header, description = "`t=<unix time>,v1=<hex HMAC-SHA256 of t.body>`; the timestamp must be within the tolerance.")),
    request_body(content = Object, content_type = "application/json", description = "A Stripe event."),
    responses((status = 200, description = "Verified and processed now (`processed`) or earlier (`duplicate`).", body = crate::wire::DeliveryStatus),
        (status = 400, description = "`invalid_request`: the body is not the platform's JSON, or the signature timestamp is outside the tolerance (`timestamp_out_of_tolerance`)."),
        (status = 401, description = "`invalid_signature`: the signature is missing, malformed or does not match."),
        (status = 413, description = "`payload_too_large`: the body is over 1 MiB."),
        (status = 502, description = "`delivery_failed`: the answer could not be sent to the platform; it will retry."),
        (status = 503, description = "`webhook_not_configured`, `delivery_in_progress`, `delivery_failed`, `unavailable`."))
)]
pub async fn deliver(
    State(state): State<WebhooksState>,
    meta: RequestMeta,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let channels = state.channels();
    let Some(config) = channels.config.stripe.as_ref() else {
        return Err(delivery::reject_unconfigured(&state, &meta, PLATFORM).await);
    };
    let header = req
        .headers()
        .get(SIGNATURE_HEADER)
        .map(|v| v.as_bytes().to_vec());
    let body = raw_body(req).await?;
    let secrets: Vec<&[u8]> = config
        .secrets
        .iter()
        .map(|s| s.expose_secret().as_bytes())
        .collect();
    let now = state.edge.clock.now();
    if let Err(why) = verify::stripe(
        header.as_deref(),
        &secrets,
        &body,
        now,
        config.tolerance_secs,
    ) {
        return Err(delivery::reject_unverified(&state, &meta, PLATFORM, why).await);
    }
    let event: Event = parse_json(&body)?;
    if !valid_event_id(&event.id) {
        return Err(ApiError::invalid(
            "invalid_request",
            "event id is malformed",
        ));
    }
    if event.livemode != config.livemode {
        let answer = ApiError::invalid(
            "livemode_mismatch",
            "event mode does not match this deployment",
        );
        let reason = if event.livemode {
            "live_event_in_test_mode"
        } else {
            "test_event_in_live_mode"
        };
        return Err(delivery::reject(&state, &meta, PLATFORM, reason, answer).await);
    }
    let key = format!("stripe#{}", event.id);
    let processed = delivery::once(&state, &meta, &key, || handle(&state, &meta, event)).await?;
    Ok(processed.body())
}

async fn handle(state: &WebhooksState, meta: &RequestMeta, event: Event) -> Result<(), WorkError> {
    let created = Timestamp(event.created);
    let object = &event.data.object;
    match event.kind.as_str() {
        "checkout.session.completed" => link(state, meta, object).await,
        "customer.subscription.created" | "customer.subscription.updated" => {
            let Some(status) =
                str_field(object, "status").and_then(|s| SubscriptionStatus::parse(s).ok())
            else {
                return delivery::audit_unusable(
                    state,
                    meta,
                    PLATFORM,
                    "unknown_subscription_status",
                )
                .await;
            };
            let update = BillingUpdate {
                event_created: created,
                status: Some(status),
                paid_through: subscription_period_end(object),
            };
            apply(state, meta, object, &event.kind, update).await
        }
        "customer.subscription.deleted" => {
            let update = BillingUpdate {
                event_created: created,
                status: Some(SubscriptionStatus::Canceled),
                paid_through: None,
            };
            apply(state, meta, object, &event.kind, update).await
        }
        "invoice.paid" | "invoice.payment_failed" => {
            if invoice_subscription(object).is_none() {
                tracing::info!(request_id = %meta.request_id, kind = %event.kind, "invoice without a subscription; ignored");
                return Ok(());
            }
            let update = if event.kind == "invoice.paid" {
                BillingUpdate {
                    event_created: created,
                    status: Some(SubscriptionStatus::Active),
                    paid_through: invoice_period_end(object),
                }
            } else {
                BillingUpdate {
                    event_created: created,
                    status: Some(SubscriptionStatus::PastDue),
                    paid_through: None,
                }
            };
            apply(state, meta, object, &event.kind, update).await
        }
        other => {
            tracing::info!(request_id = %meta.request_id, kind = other, event_id = %event.id, "stripe event type not handled; acknowledged");
            Ok(())
        }
    }
}

fn str_field<'a>(object: &'a Value, name: &str) -> Option<&'a str> {
    object.get(name).and_then(Value::as_str)
}

/// `customer` is an id string, or an expanded object carrying one.
fn customer_of(object: &Value) -> Option<StripeCustomerId> {
    let raw = match object.get("customer") {
        Some(Value::String(s)) => Some(s.as_str()),
        Some(Value::Object(o)) => o.get("id").and_then(Value::as_str),
        _ => None,
    }?;
    StripeCustomerId::parse(raw).ok()
}

/// Newer API versions moved the period to the subscription's items.
fn subscription_period_end(object: &Value) -> Option<Timestamp> {
    object
        .get("current_period_end")
        .and_then(Value::as_i64)
        .or_else(|| {
            object
                .pointer("/items/data")
                .and_then(Value::as_array)
                .and_then(|items| {
                    items
                        .iter()
                        .filter_map(|i| i.get("current_period_end").and_then(Value::as_i64))
                        .max()
                })
        })
        .map(Timestamp)
}

fn invoice_subscription(object: &Value) -> Option<&str> {
    str_field(object, "subscription").or_else(|| {
        object
            .pointer("/parent/subscription_details/subscription")
            .and_then(Value::as_str)
    })
}

/// The end of the period an invoice pays for: the latest line period (the invoice's own
/// `period_end` is the end of the previous period for subscription renewals).
fn invoice_period_end(object: &Value) -> Option<Timestamp> {
    object
        .pointer("/lines/data")
        .and_then(Value::as_array)
        .and_then(|lines| {
            lines
                .iter()
                .filter_map(|l| l.pointer("/period/end").and_then(Value::as_i64))
                .max()
        })
        .map(Timestamp)
}

async fn link(state: &WebhooksState, meta: &RequestMeta, object: &Value) -> Result<(), WorkError> {
    let Some(user) = str_field(object, "client_reference_id").and_then(|s| UserId::parse(s).ok())
    else {
        return delivery::audit_unusable(state, meta, PLATFORM, "invalid_client_reference_id")
            .await;
    };
    let Some(customer) = customer_of(object) else {
        return delivery::audit_unusable(state, meta, PLATFORM, "checkout_without_customer").await;
    };
    if state.edge.stores.users.get_user(&user).await?.is_none() {
        return delivery::audit_unusable(state, meta, PLATFORM, "unknown_user").await;
    }
    match state
        .edge
        .stores
        .billing
        .link_customer(&user, &customer)
        .await?
    {
        LinkOutcome::Linked => {
            delivery::audit_billing(
                state,
                meta,
                AuditKind::BillingLinked,
                &user,
                format!("stripe_customer:{customer}"),
            )
            .await
        }
        LinkOutcome::CustomerTaken => {
            delivery::audit_unusable(state, meta, PLATFORM, "customer_linked_to_another_user").await
        }
    }
}

async fn apply(
    state: &WebhooksState,
    meta: &RequestMeta,
    object: &Value,
    kind: &str,
    update: BillingUpdate,
) -> Result<(), WorkError> {
    let Some(customer) = customer_of(object) else {
        return delivery::audit_unusable(state, meta, PLATFORM, "event_without_customer").await;
    };
    let billing = &state.edge.stores.billing;
    let Some(user) = billing.user_for_customer(&customer).await? else {
        // Stripe does not order `checkout.session.completed` before subscription events; a
        // 5xx makes it retry this one after the checkout has linked the customer.
        return Err(WorkError::NotReady(format!(
            "customer {customer} is not linked to a user yet"
        )));
    };
    let now = state.edge.clock.now();
    match billing.apply_billing(&user, &update).await? {
        ApplyOutcome::Stale => {
            tracing::info!(request_id = %meta.request_id, kind, "older stripe event after a newer one; state kept");
            Ok(())
        }
        ApplyOutcome::Applied { before, after } => {
            let was = before.map_or(Plan::Free, |b| b.plan_at(now));
            let is = after.plan_at(now);
            if was == is {
                return Ok(());
            }
            delivery::audit_billing(
                state,
                meta,
                AuditKind::PlanChanged,
                &user,
                format!("{}->{} ({kind})", was.as_str(), is.as_str()),
            )
            .await
        }
    }
}
