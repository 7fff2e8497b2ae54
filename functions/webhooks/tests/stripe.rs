//! `POST /webhooks/stripe` with real-format events: signatures, rotation, tolerance, raw
//! bytes through API Gateway's base64 encoding, ordering, dedupe and billing effects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use base64::Engine;
use bastion_core::billing::SubscriptionStatus;
use bastion_core::{Clock, Plan, UserId};
use bastion_webhooks::verify::stripe_signature_header;
use common::{START, STRIPE_OLD_SECRET, STRIPE_SECRET, WebhookApp};
use serde_json::{Value, json};

const PATH: &str = "/webhooks/stripe";
const CUSTOMER: &str = "cus_PqR5tUvWxYz012";

fn event(id: &str, kind: &str, created: i64, object: Value) -> Vec<u8> {
    // Pretty-printed like Stripe's own payloads, so verification must use the exact bytes.
    serde_json::to_vec_pretty(&json!({
        "id": id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "data": {"object": object},
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": kind
    }))
    .unwrap()
}

fn checkout(user: &str) -> Value {
    json!({
        "id": "cs_test_a1b2c3",
        "object": "checkout.session",
        "client_reference_id": user,
        "customer": CUSTOMER,
        "mode": "subscription",
        "payment_status": "paid",
        "status": "complete",
        "subscription": "sub_1NqXyZ"
    })
}

fn subscription(status: &str, period_end: i64) -> Value {
    json!({
        "id": "sub_1NqXyZ",
        "object": "subscription",
        "customer": CUSTOMER,
        "status": status,
        "current_period_end": period_end,
        "items": {"object": "list", "data": [{"id": "si_1", "current_period_end": period_end}]}
    })
}

fn invoice(period_end: i64) -> Value {
    json!({
        "id": "in_1Nq",
        "object": "invoice",
        "customer": CUSTOMER,
        "subscription": "sub_1NqXyZ",
        "period_end": period_end - 2_592_000,
        "lines": {"object": "list", "data": [
            {"id": "il_1", "period": {"start": period_end - 2_592_000, "end": period_end}}
        ]}
    })
}

async fn deliver_signed(app: &WebhookApp, body: &[u8], header: &str) -> common::Reply {
    app.post(PATH, &[("stripe-signature", header)], body).await
}

async fn deliver(app: &WebhookApp, body: &[u8]) -> common::Reply {
    let header = stripe_signature_header(STRIPE_SECRET.as_bytes(), app.clock.now().secs(), body);
    deliver_signed(app, body, &header).await
}

async fn linked_user(app: &WebhookApp) -> UserId {
    let user = app.user("payer@example.com").await;
    let body = event(
        "evt_checkout1",
        "checkout.session.completed",
        START.secs(),
        checkout(user.as_str()),
    );
    deliver(app, &body).await.assert_ok("processed");
    user
}

async fn plan(app: &WebhookApp, user: &UserId) -> Plan {
    app.stores
        .billing
        .plan_of(user, app.clock.now())
        .await
        .unwrap()
}

fn audit_kinds(app: &WebhookApp) -> Vec<String> {
    app.audit_details()
}

#[tokio::test]
async fn a_completed_checkout_links_the_customer_to_the_user_it_names() {
    let app = WebhookApp::new().await;
    let user = linked_user(&app).await;
    let customer = bastion_core::billing::StripeCustomerId::parse(CUSTOMER).unwrap();
    assert_eq!(
        app.stores
            .billing
            .user_for_customer(&customer)
            .await
            .unwrap(),
        Some(user.clone())
    );
    assert_eq!(plan(&app, &user).await, Plan::Free);
    assert_eq!(
        audit_kinds(&app),
        vec![format!(
            "billing_linked 198.51.100.9 stripe_customer:{CUSTOMER}"
        )]
    );
}

#[tokio::test]
async fn a_checkout_naming_an_unknown_or_malformed_user_changes_nothing_and_is_audited() {
    let app = WebhookApp::new().await;
    let ghost = UserId::generate();
    for (id, reference) in [("evt_ghost", ghost.as_str()), ("evt_bad", "../admin")] {
        let body = event(
            id,
            "checkout.session.completed",
            START.secs(),
            checkout(reference),
        );
        deliver(&app, &body).await.assert_ok("processed");
    }
    let customer = bastion_core::billing::StripeCustomerId::parse(CUSTOMER).unwrap();
    assert_eq!(
        app.stores
            .billing
            .user_for_customer(&customer)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        audit_kinds(&app),
        vec![
            "webhook_rejected 198.51.100.9 stripe:unknown_user",
            "webhook_rejected 198.51.100.9 stripe:invalid_client_reference_id",
        ]
    );
}

#[tokio::test]
async fn missing_wrong_stale_and_future_signatures_are_refused_audited_and_change_nothing() {
    let app = WebhookApp::new().await;
    let user = app.user("payer@example.com").await;
    let body = event(
        "evt_sig",
        "checkout.session.completed",
        START.secs(),
        checkout(user.as_str()),
    );
    let now = app.clock.now().secs();
    app.post(PATH, &[], &body).await.assert_error(
        401,
        "invalid_signature",
        "delivery signature is missing or invalid",
    );
    let wrong = stripe_signature_header(b"whsec_someone_elses_secret", now, &body);
    deliver_signed(&app, &body, &wrong).await.assert_error(
        401,
        "invalid_signature",
        "delivery signature is missing or invalid",
    );
    let tampered = stripe_signature_header(STRIPE_SECRET.as_bytes(), now, &body);
    let mut altered = body.clone();
    altered.push(b' ');
    deliver_signed(&app, &altered, &tampered)
        .await
        .assert_error(
            401,
            "invalid_signature",
            "delivery signature is missing or invalid",
        );
    let stale = stripe_signature_header(STRIPE_SECRET.as_bytes(), now - 301, &body);
    deliver_signed(&app, &body, &stale).await.assert_error(
        400,
        "timestamp_out_of_tolerance",
        "signature timestamp is outside the accepted window",
    );
    let future = stripe_signature_header(STRIPE_SECRET.as_bytes(), now + 301, &body);
    deliver_signed(&app, &body, &future).await.assert_error(
        400,
        "timestamp_out_of_tolerance",
        "signature timestamp is outside the accepted window",
    );
    assert_eq!(
        audit_kinds(&app),
        vec![
            "webhook_rejected 198.51.100.9 stripe:missing_signature",
            "webhook_rejected 198.51.100.9 stripe:bad_signature",
            "webhook_rejected 198.51.100.9 stripe:bad_signature",
            "webhook_rejected 198.51.100.9 stripe:stale_timestamp",
            "webhook_rejected 198.51.100.9 stripe:future_timestamp",
        ]
    );
    assert_eq!(app.stores.billing.billing_of(&user).await.unwrap(), None);
    // None of the refusals claimed the event: the genuine delivery still goes through.
    deliver(&app, &body).await.assert_ok("processed");
}

#[tokio::test]
async fn a_header_with_several_v1_entries_is_accepted_when_one_matches() {
    let app = WebhookApp::new().await;
    let user = app.user("payer@example.com").await;
    let body = event(
        "evt_multi",
        "checkout.session.completed",
        START.secs(),
        checkout(user.as_str()),
    );
    let now = app.clock.now().secs();
    let good = stripe_signature_header(STRIPE_SECRET.as_bytes(), now, &body);
    let sig = good.split("v1=").nth(1).unwrap();
    let header = format!(
        "t={now},v1={},v1={sig},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39",
        "ab".repeat(32)
    );
    deliver_signed(&app, &body, &header)
        .await
        .assert_ok("processed");
}

#[tokio::test]
async fn an_event_signed_with_the_previous_secret_is_accepted_during_rotation() {
    let app = WebhookApp::new().await;
    let user = app.user("payer@example.com").await;
    let body = event(
        "evt_rotated",
        "checkout.session.completed",
        START.secs(),
        checkout(user.as_str()),
    );
    let header =
        stripe_signature_header(STRIPE_OLD_SECRET.as_bytes(), app.clock.now().secs(), &body);
    deliver_signed(&app, &body, &header)
        .await
        .assert_ok("processed");
    assert!(
        app.stores
            .billing
            .billing_of(&user)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_secret_added_by_a_refresh_is_honoured_and_one_removed_is_refused() {
    const NEXT: &str = "whsec_next_0123456789abcdef";
    let app = WebhookApp::new().await;
    let user = app.user("payer@example.com").await;
    let now = app.clock.now().secs();
    let body = event(
        "evt_next",
        "checkout.session.completed",
        now,
        checkout(user.as_str()),
    );
    let refused = |r: common::Reply| {
        r.assert_error(
            401,
            "invalid_signature",
            "delivery signature is missing or invalid",
        )
    };
    let by_next = stripe_signature_header(NEXT.as_bytes(), now, &body);
    refused(deliver_signed(&app, &body, &by_next).await);

    let mut env = app.env.clone();
    env.insert(
        "STRIPE_WEBHOOK_SECRETS".to_owned(),
        format!("{NEXT},{STRIPE_SECRET}"),
    );
    app.state.rotate(&env).unwrap();
    deliver_signed(&app, &body, &by_next)
        .await
        .assert_ok("processed");
    let retired = event(
        "evt_retired",
        "charge.refunded",
        now,
        json!({"id": "ch_2", "object": "charge"}),
    );
    let by_old = stripe_signature_header(STRIPE_OLD_SECRET.as_bytes(), now, &retired);
    refused(deliver_signed(&app, &retired, &by_old).await);

    // A malformed list is refused as a whole: the secrets in force stay.
    env.insert(
        "STRIPE_WEBHOOK_SECRETS".to_owned(),
        "sk_live_oops".to_owned(),
    );
    assert_eq!(
        app.state.rotate(&env).unwrap_err().var,
        "STRIPE_WEBHOOK_SECRETS"
    );
    let again = event(
        "evt_again",
        "charge.refunded",
        now,
        json!({"id": "ch_1", "object": "charge"}),
    );
    let header = stripe_signature_header(NEXT.as_bytes(), now, &again);
    deliver_signed(&app, &again, &header)
        .await
        .assert_ok("processed");
}

#[tokio::test]
async fn a_base64_encoded_api_gateway_body_is_verified_over_the_decoded_bytes() {
    let app = WebhookApp::new().await;
    let user = app.user("payer@example.com").await;
    let mut object = checkout(user.as_str());
    // Non-ASCII bytes are where a re-encoding would break the signature.
    object["customer_details"] = json!({"name": "Zoë Ångström"});
    let body = event(
        "evt_b64",
        "checkout.session.completed",
        START.secs(),
        object,
    );
    let header = stripe_signature_header(STRIPE_SECRET.as_bytes(), START.secs(), &body);
    let gateway_event = json!({
        "resource": "/webhooks/stripe",
        "path": "/webhooks/stripe",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": header},
        "multiValueHeaders": {},
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "resourceId": "abc123",
            "stage": "$default",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "3.18.12.63", "userAgent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"},
            "resourcePath": "/webhooks/stripe",
            "httpMethod": "POST",
            "apiId": "1234567890"
        },
        "body": base64::engine::general_purpose::STANDARD.encode(&body),
        "isBase64Encoded": true
    });
    let request = lambda_http::request::from_str(&gateway_event.to_string()).unwrap();
    let request = request.map(|b| Body::from(b.to_vec()));
    let r = app.send(request).await;
    r.assert_ok("processed");
    assert!(
        app.stores
            .billing
            .billing_of(&user)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        audit_kinds(&app),
        vec![format!(
            "billing_linked 3.18.12.63 stripe_customer:{CUSTOMER}"
        )]
    );
}

#[tokio::test]
async fn subscription_events_set_the_plan_and_plan_changes_are_audited() {
    let app = WebhookApp::new().await;
    let user = linked_user(&app).await;
    let period_end = START.secs() + 30 * 86_400;
    let created = event(
        "evt_sub_created",
        "customer.subscription.created",
        START.secs() + 1,
        subscription("active", period_end),
    );
    deliver(&app, &created).await.assert_ok("processed");
    assert_eq!(plan(&app, &user).await, Plan::Pro);

    let failed = event(
        "evt_inv_failed",
        "invoice.payment_failed",
        START.secs() + 2,
        invoice(period_end),
    );
    deliver(&app, &failed).await.assert_ok("processed");
    assert_eq!(plan(&app, &user).await, Plan::Free);

    let renewed = period_end + 30 * 86_400;
    let paid = event(
        "evt_inv_paid",
        "invoice.paid",
        START.secs() + 3,
        invoice(renewed),
    );
    deliver(&app, &paid).await.assert_ok("processed");
    let record = app.stores.billing.billing_of(&user).await.unwrap().unwrap();
    assert_eq!(record.status, Some(SubscriptionStatus::Active));
    assert_eq!(record.paid_through.map(|t| t.secs()), Some(renewed));

    let deleted = event(
        "evt_sub_deleted",
        "customer.subscription.deleted",
        START.secs() + 4,
        subscription("canceled", renewed),
    );
    deliver(&app, &deleted).await.assert_ok("processed");
    assert_eq!(plan(&app, &user).await, Plan::Free);
    assert_eq!(
        audit_kinds(&app)[1..],
        [
            "plan_changed 198.51.100.9 free->pro (customer.subscription.created)",
            "plan_changed 198.51.100.9 pro->free (invoice.payment_failed)",
            "plan_changed 198.51.100.9 free->pro (invoice.paid)",
            "plan_changed 198.51.100.9 pro->free (customer.subscription.deleted)",
        ]
    );
}

#[tokio::test]
async fn an_older_subscription_event_arriving_late_never_overwrites_a_newer_one() {
    let app = WebhookApp::new().await;
    let user = linked_user(&app).await;
    let end = START.secs() + 30 * 86_400;
    let canceled = event(
        "evt_newer",
        "customer.subscription.updated",
        START.secs() + 200,
        subscription("canceled", end),
    );
    let active = event(
        "evt_older",
        "customer.subscription.created",
        START.secs() + 100,
        subscription("active", end),
    );
    deliver(&app, &canceled).await.assert_ok("processed");
    deliver(&app, &active).await.assert_ok("processed");
    assert_eq!(plan(&app, &user).await, Plan::Free);
    let record = app.stores.billing.billing_of(&user).await.unwrap().unwrap();
    assert_eq!(record.status, Some(SubscriptionStatus::Canceled));
    assert_eq!(
        record.event_created.map(|t| t.secs()),
        Some(START.secs() + 200)
    );
}

#[tokio::test]
async fn a_subscription_before_its_checkout_fails_and_its_retry_succeeds_after_the_link() {
    let app = WebhookApp::new().await;
    let user = app.user("payer@example.com").await;
    let sub = event(
        "evt_early_sub",
        "customer.subscription.created",
        START.secs() + 1,
        subscription("trialing", START.secs() + 14 * 86_400),
    );
    deliver(&app, &sub).await.assert_error(
        503,
        "delivery_failed",
        "delivery could not be processed; retry later",
    );
    let link = event(
        "evt_late_checkout",
        "checkout.session.completed",
        START.secs(),
        checkout(user.as_str()),
    );
    deliver(&app, &link).await.assert_ok("processed");
    app.clock.advance(60);
    deliver(&app, &sub).await.assert_ok("processed");
    assert_eq!(plan(&app, &user).await, Plan::Pro);
    deliver(&app, &sub).await.assert_ok("duplicate");
}

#[tokio::test]
async fn ten_concurrent_copies_of_one_event_are_processed_once() {
    let app = Arc::new(WebhookApp::new().await);
    let user = linked_user(&app).await;
    let body = event(
        "evt_concurrent",
        "customer.subscription.created",
        START.secs() + 1,
        subscription("active", START.secs() + 86_400),
    );
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (app, body) = (app.clone(), body.clone());
        tasks.push(tokio::spawn(async move { deliver(&app, &body).await }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        let label = match (r.status.as_u16(), &r.body) {
            (200, b) => b["status"].as_str().unwrap().to_owned(),
            (503, b) => b["error"]["code"].as_str().unwrap().to_owned(),
            (s, _) => panic!("unexpected status {s}: {}", r.text),
        };
        statuses.push(label);
    }
    assert_eq!(statuses.iter().filter(|s| *s == "processed").count(), 1);
    assert!(
        statuses
            .iter()
            .all(|s| s == "processed" || s == "duplicate" || s == "delivery_in_progress"),
        "{statuses:?}"
    );
    assert_eq!(plan(&app, &user).await, Plan::Pro);
    let plan_changes = audit_kinds(&app)
        .iter()
        .filter(|k| k.starts_with("plan_changed"))
        .count();
    assert_eq!(plan_changes, 1);
}

#[tokio::test]
async fn a_duplicate_event_is_acknowledged_without_effect() {
    let app = WebhookApp::new().await;
    linked_user(&app).await;
    let body = event(
        "evt_checkout1",
        "checkout.session.completed",
        START.secs(),
        checkout(UserId::generate().as_str()),
    );
    deliver(&app, &body).await.assert_ok("duplicate");
    assert_eq!(audit_kinds(&app).len(), 1);
}

#[tokio::test]
async fn a_test_mode_event_is_refused_when_configured_for_live_mode() {
    let app = WebhookApp::with(|env| {
        env.insert("STRIPE_LIVEMODE".into(), "true".into());
    })
    .await;
    let user = app.user("payer@example.com").await;
    let body = event(
        "evt_testmode",
        "checkout.session.completed",
        START.secs(),
        checkout(user.as_str()),
    );
    deliver(&app, &body).await.assert_error(
        400,
        "livemode_mismatch",
        "event mode does not match this deployment",
    );
    assert_eq!(
        audit_kinds(&app),
        vec!["webhook_rejected 198.51.100.9 stripe:test_event_in_live_mode"]
    );
    assert_eq!(app.stores.billing.billing_of(&user).await.unwrap(), None);
}

#[tokio::test]
async fn unknown_event_types_are_acknowledged() {
    let app = WebhookApp::new().await;
    let body = event(
        "evt_unknown",
        "charge.refunded",
        START.secs(),
        json!({"id": "ch_1", "object": "charge"}),
    );
    deliver(&app, &body).await.assert_ok("processed");
    assert!(audit_kinds(&app).is_empty());
}

#[tokio::test]
async fn an_unconfigured_secret_answers_503_and_is_audited() {
    let app = WebhookApp::with(|env| {
        env.remove("STRIPE_WEBHOOK_SECRETS");
    })
    .await;
    let body = event("evt_x", "charge.refunded", START.secs(), json!({}));
    deliver(&app, &body).await.assert_error(
        503,
        "webhook_not_configured",
        "this webhook is not configured",
    );
    assert_eq!(
        audit_kinds(&app),
        vec!["webhook_rejected 198.51.100.9 stripe:unconfigured_secret"]
    );
}

#[tokio::test]
async fn a_signed_event_with_a_malformed_id_is_400_and_claims_nothing() {
    let app = WebhookApp::new().await;
    let body = event("evt_../../x", "charge.refunded", START.secs(), json!({}));
    deliver(&app, &body)
        .await
        .assert_error(400, "invalid_request", "event id is malformed");
    let body = event("evt_fine", "charge.refunded", START.secs(), json!({}));
    deliver(&app, &body).await.assert_ok("processed");
}

#[tokio::test]
async fn a_body_over_1_mib_is_refused_with_413_before_verification() {
    let app = WebhookApp::new().await;
    let body = vec![b' '; 1024 * 1024 + 1];
    deliver(&app, &body)
        .await
        .assert_error(413, "payload_too_large", "request body exceeds 1 MiB");
    assert!(audit_kinds(&app).is_empty());
}
