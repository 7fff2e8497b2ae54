//! Concurrency proofs (issue 15 item 5) on both stores: limits hold exactly under parallel
//! requests because every count is one atomic write, never a read followed by a write.
//!
//! The DynamoDB variants run against the moto server `scripts/test` starts
//! (`BASTION_TEST_DYNAMODB_ENDPOINT`); that server handles one request at a time, as real
//! DynamoDB's transactions are atomic (see `scripts/moto_serial.py`).

use std::collections::HashMap;
use std::sync::Arc;

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{Credentials, Region};
use bastion_chat::testing::{FAKE_KEY, FakeLlm};
use bastion_core::{Owner, UserId};
use bastion_store::dynamodb::create_table;
use bastion_store::{Debit, DynamoStore, Stores};
use futures_util::future::join_all;
use http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{PASSWORD, START, TestApp, base_env};

/// A fresh table on the moto server.
pub async fn dynamodb_stores() -> Stores {
    let endpoint = std::env::var("BASTION_TEST_DYNAMODB_ENDPOINT")
        .expect("BASTION_TEST_DYNAMODB_ENDPOINT is not set: run scripts/test, which starts moto");
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await;
    let client = Client::new(&config);
    let table = format!("bastion-e2e-conc-{}", bastion_core::RequestId::generate());
    create_table(&client, &table).await.unwrap();
    Stores::from_adapter(Arc::new(DynamoStore::new(client, table)))
}

/// Each parallel request comes from its own address, so only the per-account limit binds.
fn address(i: usize) -> String {
    format!("198.18.{}.{}", i / 200, i % 200 + 1)
}

/// (200s, 429s, anything else) of 100 parallel correct logins on one account.
async fn one_hundred_parallel_logins(app: &TestApp) -> (usize, usize, Vec<String>) {
    app.signed_up("crowd@example.com").await;
    let answers = join_all((0..100).map(|i| {
        let app = app.seen_from(&address(i));
        async move { app.login("crowd@example.com", PASSWORD).await }
    }))
    .await;
    let mut ok = 0;
    let mut limited = 0;
    let mut other = Vec::new();
    for r in answers {
        match r.status {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                r.assert_error(429, "rate_limited", "too many requests; retry later");
                limited += 1;
            }
            s => other.push(format!("{s}: {}", r.text)),
        }
    }
    (ok, limited, other)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hundred_parallel_logins_on_one_account_let_exactly_five_through_on_sqlite() {
    let app = TestApp::new().await;
    assert_eq!(one_hundred_parallel_logins(&app).await, (5, 95, Vec::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hundred_parallel_logins_on_one_account_let_exactly_five_through_on_dynamodb() {
    let app = TestApp::builder()
        .stores(dynamodb_stores().await)
        .build()
        .await;
    assert_eq!(one_hundred_parallel_logins(&app).await, (5, 95, Vec::new()));
}

fn chat_env(fake: &FakeLlm) -> HashMap<String, String> {
    let mut env = base_env();
    for (k, v) in [
        ("LLM_BASE_URL", fake.base_url.as_str()),
        ("LLM_API_KEY", FAKE_KEY),
        ("LLM_MODEL", "fake-small"),
        ("LLM_ALLOWED_MODELS", "fake-small"),
        ("PLAN_FREE_DAILY_CREDITS", "10"),
        // The per-user turn limit stays out of the way: credits are what is measured.
        ("CHAT_RATE_LIMIT", "1000/60"),
    ] {
        env.insert(k.to_owned(), v.to_owned());
    }
    env
}

/// 50 parallel first turns (each its own conversation) of one user with 10 credits: exactly 10
/// are answered, each by one provider call, and exactly 10 credits are used.
async fn fifty_parallel_turns_with_ten_credits(app: &TestApp, fake: &FakeLlm) {
    let alice = app.signed_up("alice@example.com").await;
    let answers = join_all((0..50).map(|i| {
        let app = app.seen_from(&address(i));
        let token = alice.access.clone();
        async move {
            app.call(
                Method::POST,
                "/chat",
                Some(&token),
                Some(json!({"message": format!("turn {i}")})),
            )
            .await
        }
    }))
    .await;
    let mut remaining = Vec::new();
    let mut refused = 0;
    for r in &answers {
        match r.status {
            StatusCode::OK => remaining.push(r.body["credits_remaining"].as_u64().unwrap()),
            StatusCode::PAYMENT_REQUIRED => {
                assert_eq!(r.code(), "quota_exceeded", "{}", r.text);
                refused += 1;
            }
            s => panic!("unexpected {s}: {}", r.text),
        }
    }
    remaining.sort_unstable();
    assert_eq!(remaining, (0..10).collect::<Vec<u64>>());
    assert_eq!(refused, 40);
    assert_eq!(fake.requests().len(), 10);
    // The balance is exact: with one more credit allowed, exactly one is left to take.
    let owner = Owner::User(UserId::parse(&alice.user_id).unwrap());
    let day = START.secs().div_euclid(86_400);
    let debit = |allowance| {
        app.stores
            .credits
            .debit(&owner, day, allowance, START.plus_secs(86_400))
    };
    assert_eq!(debit(10).await.unwrap(), Debit::Exhausted);
    assert_eq!(debit(11).await.unwrap(), Debit::Taken { remaining: 0 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_chat_turns_with_ten_credits_reach_the_provider_exactly_ten_times_on_sqlite()
{
    let fake = FakeLlm::start().await;
    let app = TestApp::builder().env(chat_env(&fake)).chat().build().await;
    fifty_parallel_turns_with_ten_credits(&app, &fake).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_chat_turns_with_ten_credits_reach_the_provider_exactly_ten_times_on_dynamodb()
 {
    let fake = FakeLlm::start().await;
    let app = TestApp::builder()
        .env(chat_env(&fake))
        .stores(dynamodb_stores().await)
        .chat()
        .build()
        .await;
    fifty_parallel_turns_with_ten_credits(&app, &fake).await;
}
