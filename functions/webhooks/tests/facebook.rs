//! `/webhooks/facebook`: the subscription handshake and signed Messenger deliveries, answered
//! through a fake Send API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use bastion_core::Owner;
use bastion_webhooks::verify::facebook_signature_header;
use common::{FB_APP_SECRET, FB_PAGE_TOKEN, FB_VERIFY, WebhookApp};
use http::Request;
use serde_json::json;

const PATH: &str = "/webhooks/facebook";

/// A page delivery with one text message per `(mid, text)`, as Meta sends it.
fn delivery(messages: &[(&str, &str)]) -> Vec<u8> {
    let messaging: Vec<_> = messages
        .iter()
        .map(|(mid, text)| {
            json!({
                "sender": {"id": "6543210987654321"},
                "recipient": {"id": "1122334455"},
                "timestamp": 1_800_000_000_000_i64,
                "message": {"mid": mid, "text": text}
            })
        })
        .collect();
    json!({
        "object": "page",
        "entry": [{"id": "1122334455", "time": 1_800_000_000_000_i64, "messaging": messaging}]
    })
    .to_string()
    .into_bytes()
}

async fn deliver(app: &WebhookApp, body: &[u8]) -> common::Reply {
    let sig = facebook_signature_header(FB_APP_SECRET.as_bytes(), body);
    app.post(PATH, &[("x-hub-signature-256", &sig)], body).await
}

async fn verify_get(app: &WebhookApp, query: &str) -> common::Reply {
    app.send(
        Request::get(format!("{PATH}?{query}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn the_subscription_handshake_echoes_the_challenge_as_plain_text() {
    let app = WebhookApp::new().await;
    let r = verify_get(
        &app,
        &format!("hub.mode=subscribe&hub.verify_token={FB_VERIFY}&hub.challenge=1158201444"),
    )
    .await;
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(r.text, "1158201444");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
}

#[tokio::test]
async fn a_wrong_token_mode_or_unsafe_challenge_is_403_and_audited() {
    let app = WebhookApp::new().await;
    for query in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
        &format!("hub.mode=unsubscribe&hub.verify_token={FB_VERIFY}&hub.challenge=1"),
        &format!("hub.mode=subscribe&hub.verify_token={FB_VERIFY}&hub.challenge=%3Cscript%3E"),
        &format!("hub.mode=subscribe&hub.verify_token={FB_VERIFY}"),
        "",
    ] {
        verify_get(&app, query).await.assert_error(
            403,
            "verification_failed",
            "subscription verification failed",
        );
    }
    assert_eq!(
        app.audit_details(),
        vec![
            "webhook_rejected 198.51.100.9 facebook:bad_verify_token",
            "webhook_rejected 198.51.100.9 facebook:bad_verify_request",
            "webhook_rejected 198.51.100.9 facebook:bad_verify_request",
            "webhook_rejected 198.51.100.9 facebook:bad_verify_request",
            "webhook_rejected 198.51.100.9 facebook:bad_verify_token",
        ]
    );
}

#[tokio::test]
async fn a_signed_text_message_is_answered_through_the_send_api() {
    let app = WebhookApp::new().await;
    deliver(&app, &delivery(&[("m_AbC-1", "hi page")]))
        .await
        .assert_ok("processed");
    assert_eq!(
        app.replier.calls(),
        vec![(
            Owner::Messenger("6543210987654321".into()),
            "hi page".to_owned()
        )]
    );
    let sent = app.messenger.captured();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/me/messages");
    assert_eq!(
        sent[0].authorization.as_deref(),
        Some(format!("Bearer {FB_PAGE_TOKEN}").as_str())
    );
    assert_eq!(
        sent[0].body,
        json!({
            "recipient": {"id": "6543210987654321"},
            "messaging_type": "RESPONSE",
            "message": {"text": "You said: hi page"}
        })
    );
}

#[tokio::test]
async fn a_missing_or_wrong_signature_is_401_audited_and_not_answered() {
    let app = WebhookApp::new().await;
    let body = delivery(&[("m_1", "hi")]);
    app.post(PATH, &[], &body).await.assert_error(
        401,
        "invalid_signature",
        "delivery signature is missing or invalid",
    );
    let forged = facebook_signature_header(b"not-the-app-secret", &body);
    app.post(PATH, &[("x-hub-signature-256", &forged)], &body)
        .await
        .assert_error(
            401,
            "invalid_signature",
            "delivery signature is missing or invalid",
        );
    // A signature over other bytes does not cover these.
    let other = facebook_signature_header(FB_APP_SECRET.as_bytes(), b"{}");
    app.post(PATH, &[("x-hub-signature-256", &other)], &body)
        .await
        .assert_error(
            401,
            "invalid_signature",
            "delivery signature is missing or invalid",
        );
    assert_eq!(
        app.audit_details(),
        vec![
            "webhook_rejected 198.51.100.9 facebook:missing_signature",
            "webhook_rejected 198.51.100.9 facebook:bad_signature",
            "webhook_rejected 198.51.100.9 facebook:bad_signature",
        ]
    );
    assert!(app.replier.calls().is_empty());
    assert!(app.messenger.captured().is_empty());
}

#[tokio::test]
async fn each_message_id_is_answered_once_across_redelivered_batches() {
    let app = WebhookApp::new().await;
    deliver(&app, &delivery(&[("m_1", "one")]))
        .await
        .assert_ok("processed");
    deliver(&app, &delivery(&[("m_1", "one"), ("m_2", "two")]))
        .await
        .assert_ok("processed");
    deliver(&app, &delivery(&[("m_1", "one"), ("m_2", "two")]))
        .await
        .assert_ok("duplicate");
    let texts: Vec<String> = app.replier.calls().into_iter().map(|c| c.1).collect();
    assert_eq!(texts, vec!["one", "two"]);
    assert_eq!(app.messenger.captured().len(), 2);
}

#[tokio::test]
async fn a_send_api_outage_fails_the_batch_and_its_retry_answers_only_the_unanswered() {
    let app = WebhookApp::new().await;
    deliver(&app, &delivery(&[("m_ok", "first")]))
        .await
        .assert_ok("processed");
    app.messenger.answer_with(503);
    let batch = delivery(&[("m_ok", "first"), ("m_late", "second")]);
    deliver(&app, &batch).await.assert_error(
        502,
        "delivery_failed",
        "delivery could not be processed; retry later",
    );
    app.messenger.answer_with(200);
    deliver(&app, &batch).await.assert_ok("processed");
    let texts: Vec<String> = app.replier.calls().into_iter().map(|c| c.1).collect();
    assert_eq!(texts, vec!["first", "second", "second"]);
    let answered: Vec<String> = app
        .messenger
        .captured()
        .into_iter()
        .map(|c| c.body["message"]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        answered,
        vec!["You said: first", "You said: second", "You said: second"]
    );
}

#[tokio::test]
async fn echoes_and_non_text_messages_are_acknowledged_and_ignored() {
    let app = WebhookApp::new().await;
    let body = json!({
        "object": "page",
        "entry": [{"id": "1", "time": 1, "messaging": [
            {"sender": {"id": "1122334455"}, "recipient": {"id": "65432"},
             "timestamp": 1_800_000_000_000_i64,
             "message": {"mid": "m_echo", "text": "from the page", "is_echo": true}},
            {"sender": {"id": "65432"}, "recipient": {"id": "1122334455"},
             "timestamp": 1_800_000_000_000_i64,
             "message": {"mid": "m_img", "attachments": [{"type": "image", "payload": {"url": "https://x"}}]}},
            {"sender": {"id": "65432"}, "recipient": {"id": "1122334455"},
             "read": {"watermark": 1}}
        ]}]
    })
    .to_string();
    deliver(&app, body.as_bytes()).await.assert_ok("processed");
    assert!(app.replier.calls().is_empty());
    assert!(app.messenger.captured().is_empty());
}

#[tokio::test]
async fn unconfigured_secrets_answer_503_and_are_audited() {
    let app = WebhookApp::with(|env| {
        env.remove("FACEBOOK_APP_SECRET");
        env.remove("FACEBOOK_VERIFY_TOKEN");
    })
    .await;
    let body = delivery(&[("m_1", "hi")]);
    deliver(&app, &body).await.assert_error(
        503,
        "webhook_not_configured",
        "this webhook is not configured",
    );
    verify_get(
        &app,
        "hub.mode=subscribe&hub.verify_token=x&hub.challenge=1",
    )
    .await
    .assert_error(
        503,
        "webhook_not_configured",
        "this webhook is not configured",
    );
    assert_eq!(
        app.audit_details(),
        vec![
            "webhook_rejected 198.51.100.9 facebook:unconfigured_secret",
            "webhook_rejected 198.51.100.9 facebook:unconfigured_secret",
        ]
    );
}

#[tokio::test]
async fn a_captured_delivery_replayed_after_its_dedupe_record_expired_is_refused_and_audited() {
    let app = WebhookApp::new().await;
    let body = delivery(&[("m_captured", "hello")]);
    deliver(&app, &body).await.assert_ok("processed");
    // The oldest event still accepted: its dedupe record, kept four days from processing,
    // outlives it even if Meta's clock ran five minutes behind ours.
    app.clock
        .advance(bastion_store::DELIVERY_RETENTION_SECS - 300);
    deliver(&app, &body).await.assert_ok("duplicate");
    // A second later the record may be gone; the event's own age now refuses the replay.
    app.clock.advance(301);
    deliver(&app, &body).await.assert_error(
        400,
        "timestamp_out_of_tolerance",
        "signature timestamp is outside the accepted window",
    );
    assert_eq!(
        app.audit_details().last().unwrap(),
        "webhook_rejected 198.51.100.9 facebook:stale_timestamp"
    );
    assert_eq!(app.replier.calls().len(), 1);
    assert_eq!(app.messenger.captured().len(), 1);
}

#[tokio::test]
async fn a_delivery_dated_in_the_future_beyond_the_skew_is_refused() {
    let app = WebhookApp::new().await;
    app.clock.set(bastion_core::Timestamp(1_800_000_000 - 301));
    deliver(&app, &delivery(&[("m_future", "hi")]))
        .await
        .assert_error(
            400,
            "timestamp_out_of_tolerance",
            "signature timestamp is outside the accepted window",
        );
    assert!(app.replier.calls().is_empty());
}
