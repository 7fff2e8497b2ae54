//! Conformance: the keys-per-user limit is decided by the write that stores a key, so
//! concurrent mints never overshoot it, and revoked or expired keys give their place back.

use std::sync::Arc;

use super::{T0, api_key, created, user};
use crate::{KeyMint, Stores};

pub async fn thirty_concurrent_mints_under_a_limit_of_twenty_five_create_exactly_twenty_five(
    stores: Stores,
) {
    let lea = created(&stores, user("lea@example.com")).await;
    let other = created(&stores, user("lea-other@example.com")).await;
    let stores = Arc::new(stores);
    let mut tasks = Vec::new();
    for i in 0..30 {
        let (stores, key) = (stores.clone(), api_key(&lea.id, T0.plus_secs(i)));
        tasks.push(tokio::spawn(async move {
            stores.api_keys.create_api_key(&key, 25).await.unwrap()
        }));
    }
    let mut created_n = 0;
    for task in tasks {
        if task.await.unwrap() == KeyMint::Created {
            created_n += 1;
        }
    }
    let live = stores.api_keys.list_api_keys(&lea.id, T0).await.unwrap();
    assert_eq!((created_n, live.len()), (25, 25));
    // Another user's keys are counted apart.
    let theirs = api_key(&other.id, T0);
    assert_eq!(
        stores.api_keys.create_api_key(&theirs, 25).await.unwrap(),
        KeyMint::Created
    );
}

pub async fn a_revoked_or_expired_key_gives_its_place_back_and_revoking_all_frees_every_place(
    stores: Stores,
) {
    let max = created(&stores, user("max@example.com")).await;
    let keys = &stores.api_keys;
    // Two places: one key living a day from T0, one minted later.
    let first = api_key(&max.id, T0);
    let second = api_key(&max.id, T0.plus_secs(10));
    for k in [&first, &second] {
        assert_eq!(keys.create_api_key(k, 2).await.unwrap(), KeyMint::Created);
    }
    let third = api_key(&max.id, T0.plus_secs(20));
    assert_eq!(
        keys.create_api_key(&third, 2).await.unwrap(),
        KeyMint::LimitReached
    );
    assert!(keys.find_api_key(&third.hash, T0).await.unwrap().is_none());

    assert!(keys.revoke_api_key(&max.id, &second.id).await.unwrap());
    assert_eq!(
        keys.create_api_key(&third, 2).await.unwrap(),
        KeyMint::Created
    );

    assert_eq!(keys.revoke_all_api_keys(&max.id).await.unwrap(), 2);
    let fresh: Vec<_> = (30..32)
        .map(|i| api_key(&max.id, T0.plus_secs(i)))
        .collect();
    for k in &fresh {
        assert_eq!(keys.create_api_key(k, 2).await.unwrap(), KeyMint::Created);
    }

    // Once the older key has expired (still stored until swept), its place is free again.
    let expiry = fresh[0].expires_at;
    let after = api_key(&max.id, expiry);
    assert_eq!(
        keys.create_api_key(&after, 2).await.unwrap(),
        KeyMint::Created
    );
    let too_many = api_key(&max.id, expiry);
    assert_eq!(
        keys.create_api_key(&too_many, 2).await.unwrap(),
        KeyMint::LimitReached
    );
    assert_eq!(
        keys.list_api_keys(&max.id, expiry).await.unwrap(),
        vec![after, fresh[1].clone()]
    );
}
