//! DynamoDB request budgets, counted by an SDK interceptor against the local moto server
//! (`BASTION_TEST_DYNAMODB_ENDPOINT`): what each port call a hot route makes costs in requests.
//!
//! Per route, with these costs (counter hit 1, login lookup 1, audit append 1, session create
//! 1):
//! - `POST /auth/login`: edge IP counter 1 + login IP counter 1 + account (or account/device)
//!   counter 1 + email lookup 1 + audit 1 + session 1 = 6 (a failed login: 5, the session
//!   write replaced by nothing; a rehash on login adds its write).
//! - `POST /auth/register`: edge IP 1 + register IP 1 + create (one transaction) 1 + audit 1 +
//!   session 1 = 5.
//! - any other route's edge: its IP counter, 1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{Credentials, Region, SharedInterceptor};
use aws_sdk_dynamodb::types::AttributeValue;
use bastion_core::{DisplayName, Email, Role, Timestamp, UserId};
use bastion_store::conformance::RequestCounter;
use bastion_store::dynamodb::create_table;
use bastion_store::{CounterStore, DynamoStore, UserRecord, UserStore, WindowCounts};

const ENDPOINT_ENV: &str = "BASTION_TEST_DYNAMODB_ENDPOINT";

async fn counted_store() -> (DynamoStore, Client, RequestCounter, String) {
    let endpoint = match std::env::var(ENDPOINT_ENV) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!("{ENDPOINT_ENV} is not set: run `scripts/test`, which starts moto"),
    };
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await;
    let counter = RequestCounter::default();
    let counted = aws_sdk_dynamodb::config::Builder::from(&config)
        .interceptor(SharedInterceptor::new(counter.clone()))
        .build();
    let client = Client::from_conf(counted);
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = bastion_core::Clock::now_nanos(&bastion_core::SystemClock);
    let table = format!(
        "bastion-req-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    create_table(&client, &table).await.unwrap();
    counter.take();
    (
        DynamoStore::new(client.clone(), &table),
        client,
        counter,
        table,
    )
}

fn user(email: &str) -> UserRecord {
    UserRecord {
        id: UserId::generate(),
        email: Email::parse(email).unwrap(),
        display_name: Some(DisplayName::parse("Ada").unwrap()),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
        roles: vec![Role::User],
        created_at: Timestamp(1_800_000_000),
        disabled: false,
        session_epoch: 0,
        email_verified: false,
    }
}

#[tokio::test]
async fn a_counter_hit_is_one_request_returning_both_windows() {
    let (store, _client, counter, _table) = counted_store().await;
    let exp = Timestamp(1_800_000_600);
    for _ in 0..3 {
        store.hit("login-ip#192.0.2.1", 100, exp).await.unwrap();
    }
    assert_eq!(counter.take(), 3);
    let counts = store.hit("login-ip#192.0.2.1", 101, exp).await.unwrap();
    assert_eq!(
        counts,
        WindowCounts {
            current: 1,
            previous: 3
        }
    );
    assert_eq!(counter.take(), 1);
}

#[tokio::test]
async fn a_counter_used_after_many_pauses_keeps_a_bounded_item() {
    let (store, client, counter, table) = counted_store().await;
    let exp = Timestamp(1_900_000_000);
    // Two hits in consecutive windows, then a pause, a hundred times over.
    for round in 0..100_i64 {
        store.hit("ip#192.0.2.9", round * 10, exp).await.unwrap();
        store
            .hit("ip#192.0.2.9", round * 10 + 1, exp)
            .await
            .unwrap();
    }
    // 200 hits, plus one prune each time sixteen stale counts have piled up (rounds 8, 16, …,
    // 96): twelve.
    assert_eq!(counter.take(), 212);
    let out = client.scan().table_name(&table).send().await.unwrap();
    let items = out.items.unwrap();
    assert_eq!(items.len(), 1);
    let mut counts: Vec<&str> = items[0]
        .keys()
        .filter(|k| k.starts_with('c'))
        .map(String::as_str)
        .collect();
    counts.sort_unstable();
    assert_eq!(
        counts,
        [
            "c960", "c961", "c970", "c971", "c980", "c981", "c990", "c991"
        ]
    );
    assert_eq!(
        items[0].get("c991"),
        Some(&AttributeValue::N("1".to_owned()))
    );
}

#[tokio::test]
async fn the_login_lookup_is_one_request_for_known_and_unknown_emails() {
    let (store, _client, counter, _table) = counted_store().await;
    let ada = user("ada@example.com");
    store.create_user(&ada).await.unwrap();
    counter.take();

    let found = store.find_user_by_email(&ada.email).await.unwrap();
    assert_eq!(found, Some(ada.clone()));
    assert_eq!(counter.take(), 1, "known email");

    let unknown = Email::parse("nobody@example.com").unwrap();
    assert_eq!(store.find_user_by_email(&unknown).await.unwrap(), None);
    assert_eq!(counter.take(), 1, "unknown email");
}
