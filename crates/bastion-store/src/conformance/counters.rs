//! Conformance: fixed-window counters under concurrency, and the previous window's count.
//!
//! Request budget (DynamoDB, counted in `tests/dynamodb_requests.rs` and the e2e
//! `dynamodb_requests`): one `UpdateItem` per hit, returning both windows, so a route's edge
//! costs 1 request, `POST /auth/register` 5, `POST /auth/login` 6 (5 when it fails, for known
//! and unknown emails alike).

use std::sync::Arc;

use tokio::sync::Barrier;

use super::T0;
use crate::{Stores, WindowCounts};

pub async fn one_hundred_concurrent_hits_return_exactly_one_to_one_hundred(stores: Stores) {
    const HITS: u64 = 100;
    let expires = T0.plus_secs(120);
    let barrier = Arc::new(Barrier::new(100));
    let mut tasks = Vec::new();
    for _ in 0..HITS {
        let (stores, barrier) = (stores.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            stores
                .counters
                .hit("login:ip:192.0.2.1", 42, expires)
                .await
                .unwrap()
        }));
    }
    let mut seen = Vec::new();
    for task in tasks {
        let counts = task.await.unwrap();
        assert_eq!(counts.previous, 0);
        seen.push(counts.current);
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=HITS).collect::<Vec<_>>());
    assert_eq!(
        stores
            .counters
            .hit("login:ip:192.0.2.1", 42, expires)
            .await
            .unwrap(),
        WindowCounts {
            current: HITS + 1,
            previous: 0
        }
    );
}

pub async fn hit_returns_the_previous_windows_count(stores: Stores) {
    let key = "login:account:someone";
    for expected in 1..=3 {
        let counts = stores
            .counters
            .hit(key, 10, T0.plus_secs(120))
            .await
            .unwrap();
        assert_eq!(
            counts,
            WindowCounts {
                current: expected,
                previous: 0
            }
        );
    }
    assert_eq!(
        stores
            .counters
            .hit(key, 11, T0.plus_secs(180))
            .await
            .unwrap(),
        WindowCounts {
            current: 1,
            previous: 3
        }
    );
    assert_eq!(
        stores
            .counters
            .hit(key, 12, T0.plus_secs(240))
            .await
            .unwrap(),
        WindowCounts {
            current: 1,
            previous: 1
        }
    );
    // Only the window directly before counts: window 14 follows an empty window 13.
    assert_eq!(
        stores
            .counters
            .hit(key, 14, T0.plus_secs(360))
            .await
            .unwrap(),
        WindowCounts {
            current: 1,
            previous: 0
        }
    );
}

pub async fn counters_of_different_keys_are_independent(stores: Stores) {
    let expires = T0.plus_secs(120);
    stores
        .counters
        .hit("register:ip:192.0.2.1", 7, expires)
        .await
        .unwrap();
    stores
        .counters
        .hit("register:ip:192.0.2.1", 7, expires)
        .await
        .unwrap();
    stores
        .counters
        .hit("register:ip:192.0.2.2", 6, expires)
        .await
        .unwrap();
    assert_eq!(
        stores
            .counters
            .hit("register:ip:192.0.2.2", 7, expires)
            .await
            .unwrap(),
        WindowCounts {
            current: 1,
            previous: 1
        }
    );
    assert_eq!(
        stores
            .counters
            .hit("register:ip:192.0.2.1", 7, expires)
            .await
            .unwrap(),
        WindowCounts {
            current: 3,
            previous: 0
        }
    );
}
