//! The chat routes end to end: auth + chat under one edge, a fake OpenAI-compatible provider on
//! 127.0.0.1, exact statuses and bodies, refunds, quotas, limits and ownership.

use std::collections::HashMap;
use std::time::Duration;

use bastion_chat::testing::{Answer, FAKE_KEY, FakeLlm, default_reply};
use bastion_core::{Owner, Timestamp, UserId};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, START, TestApp, TestResponse, base_env};

/// The UTC midnight after `START`, when the day's credits reset.
const MIDNIGHT: Timestamp = Timestamp(1_800_057_600);

async fn chat_app_with(fake: &FakeLlm, extra: &[(&str, &str)]) -> TestApp {
    let mut env: HashMap<String, String> = base_env();
    for (k, v) in [
        ("LLM_BASE_URL", fake.base_url.as_str()),
        ("LLM_API_KEY", FAKE_KEY),
        ("LLM_MODEL", "fake-small"),
        ("LLM_ALLOWED_MODELS", "fake-small,fake-large"),
        ("LLM_SYSTEM_PROMPT", "Be brief."),
        ("PLAN_FREE_DAILY_CREDITS", "5"),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        env.insert(k.to_owned(), v.to_owned());
    }
    TestApp::builder().env(env).chat().build().await
}

async fn chat_app(fake: &FakeLlm) -> TestApp {
    chat_app_with(fake, &[]).await
}

impl TestApp {
    async fn chat(&self, token: &str, body: Value) -> TestResponse {
        self.call(Method::POST, "/chat", Some(token), Some(body))
            .await
    }

    async fn say(&self, token: &str, message: &str) -> TestResponse {
        self.chat(token, json!({"message": message})).await
    }
}

/// Asserts a 200 turn and returns its conversation id.
fn conversation_of(r: &TestResponse) -> String {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["conversation_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_first_message_starts_a_conversation_and_answers_with_the_exact_shape() {
    let fake = FakeLlm::start().await;
    let app = chat_app(&fake).await;
    let alice = app.signed_up("alice@example.com").await;

    let r = app.say(&alice.access, "What is Rust?").await;
    let id = conversation_of(&r);
    assert_eq!(id.len(), 44);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    let message_id = r.body["message"]["id"].as_str().unwrap().to_owned();
    assert_eq!(message_id.len(), 32);
    assert_eq!(
        r.body,
        json!({
            "conversation_id": id,
            "message": {
                "id": message_id,
                "role": "assistant",
                "content": default_reply("What is Rust?"),
                "created_at": START.to_rfc3339(),
            },
            "usage": {"prompt_tokens": 11, "completion_tokens": 7},
            "credits_remaining": 4,
            "steps": [],
            "stop_reason": "end_turn",
            "provider": "primary",
        })
    );
    assert_eq!(
        fake.messages_of(0),
        vec![
            ("system".to_owned(), "Be brief.".to_owned()),
            ("user".to_owned(), "What is Rust?".to_owned()),
        ]
    );
    assert!(fake.refusals().is_empty());
}

#[tokio::test]
async fn a_follow_up_sends_the_history_in_order_and_stores_every_message() {
    let fake = FakeLlm::start().await;
    let app = chat_app(&fake).await;
    let alice = app.signed_up("alice@example.com").await;
    let id = conversation_of(&app.say(&alice.access, "first").await);
    app.clock.advance(30);
    let r = app
        .chat(
            &alice.access,
            json!({"conversation_id": id, "message": "second", "model": "fake-large"}),
        )
        .await;
    assert_eq!(conversation_of(&r), id);
    assert_eq!(r.body["credits_remaining"], 3);
    assert_eq!(fake.requests()[1]["model"], "fake-large");
    assert_eq!(
        fake.messages_of(1),
        vec![
            ("system".to_owned(), "Be brief.".to_owned()),
            ("user".to_owned(), "first".to_owned()),
            ("assistant".to_owned(), default_reply("first")),
            ("user".to_owned(), "second".to_owned()),
        ]
    );

    let shown = app
        .get(&format!("/chat/conversations/{id}"), &alice.access)
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
    assert_eq!(
        shown.body["conversation"],
        json!({
            "id": id,
            "title": "first",
            "created_at": START.to_rfc3339(),
            "updated_at": START.plus_secs(30).to_rfc3339(),
        })
    );
    let contents: Vec<(&str, &str)> = shown.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect();
    let (a1, a2) = (default_reply("first"), default_reply("second"));
    assert_eq!(
        contents,
        vec![
            ("assistant", a2.as_str()),
            ("user", "second"),
            ("assistant", a1.as_str()),
            ("user", "first"),
        ]
    );
    assert_eq!(shown.body["next_cursor"], Value::Null);
}

#[tokio::test]
async fn thirty_two_thousand_emoji_pass_and_thirty_two_thousand_and_one_ascii_characters_fail() {
    let fake = FakeLlm::start().await;
    let app = chat_app(&fake).await;
    let alice = app.signed_up("alice@example.com").await;

    let emoji = "🦀".repeat(32_000);
    let r = app.say(&alice.access, &emoji).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(fake.messages_of(0)[1].1, emoji);

    let r = app.say(&alice.access, &"a".repeat(32_001)).await;
    r.assert_error(
        400,
        "message_too_long",
        "message must be at most 32000 characters",
    );
    let r = app.say(&alice.access, " \n\t ").await;
    r.assert_error(400, "empty_message", "message must not be empty");
    assert_eq!(fake.requests().len(), 1);
    // Refused messages spent nothing: the next turn still has 3 of 5 left.
    assert_eq!(
        app.say(&alice.access, "ok").await.body["credits_remaining"],
        3
    );
}

#[tokio::test]
async fn a_model_outside_the_allowlist_is_refused_with_400_and_costs_nothing() {
    let fake = FakeLlm::start().await;
    let app = chat_app(&fake).await;
    let alice = app.signed_up("alice@example.com").await;
    let r = app
        .chat(&alice.access, json!({"message": "hi", "model": "gpt-4o"}))
        .await;
    r.assert_error(
        400,
        "model_not_allowed",
        "model is not one of the allowed models",
    );
    assert!(fake.requests().is_empty());
    assert_eq!(
        app.say(&alice.access, "hi").await.body["credits_remaining"],
        4
    );
}

#[tokio::test]
async fn provider_errors_map_to_502_are_audited_and_refund_the_credit() {
    let fake = FakeLlm::start().await;
    let app = chat_app(&fake).await;
    let alice = app.signed_up("alice@example.com").await;
    let cases = [
        vec![
            Answer::Status(500),
            Answer::Status(500),
            Answer::Status(500),
        ],
        vec![
            Answer::Status(429),
            Answer::Status(429),
            Answer::Status(429),
        ],
        vec![Answer::Malformed],
    ];
    for script in cases {
        fake.script(script);
        let r = app.say(&alice.access, "hello?").await;
        r.assert_error(502, "upstream_error", "the language model provider failed");
    }
    // Seven provider calls (3 + 3 + 1) and no credit spent by any failed turn.
    assert_eq!(fake.requests().len(), 7);
    let ok = app.say(&alice.access, "hello?").await;
    assert_eq!(ok.body["credits_remaining"], 4);
    let kinds = app.audit_kinds(&alice.user_id).await;
    assert_eq!(
        kinds
            .iter()
            .filter(|k| k.as_str() == "chat_provider_failed")
            .count(),
        3
    );
    // A failed first turn leaves no conversation behind.
    let list = app.get("/chat/conversations", &alice.access).await;
    assert_eq!(list.body["conversations"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_provider_slower_than_the_deadline_answers_504_and_refunds_the_credit() {
    let fake = FakeLlm::start().await;
    let app = chat_app_with(&fake, &[("LLM_TIMEOUT_SECS", "1")]).await;
    let alice = app.signed_up("alice@example.com").await;
    fake.script([Answer::Slow(Duration::from_secs(3))]);
    let r = app.say(&alice.access, "anyone there?").await;
    r.assert_error(
        504,
        "upstream_timeout",
        "the language model provider did not answer in time",
    );
    assert_eq!(
        app.say(&alice.access, "retry").await.body["credits_remaining"],
        4
    );
    assert!(
        app.audit_kinds(&alice.user_id)
            .await
            .contains(&"chat_provider_failed".to_owned())
    );
}

#[tokio::test]
async fn out_of_credits_answers_402_with_the_reset_time_until_the_next_utc_day() {
    let fake = FakeLlm::start().await;
    let app = chat_app_with(&fake, &[("PLAN_FREE_DAILY_CREDITS", "1")]).await;
    let alice = app.signed_up("alice@example.com").await;
    assert_eq!(
        app.say(&alice.access, "one").await.body["credits_remaining"],
        0
    );

    let r = app.say(&alice.access, "two").await;
    r.assert_error(
        402,
        "quota_exceeded",
        &format!(
            "daily message credits are used up; they reset at {}",
            MIDNIGHT.to_rfc3339()
        ),
    );
    assert_eq!(
        r.header("retry-after"),
        Some((MIDNIGHT.secs() - START.secs()).to_string().as_str())
    );
    assert_eq!(fake.requests().len(), 1);
    assert!(
        app.audit_kinds(&alice.user_id)
            .await
            .contains(&"chat_quota_exceeded".to_owned())
    );

    app.clock.set(MIDNIGHT);
    // The access token from yesterday has expired; a fresh login sees a fresh day.
    let again = app.signed_in("alice@example.com").await;
    assert_eq!(
        app.say(&again.access, "three").await.body["credits_remaining"],
        0
    );
}

#[tokio::test]
async fn the_per_user_turn_limit_answers_429_with_headers() {
    let fake = FakeLlm::start().await;
    let app = chat_app_with(&fake, &[("CHAT_RATE_LIMIT", "2/60")]).await;
    let alice = app.signed_up("alice@example.com").await;
    for _ in 0..2 {
        assert_eq!(app.say(&alice.access, "hi").await.status, StatusCode::OK);
    }
    let r = app.say(&alice.access, "hi").await;
    r.assert_error(429, "rate_limited", "too many requests; retry later");
    assert_eq!(r.header("ratelimit-limit"), Some("2"));
    assert_eq!(r.header("ratelimit-remaining"), Some("0"));
    assert!(r.header("retry-after").is_some());
    assert_eq!(fake.requests().len(), 2);
    // Another user has their own allowance.
    let bob = app.signed_up("bob@example.com").await;
    assert_eq!(app.say(&bob.access, "hi").await.status, StatusCode::OK);
}

#[tokio::test]
async fn another_users_conversation_is_404_on_every_route_exactly_like_a_missing_one() {
    let fake = FakeLlm::start().await;
    let app = chat_app(&fake).await;
    let alice = app.signed_up("alice@example.com").await;
    let bob = app.signed_up("bob@example.com").await;
    let id = conversation_of(&app.say(&alice.access, "private").await);
    let missing = bastion_store::ConversationId::generate(START).to_string();

    for target in [id.as_str(), missing.as_str(), "not-an-id"] {
        let path = format!("/chat/conversations/{target}");
        let r = app.get(&path, &bob.access).await;
        r.assert_error(404, "not_found", "no such resource");
        let r = app
            .call(Method::DELETE, &path, Some(&bob.access), None)
            .await;
        r.assert_error(404, "not_found", "no such resource");
        let r = app
            .chat(
                &bob.access,
                json!({"conversation_id": target, "message": "mine now"}),
            )
            .await;
        r.assert_error(404, "not_found", "no such resource");
    }
    let listed = app.get("/chat/conversations", &bob.access).await;
    assert_eq!(
        listed.body,
        json!({"conversations": [], "next_cursor": null})
    );
    // Bob's attempts reached no provider and spent none of his credits; Alice's data is intact.
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(
        app.say(&bob.access, "hi").await.body["credits_remaining"],
        4
    );
    let mine = app
        .get(&format!("/chat/conversations/{id}"), &alice.access)
        .await;
    assert_eq!(mine.body["messages"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn conversations_list_newest_first_in_pages_and_a_bad_cursor_is_400() {
    let fake = FakeLlm::start().await;
    let app = chat_app_with(
        &fake,
        &[
            ("PLAN_FREE_DAILY_CREDITS", "100"),
            ("CHAT_RATE_LIMIT", "100/60"),
        ],
    )
    .await;
    let alice = app.signed_up("alice@example.com").await;
    let mut ids = Vec::new();
    for i in 0..22 {
        ids.push(conversation_of(
            &app.say(&alice.access, &format!("topic {i}")).await,
        ));
        app.clock.advance(1);
    }
    ids.reverse();

    let first = app.get("/chat/conversations", &alice.access).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let page_ids = |r: &TestResponse| -> Vec<String> {
        r.body["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(page_ids(&first), ids[..20]);
    assert_eq!(first.body["conversations"][0]["title"], "topic 21");
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = app
        .get(
            &format!("/chat/conversations?cursor={cursor}"),
            &alice.access,
        )
        .await;
    assert_eq!(page_ids(&second), ids[20..]);
    assert_eq!(second.body["next_cursor"], Value::Null);

    let r = app
        .get("/chat/conversations?cursor=bm9wZQ", &alice.access)
        .await;
    r.assert_error(400, "invalid_cursor", "cursor is not valid");
}

#[tokio::test]
async fn deleting_a_conversation_answers_204_and_it_is_gone() {
    let fake = FakeLlm::start().await;
    let app = chat_app(&fake).await;
    let alice = app.signed_up("alice@example.com").await;
    let keep = conversation_of(&app.say(&alice.access, "keep").await);
    let gone = conversation_of(&app.say(&alice.access, "drop").await);
    let path = format!("/chat/conversations/{gone}");
    let r = app
        .call(Method::DELETE, &path, Some(&alice.access), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    app.get(&path, &alice.access)
        .await
        .assert_error(404, "not_found", "no such resource");
    let listed = app.get("/chat/conversations", &alice.access).await;
    assert_eq!(listed.body["conversations"][0]["id"], keep.as_str());
    assert_eq!(listed.body["conversations"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn deleting_the_account_removes_its_conversations() {
    let fake = FakeLlm::start().await;
    let app = chat_app(&fake).await;
    let alice = app.signed_up("alice@example.com").await;
    let id = conversation_of(&app.say(&alice.access, "remember me").await);
    let r = app
        .call(
            Method::DELETE,
            "/auth/account",
            Some(&alice.access),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let owner = Owner::User(UserId::parse(&alice.user_id).unwrap());
    let conv_id = bastion_store::ConversationId::parse(&id).unwrap();
    assert_eq!(
        app.stores
            .conversations
            .get_conversation(&owner, &conv_id)
            .await
            .unwrap(),
        None
    );
    let messages = app
        .stores
        .conversations
        .list_messages(&owner, &conv_id, None, 10)
        .await
        .unwrap()
        .unwrap();
    assert!(messages.items.is_empty());
}

#[tokio::test]
async fn every_chat_route_needs_a_bearer_token_and_health_answers_ok() {
    let fake = FakeLlm::start().await;
    let app = chat_app(&fake).await;
    let id = bastion_store::ConversationId::generate(START).to_string();
    let path = format!("/chat/conversations/{id}");
    for (method, path, body) in [
        (Method::POST, "/chat", Some(json!({"message": "hi"}))),
        (Method::GET, "/chat/conversations", None),
        (Method::GET, path.as_str(), None),
        (Method::DELETE, path.as_str(), None),
    ] {
        let r = app.call(method.clone(), path, None, body).await;
        r.assert_error(401, "unauthorized", "missing bearer token");
    }
    let r = app.call(Method::GET, "/chat/health", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"status": "ok"}));
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn chat_text_is_stored_sealed_and_a_copy_under_another_user_answers_503_showing_nothing() {
    let fake = FakeLlm::start().await;
    let app = chat_app(&fake).await;
    let alice = app.signed_up("alice@example.com").await;
    let bob = app.signed_up("bob@example.com").await;
    let id = conversation_of(&app.say(&alice.access, "my tangerine secret").await);
    let conv_id = bastion_store::ConversationId::parse(&id).unwrap();
    let alice_owner = Owner::User(UserId::parse(&alice.user_id).unwrap());
    let bob_owner = Owner::User(UserId::parse(&bob.user_id).unwrap());

    // What the adapter holds is sealed; alice still reads her text.
    let raw = &app.unsealed.conversations;
    let mut stolen = raw
        .get_conversation(&alice_owner, &conv_id)
        .await
        .unwrap()
        .unwrap();
    let stolen_msgs = raw
        .list_messages(&alice_owner, &conv_id, None, 10)
        .await
        .unwrap()
        .unwrap()
        .items;
    for stored in std::iter::once(&stolen.title).chain(stolen_msgs.iter().map(|m| &m.content)) {
        assert!(stored.starts_with("bastion-sealed:v1:"), "{stored}");
        assert!(!stored.contains("tangerine"));
    }
    let shown = app
        .get(&format!("/chat/conversations/{id}"), &alice.access)
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text);
    assert_eq!(shown.body["conversation"]["title"], "my tangerine secret");

    // Someone with write access to the table copies the items under bob.
    stolen.owner = bob_owner;
    let turn = bastion_store::TurnWrite {
        conversation: stolen,
        previous_count: None,
        messages: stolen_msgs,
    };
    raw.append_turn(&turn).await.unwrap();
    let message = "service temporarily unavailable";
    app.get(&format!("/chat/conversations/{id}"), &bob.access)
        .await
        .assert_error(503, "unavailable", message);
    app.get("/chat/conversations", &bob.access)
        .await
        .assert_error(503, "unavailable", message);
    let r = app
        .chat(&bob.access, json!({"conversation_id": id, "message": "hi"}))
        .await;
    r.assert_error(503, "unavailable", message);
    assert!(!r.text.contains("tangerine"));
}
