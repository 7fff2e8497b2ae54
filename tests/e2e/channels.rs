//! The webhooks and chat functions together, as deployed: a verified Telegram message is
//! answered by the real chat engine (fake provider, fake Bot API) on the sender's own credits,
//! and a Stripe subscription lifts a user's chat allowance to the pro plan.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use bastion_chat::testing::{Answer, FAKE_KEY, FakeLlm, default_reply};
use bastion_core::Timestamp;
use bastion_webhooks::verify::stripe_signature_header;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{START, TestApp, TestResponse, base_env};

const TELEGRAM_SECRET: &str = "tg-secret_e2e_0123456789";
const BOT_TOKEN: &str = "424242:E2eBotToken";
const STRIPE_SECRET: &str = "whsec_e2e_0123456789abcdef";
/// The UTC midnight after `START`, when the day's credits reset.
const MIDNIGHT: Timestamp = Timestamp(1_800_057_600);

/// A Telegram Bot API stand-in on 127.0.0.1 that records every `sendMessage` body.
#[derive(Clone, Default)]
struct FakeBotApi {
    sent: Arc<Mutex<Vec<(String, Value)>>>,
    /// How many of the next calls fail with a 502 (recorded nowhere), like a Bot API outage.
    failing: Arc<Mutex<usize>>,
}

impl FakeBotApi {
    async fn start(&self) -> String {
        let (sent, failing) = (self.sent.clone(), self.failing.clone());
        let app = axum::Router::new().fallback(move |uri: http::Uri, body: Bytes| {
            let (sent, failing) = (sent.clone(), failing.clone());
            async move {
                {
                    let mut failing = failing.lock().unwrap();
                    if *failing > 0 {
                        *failing -= 1;
                        return (StatusCode::BAD_GATEWAY, axum::Json(json!({"ok": false})));
                    }
                }
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                sent.lock().unwrap().push((uri.path().to_owned(), body));
                (
                    StatusCode::OK,
                    axum::Json(json!({"ok": true, "result": {"message_id": 1}})),
                )
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }

    /// `(chat_id, text)` of every message sent, checking each went to `sendMessage`.
    fn sent(&self) -> Vec<(i64, String)> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .map(|(path, body)| {
                assert_eq!(path, &format!("/bot{BOT_TOKEN}/sendMessage"));
                (
                    body["chat_id"].as_i64().unwrap(),
                    body["text"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

async fn app_with(fake: &FakeLlm, bot_api: &str, extra: &[(&str, &str)]) -> TestApp {
    let mut env: HashMap<String, String> = base_env();
    for (k, v) in [
        ("LLM_BASE_URL", fake.base_url.as_str()),
        ("LLM_API_KEY", FAKE_KEY),
        ("LLM_MODEL", "fake-small"),
        ("TELEGRAM_WEBHOOK_SECRET", TELEGRAM_SECRET),
        ("TELEGRAM_BOT_TOKEN", BOT_TOKEN),
        ("TELEGRAM_API_BASE", bot_api),
        ("STRIPE_WEBHOOK_SECRETS", STRIPE_SECRET),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        env.insert(k.to_owned(), v.to_owned());
    }
    TestApp::builder().env(env).chat().build().await
}

async fn post_raw(app: &TestApp, path: &str, header: (&str, &str), body: Vec<u8>) -> TestResponse {
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("content-type", "application/json")
        .header(header.0, header.1)
        .body(Body::from(body))
        .unwrap();
    app.send(req).await
}

async fn telegram(app: &TestApp, update_id: i64, from: i64, text: &str) -> TestResponse {
    let update = json!({
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "from": {"id": from, "is_bot": false, "first_name": "Ada"},
            "chat": {"id": from, "first_name": "Ada", "type": "private"},
            "date": START.secs(),
            "text": text
        }
    });
    post_raw(
        app,
        "/webhooks/telegram",
        ("x-telegram-bot-api-secret-token", TELEGRAM_SECRET),
        update.to_string().into_bytes(),
    )
    .await
}

async fn stripe(app: &TestApp, id: &str, kind: &str, created: i64, object: Value) -> TestResponse {
    let body = serde_json::to_vec(&json!({
        "id": id,
        "object": "event",
        "created": created,
        "data": {"object": object},
        "livemode": false,
        "type": kind
    }))
    .unwrap();
    let header = stripe_signature_header(STRIPE_SECRET.as_bytes(), START.secs(), &body);
    post_raw(app, "/webhooks/stripe", ("stripe-signature", &header), body).await
}

fn assert_processed(r: &TestResponse) {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({"status": "processed"}));
}

#[tokio::test]
async fn a_telegram_message_is_answered_by_the_chat_engine_on_the_senders_own_credits() {
    let fake = FakeLlm::start().await;
    let bot = FakeBotApi::default();
    let base = bot.start().await;
    let app = app_with(&fake, &base, &[("PLAN_FREE_DAILY_CREDITS", "1")]).await;

    assert_processed(&telegram(&app, 1, 7001, "hello from telegram").await);
    // The same sender's second message finds their one credit spent: a polite answer, no
    // provider call, and the delivery is done (not retried).
    assert_processed(&telegram(&app, 2, 7001, "and again").await);
    // Another Telegram user has credits of their own.
    assert_processed(&telegram(&app, 3, 7002, "hi, I am someone else").await);

    assert_eq!(fake.requests().len(), 2);
    assert_eq!(
        bot.sent(),
        vec![
            (7001, default_reply("hello from telegram")),
            (
                7001,
                format!(
                    "You have used all of your messages for now. Your allowance resets at {} (UTC).",
                    MIDNIGHT.to_rfc3339()
                )
            ),
            (7002, default_reply("hi, I am someone else")),
        ]
    );
}

#[tokio::test]
async fn a_telegram_sender_continues_one_conversation_with_the_model() {
    let fake = FakeLlm::start().await;
    let bot = FakeBotApi::default();
    let base = bot.start().await;
    let app = app_with(&fake, &base, &[]).await;

    assert_processed(&telegram(&app, 10, 7100, "my name is Ada").await);
    assert_processed(&telegram(&app, 11, 7100, "what is my name?").await);

    let second: Vec<String> = fake
        .messages_of(1)
        .into_iter()
        .map(|(role, content)| format!("{role}: {content}"))
        .collect();
    assert_eq!(
        second[second.len() - 3..],
        [
            "user: my name is Ada".to_owned(),
            format!("assistant: {}", default_reply("my name is Ada")),
            "user: what is my name?".to_owned(),
        ]
    );
}

#[tokio::test]
async fn a_stripe_subscription_lifts_the_users_chat_allowance_to_pro() {
    let fake = FakeLlm::start().await;
    let bot = FakeBotApi::default();
    let base = bot.start().await;
    let app = app_with(
        &fake,
        &base,
        &[
            ("PLAN_FREE_DAILY_CREDITS", "1"),
            ("PLAN_PRO_DAILY_CREDITS", "3"),
        ],
    )
    .await;
    let alice = app.signed_up("alice@example.com").await;
    let say = |text: &'static str| {
        app.call(
            Method::POST,
            "/chat",
            Some(&alice.access),
            Some(json!({"message": text})),
        )
    };

    assert_eq!(say("one").await.body["credits_remaining"], 0);
    say("two").await.assert_error(
        402,
        "quota_exceeded",
        &format!(
            "daily message credits are used up; they reset at {}",
            MIDNIGHT.to_rfc3339()
        ),
    );

    let customer = "cus_E2eAlice01";
    assert_processed(
        &stripe(
            &app,
            "evt_e2e_checkout",
            "checkout.session.completed",
            START.secs() - 20,
            json!({
                "id": "cs_test_e2e",
                "object": "checkout.session",
                "client_reference_id": alice.user_id,
                "customer": customer,
                "mode": "subscription",
                "subscription": "sub_e2e"
            }),
        )
        .await,
    );
    assert_processed(
        &stripe(
            &app,
            "evt_e2e_sub",
            "customer.subscription.created",
            START.secs() - 10,
            json!({
                "id": "sub_e2e",
                "object": "subscription",
                "customer": customer,
                "status": "active",
                "current_period_end": START.secs() + 30 * 86_400
            }),
        )
        .await,
    );

    // The pro allowance (3) counts today's used credit: two more turns, then 402 again.
    assert_eq!(say("three").await.body["credits_remaining"], 1);
    assert_eq!(say("four").await.body["credits_remaining"], 0);
    assert_eq!(say("five").await.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn a_retried_telegram_update_whose_answer_failed_to_send_is_not_charged_or_asked_twice() {
    let fake = FakeLlm::start().await;
    let bot = FakeBotApi::default();
    let base = bot.start().await;
    let app = app_with(&fake, &base, &[("PLAN_FREE_DAILY_CREDITS", "2")]).await;

    // The turn is answered and stored, but the Bot API is down: the delivery fails so that
    // Telegram retries it.
    *bot.failing.lock().unwrap() = 1;
    let failed = telegram(&app, 30, 7300, "what is 2+2?").await;
    assert_eq!(failed.status, StatusCode::BAD_GATEWAY, "{}", failed.text);
    assert!(bot.sent().is_empty());

    // Telegram's retry sends the stored answer: no second provider call, no second credit.
    assert_processed(&telegram(&app, 30, 7300, "what is 2+2?").await);
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(bot.sent(), vec![(7300, default_reply("what is 2+2?"))]);
    // The answer it replayed was stored sealed, like the question.
    let owner = bastion_core::Owner::Telegram(7300);
    let raw = &app.unsealed.conversations;
    let listed = raw.list_conversations(&owner, None, 1).await.unwrap();
    let conv_id = listed.unwrap().items[0].id.clone();
    let stored = raw.list_messages(&owner, &conv_id, None, 10).await.unwrap();
    let stored = stored.unwrap().items;
    assert_eq!(stored.len(), 2);
    for m in &stored {
        assert!(m.content.starts_with("bastion-sealed:v1:") && !m.content.contains("2+2"));
    }

    // One credit of two is spent, so exactly one more turn is allowed today.
    assert_processed(&telegram(&app, 31, 7300, "and 3+3?").await);
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(
        fake.messages_of(1).len(),
        4,
        "history holds the first turn once"
    );
    assert_processed(&telegram(&app, 32, 7300, "and 4+4?").await);
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(
        bot.sent().last().unwrap().1,
        format!(
            "You have used all of your messages for now. Your allowance resets at {} (UTC).",
            MIDNIGHT.to_rfc3339()
        )
    );
}

#[tokio::test]
async fn a_provider_refusal_that_a_retry_would_repeat_is_answered_with_an_apology_not_a_retry() {
    let fake = FakeLlm::start().await;
    let bot = FakeBotApi::default();
    let base = bot.start().await;
    let app = app_with(&fake, &base, &[("PLAN_FREE_DAILY_CREDITS", "1")]).await;

    // A 400 (prompt too large, unknown model, bad request) would come back on every retry.
    fake.script([Answer::Status(400)]);
    assert_processed(&telegram(&app, 40, 7400, "hello").await);
    assert_eq!(
        bot.sent(),
        vec![(
            7400,
            "Sorry, I cannot answer right now. Please try again later.".to_owned()
        )]
    );
    // The credit was refunded: the next message is answered.
    assert_processed(&telegram(&app, 41, 7400, "hello again").await);
    assert_eq!(bot.sent()[1], (7400, default_reply("hello again")));
}

#[tokio::test]
async fn a_provider_outage_releases_the_telegram_delivery_for_a_retry_that_succeeds() {
    let fake = FakeLlm::start().await;
    let bot = FakeBotApi::default();
    let base = bot.start().await;
    let app = app_with(&fake, &base, &[("PLAN_FREE_DAILY_CREDITS", "1")]).await;

    // Three 503s: the first try and both of the client's retries.
    fake.script([
        Answer::Status(503),
        Answer::Status(503),
        Answer::Status(503),
    ]);
    let failed = telegram(&app, 50, 7500, "hello").await;
    assert_eq!(
        failed.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        failed.text
    );
    assert!(bot.sent().is_empty());
    assert_processed(&telegram(&app, 50, 7500, "hello").await);
    assert_eq!(bot.sent(), vec![(7500, default_reply("hello"))]);
}

#[tokio::test]
async fn a_refused_channel_message_gets_a_fixed_text_for_chat_users_and_costs_nothing() {
    let fake = FakeLlm::start().await;
    let bot = FakeBotApi::default();
    let base = bot.start().await;
    let app = app_with(&fake, &base, &[]).await;

    assert_processed(&telegram(&app, 60, 7600, "a\u{0}b").await);
    assert_eq!(
        bot.sent(),
        vec![(7600, "Sorry, I could not read that message.".to_owned())]
    );
    assert!(fake.requests().is_empty());
}
