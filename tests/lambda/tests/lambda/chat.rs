//! The chat function as a Lambda: a turn answered through the fake OpenAI-compatible server,
//! refused without a token, per-IP limits on the gateway's source IP.

use bastion_chat::testing::default_reply;
use bastion_lambda_tests::deployment::ORIGIN;
use bastion_lambda_tests::{Deployment, RestEvent};
use serde_json::json;

use crate::{assert_rate_limited, signed_up, statuses_from};

#[tokio::test]
async fn a_chat_turn_is_answered_and_listed_through_rest_events() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let chat = d.start("chat").await;
    let (_, access) = signed_up(&auth, "chatter@example.com").await;

    let r = chat
        .call(&RestEvent::post_json("/chat", &json!({"message": "What is Rust?"})).bearer(&access))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(
        body["message"]["content"],
        json!(default_reply("What is Rust?"))
    );
    assert_eq!(body["message"]["role"], json!("assistant"));

    let list = chat
        .call(
            &RestEvent::get("/chat/conversations")
                .bearer(&access)
                .header("Origin", ORIGIN),
        )
        .await;
    assert_eq!(list.status, 200, "{}", list.text());
    let conversations = list.json()["conversations"].as_array().unwrap().clone();
    assert_eq!(conversations.len(), 1, "{conversations:?}");
    assert_eq!(conversations[0]["id"], body["conversation_id"]);
}

#[tokio::test]
async fn a_chat_turn_without_a_token_is_refused_with_the_exact_envelope() {
    let d = Deployment::new().await;
    let chat = d.start("chat").await;
    let r = chat
        .call(&RestEvent::post_json("/chat", &json!({"message": "hi"})))
        .await;
    r.assert_error(401, "unauthorized", "missing bearer token");
}

#[tokio::test]
async fn chat_requests_are_limited_per_source_ip_whatever_x_forwarded_for_says() {
    let d = Deployment::new().await;
    let chat = d
        .start_with("chat", &d.env("chat").set("RATE_LIMIT_DEFAULT_IP", "3/60"))
        .await;
    let health = RestEvent::get("/chat/health");
    assert_eq!(
        statuses_from(&chat, &health, "203.0.113.60", 3).await,
        vec![200, 200, 200]
    );
    assert_rate_limited(
        &chat
            .call(
                &health
                    .clone()
                    .source_ip("203.0.113.60")
                    .set_header("X-Forwarded-For", "192.0.2.1"),
            )
            .await,
    );
    assert_eq!(
        statuses_from(&chat, &health, "203.0.113.61", 1).await,
        vec![200]
    );
}
