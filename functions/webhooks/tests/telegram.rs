//! `POST /webhooks/telegram` with real-format updates, answered through a fake Bot API.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use bastion_core::{Owner, Timestamp};
use bastion_webhooks::ReplyError;
use common::{BOT_TOKEN, TELEGRAM_SECRET, WebhookApp};
use serde_json::{Value, json};
use tokio::sync::Notify;

const PATH: &str = "/webhooks/telegram";

/// A private-chat text message as Telegram sends it.
fn update(update_id: i64, chat_id: i64, from_id: i64, text: &str) -> Vec<u8> {
    json!({
        "update_id": update_id,
        "message": {
            "message_id": 17,
            "from": {"id": from_id, "is_bot": false, "first_name": "Ada", "language_code": "en"},
            "chat": {"id": chat_id, "first_name": "Ada", "type": "private"},
            "date": 1_800_000_000,
            "text": text
        }
    })
    .to_string()
    .into_bytes()
}

async fn deliver(app: &WebhookApp, body: &[u8]) -> common::Reply {
    app.post(
        PATH,
        &[("x-telegram-bot-api-secret-token", TELEGRAM_SECRET)],
        body,
    )
    .await
}

fn sent_texts(app: &WebhookApp) -> Vec<Value> {
    app.telegram
        .captured()
        .into_iter()
        .map(|c| {
            assert_eq!(c.path, format!("/bot{BOT_TOKEN}/sendMessage"));
            c.body
        })
        .collect()
}

#[tokio::test]
async fn a_verified_text_message_is_answered_with_send_message_to_its_chat() {
    let app = WebhookApp::new().await;
    let r = deliver(&app, &update(1001, 555, 555, "hello bot")).await;
    r.assert_ok("processed");
    assert_eq!(
        app.replier.calls(),
        vec![(Owner::Telegram(555), "hello bot".to_owned())]
    );
    assert_eq!(
        sent_texts(&app),
        vec![json!({"chat_id": 555, "text": "You said: hello bot"})]
    );
    assert_eq!(r.header("ratelimit-limit"), Some("600"));
}

#[tokio::test]
async fn credits_are_keyed_by_the_sender_not_the_chat_the_message_came_from() {
    let app = WebhookApp::new().await;
    deliver(&app, &update(1, -100_200_300, 42, "in a group"))
        .await
        .assert_ok("processed");
    deliver(&app, &update(2, -999, 42, "in another group"))
        .await
        .assert_ok("processed");
    let owners: Vec<Owner> = app.replier.calls().into_iter().map(|c| c.0).collect();
    assert_eq!(owners, vec![Owner::Telegram(42), Owner::Telegram(42)]);
    let chats: Vec<Value> = sent_texts(&app)
        .into_iter()
        .map(|b| b["chat_id"].clone())
        .collect();
    assert_eq!(chats, vec![json!(-100_200_300), json!(-999)]);
}

#[tokio::test]
async fn a_missing_secret_header_is_401_audited_and_nothing_is_answered() {
    let app = WebhookApp::new().await;
    let r = app.post(PATH, &[], &update(1, 5, 5, "hi")).await;
    r.assert_error(
        401,
        "invalid_signature",
        "delivery signature is missing or invalid",
    );
    assert_eq!(
        app.audit_details(),
        vec!["webhook_rejected 198.51.100.9 telegram:missing_signature"]
    );
    assert!(app.replier.calls().is_empty());
    assert!(app.telegram.captured().is_empty());
}

#[tokio::test]
async fn a_wrong_secret_header_is_401_audited_and_the_update_can_still_arrive_later() {
    let app = WebhookApp::new().await;
    let body = update(7, 5, 5, "hi");
    let r = app
        .post(
            PATH,
            &[("x-telegram-bot-api-secret-token", "tg-secret_012345678")],
            &body,
        )
        .await;
    r.assert_error(
        401,
        "invalid_signature",
        "delivery signature is missing or invalid",
    );
    assert_eq!(
        app.audit_details(),
        vec!["webhook_rejected 198.51.100.9 telegram:bad_signature"]
    );
    // The forged attempt claimed nothing: the genuine update is still processed.
    deliver(&app, &body).await.assert_ok("processed");
    assert_eq!(app.replier.calls().len(), 1);
}

#[tokio::test]
async fn an_unconfigured_secret_answers_503_and_is_audited() {
    let app = WebhookApp::with(|env| {
        env.remove("TELEGRAM_WEBHOOK_SECRET");
    })
    .await;
    let r = deliver(&app, &update(1, 5, 5, "hi")).await;
    r.assert_error(
        503,
        "webhook_not_configured",
        "this webhook is not configured",
    );
    assert_eq!(
        app.audit_details(),
        vec!["webhook_rejected 198.51.100.9 telegram:unconfigured_secret"]
    );
    assert!(app.replier.calls().is_empty());
}

#[tokio::test]
async fn a_redelivered_update_is_answered_200_without_a_second_reply() {
    let app = WebhookApp::new().await;
    let body = update(3003, 5, 5, "once please");
    deliver(&app, &body).await.assert_ok("processed");
    deliver(&app, &body).await.assert_ok("duplicate");
    assert_eq!(app.replier.calls().len(), 1);
    assert_eq!(app.telegram.captured().len(), 1);
}

#[tokio::test]
async fn a_duplicate_racing_an_in_progress_delivery_is_refused_and_the_update_is_answered_once() {
    let app = Arc::new(WebhookApp::new().await);
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    *app.replier.gate.lock().unwrap() = Some((entered.clone(), release.clone()));
    let body = update(4004, 5, 5, "race");

    let first = {
        let (app, body) = (app.clone(), body.clone());
        tokio::spawn(async move { deliver(&app, &body).await })
    };
    entered.notified().await;
    let racing = deliver(&app, &body).await;
    racing.assert_error(503, "delivery_in_progress", "delivery is being processed");
    release.notify_one();
    first.await.unwrap().assert_ok("processed");

    *app.replier.gate.lock().unwrap() = None;
    deliver(&app, &body).await.assert_ok("duplicate");
    assert_eq!(app.replier.calls().len(), 1);
    assert_eq!(app.telegram.captured().len(), 1);
}

#[tokio::test]
async fn a_chat_engine_failure_releases_the_claim_and_the_retry_is_answered() {
    let app = WebhookApp::new().await;
    app.replier
        .then(Err(ReplyError::Failed("provider timed out".to_owned())));
    let body = update(5005, 5, 5, "try again");
    let r = deliver(&app, &body).await;
    r.assert_error(
        503,
        "delivery_failed",
        "delivery could not be processed; retry later",
    );
    assert!(app.telegram.captured().is_empty());

    deliver(&app, &body).await.assert_ok("processed");
    assert_eq!(app.replier.calls().len(), 2);
    assert_eq!(
        sent_texts(&app),
        vec![json!({"chat_id": 5, "text": "You said: try again"})]
    );
}

#[tokio::test]
async fn a_bot_api_outage_answers_502_and_the_retry_sends_the_answer() {
    let app = WebhookApp::new().await;
    app.telegram.answer_with(500);
    let body = update(6006, 5, 5, "ping");
    deliver(&app, &body).await.assert_error(
        502,
        "delivery_failed",
        "delivery could not be processed; retry later",
    );
    app.telegram.answer_with(200);
    deliver(&app, &body).await.assert_ok("processed");
    assert_eq!(app.telegram.captured().len(), 2);
}

#[tokio::test]
async fn a_bot_api_refusal_is_final_and_not_retried() {
    let app = WebhookApp::new().await;
    app.telegram.answer_with(403);
    let body = update(6007, 5, 5, "blocked me");
    deliver(&app, &body).await.assert_ok("processed");
    deliver(&app, &body).await.assert_ok("duplicate");
    assert_eq!(app.telegram.captured().len(), 1);
}

#[tokio::test]
async fn replies_longer_than_4096_characters_are_split_into_several_messages() {
    let app = WebhookApp::new().await;
    let long = "x".repeat(9000);
    app.replier.then(Ok(long.clone()));
    deliver(&app, &update(7007, 5, 5, "essay please"))
        .await
        .assert_ok("processed");
    let texts: Vec<String> = sent_texts(&app)
        .into_iter()
        .map(|b| b["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        texts.iter().map(String::len).collect::<Vec<_>>(),
        vec![4096, 4096, 808]
    );
    assert_eq!(texts.concat(), long);
}

#[tokio::test]
async fn an_exhausted_quota_is_explained_politely_and_the_delivery_is_done() {
    let app = WebhookApp::new().await;
    app.replier.then(Err(ReplyError::QuotaExceeded {
        resets_at: Timestamp(1_800_086_400),
    }));
    let body = update(8008, 5, 5, "more");
    deliver(&app, &body).await.assert_ok("processed");
    assert_eq!(
        sent_texts(&app),
        vec![
            json!({"chat_id": 5, "text": "You have used all of your messages for now. Your allowance resets at 2027-01-16T08:00:00Z (UTC)."})
        ]
    );
    deliver(&app, &body).await.assert_ok("duplicate");
}

#[tokio::test]
async fn a_rejected_message_tells_the_user_why() {
    let app = WebhookApp::new().await;
    app.replier.then(Err(ReplyError::Rejected(
        "That message is too long.".to_owned(),
    )));
    deliver(&app, &update(8009, 5, 5, "long"))
        .await
        .assert_ok("processed");
    assert_eq!(
        sent_texts(&app),
        vec![json!({"chat_id": 5, "text": "That message is too long."})]
    );
}

#[tokio::test]
async fn non_text_updates_are_acknowledged_and_ignored() {
    let app = WebhookApp::new().await;
    let sticker = json!({
        "update_id": 9009,
        "message": {
            "message_id": 3,
            "from": {"id": 5, "is_bot": false, "first_name": "Ada"},
            "chat": {"id": 5, "type": "private"},
            "date": 1_800_000_000,
            "sticker": {"file_id": "CAACAgIAAxk", "width": 512, "height": 512}
        }
    });
    deliver(&app, sticker.to_string().as_bytes())
        .await
        .assert_ok("processed");
    let callback = json!({"update_id": 9010, "callback_query": {"id": "1", "data": "x"}});
    deliver(&app, callback.to_string().as_bytes())
        .await
        .assert_ok("processed");
    assert!(app.replier.calls().is_empty());
    assert!(app.telegram.captured().is_empty());
}

#[tokio::test]
async fn chats_outside_the_allowlist_are_not_answered() {
    let app = WebhookApp::with(|env| {
        env.insert("TELEGRAM_ALLOWED_CHAT_IDS".into(), "111, -222".into());
    })
    .await;
    deliver(&app, &update(1, 333, 333, "let me in"))
        .await
        .assert_ok("processed");
    deliver(&app, &update(2, -222, 9, "group member"))
        .await
        .assert_ok("processed");
    assert_eq!(
        app.replier.calls(),
        vec![(Owner::Telegram(9), "group member".to_owned())]
    );
}

#[tokio::test]
async fn a_verified_but_malformed_update_is_400() {
    let app = WebhookApp::new().await;
    deliver(&app, b"{\"update_id\":\"seven\"}")
        .await
        .assert_error(
            400,
            "invalid_request",
            "invalid body: a field has the wrong type",
        );
    assert!(app.replier.calls().is_empty());
}
