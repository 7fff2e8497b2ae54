//! Conformance: claiming inbound deliveries at most once, leases, release, and retention.

use std::sync::Arc;

use bastion_core::RequestId;
use tokio::sync::Barrier;

use super::T0;
use crate::{ClaimOutcome, DELIVERY_RETENTION_SECS, Stores};

const LEASE: i64 = 120;

pub async fn a_claimed_delivery_is_in_progress_then_done_for_everyone_else(stores: Stores) {
    let d = &stores.deliveries;
    let (first, second) = (RequestId::generate(), RequestId::generate());
    assert_eq!(
        d.claim_delivery("stripe#evt_1", &first, T0, LEASE)
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );
    assert_eq!(
        d.claim_delivery("stripe#evt_1", &second, T0.plus_secs(1), LEASE)
            .await
            .unwrap(),
        ClaimOutcome::InProgress
    );
    assert!(
        !d.complete_delivery("stripe#evt_1", &second, T0.plus_secs(2))
            .await
            .unwrap()
    );
    assert!(
        d.complete_delivery("stripe#evt_1", &first, T0.plus_secs(2))
            .await
            .unwrap()
    );
    assert_eq!(
        d.claim_delivery("stripe#evt_1", &second, T0.plus_secs(3), LEASE)
            .await
            .unwrap(),
        ClaimOutcome::Done
    );
    // A finished delivery is never released back.
    assert!(!d.release_delivery("stripe#evt_1", &first).await.unwrap());
    assert_eq!(
        d.claim_delivery("stripe#evt_1", &second, T0.plus_secs(4), LEASE)
            .await
            .unwrap(),
        ClaimOutcome::Done
    );
    assert_eq!(
        d.claim_delivery("stripe#evt_2", &second, T0.plus_secs(4), LEASE)
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );
}

pub async fn a_released_claim_can_be_claimed_again_but_only_by_its_holder_releasing(
    stores: Stores,
) {
    let d = &stores.deliveries;
    let (first, retry) = (RequestId::generate(), RequestId::generate());
    d.claim_delivery("telegram#42", &first, T0, LEASE)
        .await
        .unwrap();
    assert!(!d.release_delivery("telegram#42", &retry).await.unwrap());
    assert_eq!(
        d.claim_delivery("telegram#42", &retry, T0.plus_secs(1), LEASE)
            .await
            .unwrap(),
        ClaimOutcome::InProgress
    );
    assert!(d.release_delivery("telegram#42", &first).await.unwrap());
    assert_eq!(
        d.claim_delivery("telegram#42", &retry, T0.plus_secs(2), LEASE)
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );
    // The first holder lost its claim: it can neither finish nor release the retry's.
    assert!(
        !d.complete_delivery("telegram#42", &first, T0.plus_secs(3))
            .await
            .unwrap()
    );
    assert!(!d.release_delivery("telegram#42", &first).await.unwrap());
    assert!(
        d.complete_delivery("telegram#42", &retry, T0.plus_secs(3))
            .await
            .unwrap()
    );
}

pub async fn an_expired_lease_lets_another_request_take_over(stores: Stores) {
    let d = &stores.deliveries;
    let (stuck, rescuer) = (RequestId::generate(), RequestId::generate());
    d.claim_delivery("facebook#m_1", &stuck, T0, LEASE)
        .await
        .unwrap();
    assert_eq!(
        d.claim_delivery("facebook#m_1", &rescuer, T0.plus_secs(LEASE - 1), LEASE)
            .await
            .unwrap(),
        ClaimOutcome::InProgress
    );
    assert_eq!(
        d.claim_delivery("facebook#m_1", &rescuer, T0.plus_secs(LEASE), LEASE)
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );
    assert!(
        !d.complete_delivery("facebook#m_1", &stuck, T0.plus_secs(LEASE + 1))
            .await
            .unwrap()
    );
}

pub async fn done_records_expire_after_the_retention_while_still_stored(stores: Stores) {
    let d = &stores.deliveries;
    let (first, later) = (RequestId::generate(), RequestId::generate());
    d.claim_delivery("stripe#evt_old", &first, T0, LEASE)
        .await
        .unwrap();
    d.complete_delivery("stripe#evt_old", &first, T0)
        .await
        .unwrap();
    const { assert!(DELIVERY_RETENTION_SECS >= 72 * 3600) };
    assert_eq!(
        d.claim_delivery(
            "stripe#evt_old",
            &later,
            T0.plus_secs(DELIVERY_RETENTION_SECS - 1),
            LEASE
        )
        .await
        .unwrap(),
        ClaimOutcome::Done
    );
    assert_eq!(
        d.claim_delivery(
            "stripe#evt_old",
            &later,
            T0.plus_secs(DELIVERY_RETENTION_SECS),
            LEASE
        )
        .await
        .unwrap(),
        ClaimOutcome::Claimed
    );
}

pub async fn twenty_concurrent_claims_of_one_delivery_yield_exactly_one_claimed(stores: Stores) {
    const CLAIMS: usize = 20;
    let barrier = Arc::new(Barrier::new(CLAIMS));
    let mut tasks = Vec::new();
    for _ in 0..CLAIMS {
        let (stores, barrier) = (stores.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            stores
                .deliveries
                .claim_delivery("stripe#evt_race", &RequestId::generate(), T0, LEASE)
                .await
                .unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let claimed = outcomes
        .iter()
        .filter(|o| **o == ClaimOutcome::Claimed)
        .count();
    let in_progress = outcomes
        .iter()
        .filter(|o| **o == ClaimOutcome::InProgress)
        .count();
    assert_eq!((claimed, in_progress), (1, CLAIMS - 1));
}
