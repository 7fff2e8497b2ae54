//! The webhooks function as a Lambda: a signed Stripe delivery with a base64 body, processed
//! once; a tampered one refused; per-IP limits on the gateway's source IP.

use bastion_lambda_tests::deployment::STRIPE_SECRET;
use bastion_lambda_tests::{Deployment, RestEvent};
use bastion_webhooks::verify::stripe_signature_header;
use serde_json::json;

use crate::{assert_rate_limited, statuses_from};

// The binaries under test read the real clock; a Stripe timestamp must match it.
#[allow(clippy::disallowed_methods)]
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn stripe_delivery(id: &str) -> (Vec<u8>, String) {
    let body = serde_json::to_vec(&json!({
        "id": id,
        "object": "event",
        "created": now() - 5,
        "data": {"object": {"id": "in_lambda", "object": "invoice"}},
        "livemode": false,
        "type": "invoice.paid"
    }))
    .unwrap();
    let signature = stripe_signature_header(STRIPE_SECRET.as_bytes(), now(), &body);
    (body, signature)
}

fn stripe_event(body: Vec<u8>, signature: &str) -> RestEvent {
    RestEvent::new("POST", "/webhooks/stripe")
        .header("Content-Type", "application/json; charset=utf-8")
        .header("Stripe-Signature", signature)
        .body(body)
        .base64()
}

#[tokio::test]
async fn a_signed_stripe_delivery_with_a_base64_body_is_processed_once() {
    let d = Deployment::new().await;
    let webhooks = d.start("webhooks").await;
    let (body, signature) = stripe_delivery("evt_lambda_suite_1");

    let first = webhooks.call(&stripe_event(body.clone(), &signature)).await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.json(), json!({"status": "processed"}));

    let again = webhooks.call(&stripe_event(body, &signature)).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json(), json!({"status": "duplicate"}));
}

#[tokio::test]
async fn a_stripe_delivery_whose_body_was_altered_is_refused() {
    let d = Deployment::new().await;
    let webhooks = d.start("webhooks").await;
    let (mut body, signature) = stripe_delivery("evt_lambda_suite_2");
    let last = body.len() - 1;
    body.insert(last, b' ');
    let r = webhooks.call(&stripe_event(body, &signature)).await;
    r.assert_error(
        401,
        "invalid_signature",
        "delivery signature is missing or invalid",
    );
}

#[tokio::test]
async fn webhook_deliveries_are_limited_per_source_ip_whatever_x_forwarded_for_says() {
    let d = Deployment::new().await;
    let webhooks = d
        .start_with(
            "webhooks",
            &d.env("webhooks").set("RATE_LIMIT_WEBHOOKS_IP", "2/60"),
        )
        .await;
    let health = RestEvent::get("/webhooks/health");
    assert_eq!(
        statuses_from(&webhooks, &health, "203.0.113.70", 2).await,
        vec![200, 200]
    );
    assert_rate_limited(
        &webhooks
            .call(&health.clone().source_ip("203.0.113.70"))
            .await,
    );
    assert_eq!(
        statuses_from(&webhooks, &health, "203.0.113.71", 1).await,
        vec![200]
    );
}
