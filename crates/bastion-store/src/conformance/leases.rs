//! Conformance: one holder per lease key, expiry decided by the stored time, release by the
//! holder only.

use std::sync::Arc;

use bastion_core::RequestId;
use tokio::sync::Barrier;

use super::T0;
use crate::Stores;

const TTL: i64 = 75;

pub async fn a_held_lease_refuses_others_until_its_holder_releases_it(stores: Stores) {
    let l = &stores.leases;
    let (first, second) = (RequestId::generate(), RequestId::generate());
    assert!(l.acquire_lease("exec#u1", &first, T0, TTL).await.unwrap());
    assert!(
        !l.acquire_lease("exec#u1", &second, T0.plus_secs(1), TTL)
            .await
            .unwrap()
    );
    assert!(
        !l.acquire_lease("exec#u1", &first, T0.plus_secs(1), TTL)
            .await
            .unwrap(),
        "a holder cannot take its own lease twice"
    );
    assert!(
        l.acquire_lease("exec#u2", &second, T0.plus_secs(1), TTL)
            .await
            .unwrap(),
        "keys are independent"
    );
    assert!(!l.release_lease("exec#u1", &second).await.unwrap());
    assert!(l.release_lease("exec#u1", &first).await.unwrap());
    assert!(!l.release_lease("exec#u1", &first).await.unwrap());
    assert!(
        l.acquire_lease("exec#u1", &second, T0.plus_secs(2), TTL)
            .await
            .unwrap()
    );
}

pub async fn an_expired_lease_still_stored_is_taken_over_and_not_released_by_its_old_holder(
    stores: Stores,
) {
    let l = &stores.leases;
    let (first, second) = (RequestId::generate(), RequestId::generate());
    assert!(l.acquire_lease("exec#u3", &first, T0, TTL).await.unwrap());
    assert!(
        !l.acquire_lease("exec#u3", &second, T0.plus_secs(TTL - 1), TTL)
            .await
            .unwrap(),
        "one second before expiry the lease still holds"
    );
    assert!(
        l.acquire_lease("exec#u3", &second, T0.plus_secs(TTL), TTL)
            .await
            .unwrap()
    );
    assert!(
        !l.release_lease("exec#u3", &first).await.unwrap(),
        "the old holder's late release must not free the new holder's lease"
    );
    assert!(
        !l.acquire_lease("exec#u3", &first, T0.plus_secs(TTL + 1), TTL)
            .await
            .unwrap()
    );
}

pub async fn twenty_concurrent_acquisitions_of_one_lease_yield_exactly_one_holder(stores: Stores) {
    const TAKERS: usize = 20;
    let barrier = Arc::new(Barrier::new(TAKERS));
    let mut tasks = Vec::new();
    for _ in 0..TAKERS {
        let (stores, barrier) = (stores.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            stores
                .leases
                .acquire_lease("exec#race", &RequestId::generate(), T0, TTL)
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for task in tasks {
        if task.await.unwrap() {
            won += 1;
        }
    }
    assert_eq!(won, 1);
}
