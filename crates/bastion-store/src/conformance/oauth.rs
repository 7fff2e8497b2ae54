//! Conformance: single-use records, Google links, roles and the disabled flag, API keys, and
//! the audit listing by day.

use std::sync::Arc;

use bastion_core::audit::AuditKind;
use bastion_core::{ApiKeyId, Email, Role, Scope, Timestamp, UserId};

use super::{T0, created, event, fresh_hash, user};
use crate::{ApiKeyRecord, LinkError, Stores};

pub async fn a_one_time_record_is_taken_exactly_once_by_twenty_concurrent_callers(stores: Stores) {
    let hash = fresh_hash();
    stores
        .one_time
        .put_one_time("state", &hash, "{\"v\":1}", T0.plus_secs(600))
        .await
        .unwrap();
    let stores = Arc::new(stores);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (stores, hash) = (stores.clone(), hash.clone());
        tasks.push(tokio::spawn(async move {
            stores
                .one_time
                .take_one_time("state", &hash, T0)
                .await
                .unwrap()
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        if let Some(p) = t.await.unwrap() {
            got.push(p);
        }
    }
    assert_eq!(got, vec!["{\"v\":1}".to_owned()]);
    assert_eq!(
        stores
            .one_time
            .take_one_time("state", &hash, T0)
            .await
            .unwrap(),
        None
    );
}

pub async fn an_expired_one_time_record_is_absent_and_purposes_do_not_mix(stores: Stores) {
    let hash = fresh_hash();
    let once = &stores.one_time;
    once.put_one_time("state", &hash, "a", T0.plus_secs(10))
        .await
        .unwrap();
    assert_eq!(once.take_one_time("code", &hash, T0).await.unwrap(), None);
    assert_eq!(
        once.take_one_time("state", &hash, T0.plus_secs(10))
            .await
            .unwrap(),
        None
    );
    let other = fresh_hash();
    once.put_one_time("code", &other, "b", T0.plus_secs(10))
        .await
        .unwrap();
    assert_eq!(
        once.take_one_time("code", &other, T0.plus_secs(9))
            .await
            .unwrap(),
        Some("b".to_owned())
    );
}

pub async fn a_google_user_is_created_with_its_link_and_found_by_subject(stores: Stores) {
    let alice = user("g-alice@example.com");
    stores
        .accounts
        .create_google_user(&alice, "google-sub-1")
        .await
        .unwrap();
    assert_eq!(
        stores
            .accounts
            .find_user_by_google("google-sub-1")
            .await
            .unwrap(),
        Some(alice.clone())
    );
    let email = Email::parse("g-alice@example.com").unwrap();
    assert_eq!(
        stores.users.find_user_by_email(&email).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        stores
            .accounts
            .find_user_by_google("google-sub-2")
            .await
            .unwrap(),
        None
    );

    let same_sub = user("g-other@example.com");
    assert!(matches!(
        stores
            .accounts
            .create_google_user(&same_sub, "google-sub-1")
            .await,
        Err(LinkError::IdentityTaken)
    ));
    let same_email = user("g-alice@example.com");
    assert!(matches!(
        stores
            .accounts
            .create_google_user(&same_email, "google-sub-3")
            .await,
        Err(LinkError::EmailTaken)
    ));
    // Neither refused attempt left anything behind.
    assert_eq!(stores.users.get_user(&same_sub.id).await.unwrap(), None);
    assert_eq!(
        stores
            .accounts
            .find_user_by_google("google-sub-3")
            .await
            .unwrap(),
        None
    );
}

pub async fn linking_refuses_a_taken_subject_a_second_subject_and_a_missing_user(stores: Stores) {
    let bob = created(&stores, user("bob@example.com")).await;
    let carol = created(&stores, user("carol@example.com")).await;
    stores.accounts.link_google(&bob.id, "sub-b").await.unwrap();
    assert_eq!(
        stores.accounts.find_user_by_google("sub-b").await.unwrap(),
        Some(bob.clone())
    );
    assert!(matches!(
        stores.accounts.link_google(&carol.id, "sub-b").await,
        Err(LinkError::IdentityTaken)
    ));
    assert!(matches!(
        stores.accounts.link_google(&bob.id, "sub-b2").await,
        Err(LinkError::IdentityTaken)
    ));
    assert!(matches!(
        stores
            .accounts
            .link_google(&UserId::generate(), "sub-x")
            .await,
        Err(LinkError::UserGone)
    ));
    assert_eq!(
        stores.accounts.find_user_by_google("sub-x").await.unwrap(),
        None
    );
}

pub async fn deleting_a_linked_user_frees_the_google_subject(stores: Stores) {
    let dan = created(&stores, user("dan@example.com")).await;
    stores.accounts.link_google(&dan.id, "sub-d").await.unwrap();
    stores.users.delete_user(&dan.id).await.unwrap();
    assert_eq!(
        stores.accounts.find_user_by_google("sub-d").await.unwrap(),
        None
    );
    let again = created(&stores, user("dan2@example.com")).await;
    stores
        .accounts
        .link_google(&again.id, "sub-d")
        .await
        .unwrap();
}

pub async fn roles_and_the_disabled_flag_are_replaced_and_unknown_users_reported(stores: Stores) {
    let erin = created(&stores, user("erin@example.com")).await;
    let accounts = &stores.accounts;
    assert!(
        accounts
            .set_roles(&erin.id, &[Role::User, Role::Admin])
            .await
            .unwrap()
    );
    assert!(accounts.set_disabled(&erin.id, true).await.unwrap());
    let read = stores.users.get_user(&erin.id).await.unwrap().unwrap();
    assert_eq!(read.roles, vec![Role::User, Role::Admin]);
    assert!(read.disabled);
    assert!(accounts.set_roles(&erin.id, &[Role::User]).await.unwrap());
    assert!(accounts.set_disabled(&erin.id, false).await.unwrap());
    let read = stores.users.get_user(&erin.id).await.unwrap().unwrap();
    assert_eq!((read.roles, read.disabled), (vec![Role::User], false));
    let ghost = UserId::generate();
    assert!(!accounts.set_roles(&ghost, &[Role::Admin]).await.unwrap());
    assert!(!accounts.set_disabled(&ghost, true).await.unwrap());
    assert_eq!(stores.users.get_user(&ghost).await.unwrap(), None);
}

pub async fn unlinking_google_frees_the_subject_and_reports_whether_there_was_a_link(
    stores: Stores,
) {
    let hal = created(&stores, user("hal@example.com")).await;
    let accounts = &stores.accounts;
    assert!(!accounts.unlink_google(&hal.id).await.unwrap());
    accounts.link_google(&hal.id, "g-hal").await.unwrap();
    assert!(accounts.unlink_google(&hal.id).await.unwrap());
    assert_eq!(accounts.find_user_by_google("g-hal").await.unwrap(), None);
    assert!(!accounts.unlink_google(&hal.id).await.unwrap());
    // The subject and the account are both free to link again.
    let ivy = created(&stores, user("ivy@example.com")).await;
    accounts.link_google(&ivy.id, "g-hal").await.unwrap();
    accounts.link_google(&hal.id, "g-hal-2").await.unwrap();
    assert_eq!(
        accounts
            .find_user_by_google("g-hal")
            .await
            .unwrap()
            .map(|u| u.id),
        Some(ivy.id)
    );
}

/// The email lookup answers logins: it must see every change of the profile at once (on
/// DynamoDB it reads a copy kept on the email guard, one request for known and unknown emails).
pub async fn the_email_lookup_sees_password_role_and_disabled_changes_at_once(stores: Stores) {
    let gus = created(&stores, user("gus@example.com")).await;
    let accounts = &stores.accounts;
    assert!(
        stores
            .users
            .set_password_hash(&gus.id, &gus.password_hash, "new-hash")
            .await
            .unwrap()
    );
    assert!(accounts.set_roles(&gus.id, &[Role::Admin]).await.unwrap());
    assert!(accounts.set_disabled(&gus.id, true).await.unwrap());
    let by_email = stores
        .users
        .find_user_by_email(&gus.email)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            by_email.password_hash.as_str(),
            by_email.roles.clone(),
            by_email.disabled
        ),
        ("new-hash", vec![Role::Admin], true)
    );
    assert_eq!(
        Some(by_email),
        stores.users.get_user(&gus.id).await.unwrap()
    );
    assert!(accounts.set_disabled(&gus.id, false).await.unwrap());
    let by_email = stores
        .users
        .find_user_by_email(&gus.email)
        .await
        .unwrap()
        .unwrap();
    assert!(!by_email.disabled);
}

/// A key of `user` created at `at`, living a day.
pub fn api_key(user: &UserId, at: bastion_core::Timestamp) -> ApiKeyRecord {
    ApiKeyRecord {
        id: ApiKeyId::generate(),
        user_id: user.clone(),
        name: "ci deploy".to_owned(),
        hash: fresh_hash(),
        prefix: "bst_AbCdEf".to_owned(),
        scopes: vec![Scope::Chat, Scope::Read],
        created_at: at,
        expires_at: at.plus_secs(86_400),
        last_used_at: None,
    }
}

pub async fn api_keys_read_back_by_hash_list_newest_first_and_expire(stores: Stores) {
    let fay = created(&stores, user("fay@example.com")).await;
    let older = api_key(&fay.id, T0);
    let newer = api_key(&fay.id, T0.plus_secs(5));
    for k in [&older, &newer] {
        stores.api_keys.create_api_key(k, 25).await.unwrap();
    }
    let keys = &stores.api_keys;
    assert_eq!(
        keys.find_api_key(&older.hash, T0).await.unwrap(),
        Some(older.clone())
    );
    assert_eq!(keys.find_api_key(&fresh_hash(), T0).await.unwrap(), None);
    assert_eq!(
        keys.list_api_keys(&fay.id, T0.plus_secs(6)).await.unwrap(),
        vec![newer.clone(), older.clone()]
    );
    // The older key ends at T0 + 1 day, the newer 5 s later.
    let later = T0.plus_secs(86_400);
    assert_eq!(keys.find_api_key(&older.hash, later).await.unwrap(), None);
    // Read whatever its expiry, so a caller can name the owner of an expired key.
    assert_eq!(
        keys.find_api_key(&older.hash, Timestamp(i64::MIN))
            .await
            .unwrap(),
        Some(older)
    );
    assert_eq!(
        keys.list_api_keys(&fay.id, later).await.unwrap(),
        vec![newer]
    );
}

pub async fn an_api_key_is_revoked_only_by_its_owner_and_then_absent(stores: Stores) {
    let gus = created(&stores, user("gus@example.com")).await;
    let hal = created(&stores, user("hal@example.com")).await;
    let key = api_key(&gus.id, T0);
    let keys = &stores.api_keys;
    keys.create_api_key(&key, 25).await.unwrap();
    assert!(!keys.revoke_api_key(&hal.id, &key.id).await.unwrap());
    assert!(keys.find_api_key(&key.hash, T0).await.unwrap().is_some());
    assert!(keys.revoke_api_key(&gus.id, &key.id).await.unwrap());
    assert!(!keys.revoke_api_key(&gus.id, &key.id).await.unwrap());
    assert_eq!(keys.find_api_key(&key.hash, T0).await.unwrap(), None);
    assert_eq!(keys.list_api_keys(&gus.id, T0).await.unwrap(), vec![]);
}

pub async fn revoking_all_keys_or_deleting_the_user_removes_every_key(stores: Stores) {
    let ida = created(&stores, user("ida@example.com")).await;
    let jon = created(&stores, user("jon@example.com")).await;
    let keys = &stores.api_keys;
    let a: Vec<ApiKeyRecord> = (0..3).map(|i| api_key(&ida.id, T0.plus_secs(i))).collect();
    let b = api_key(&jon.id, T0);
    for k in a.iter().chain([&b]) {
        keys.create_api_key(k, 25).await.unwrap();
    }
    assert_eq!(keys.revoke_all_api_keys(&ida.id).await.unwrap(), 3);
    for k in &a {
        assert_eq!(keys.find_api_key(&k.hash, T0).await.unwrap(), None);
    }
    assert!(keys.find_api_key(&b.hash, T0).await.unwrap().is_some());
    stores.users.delete_user(&jon.id).await.unwrap();
    assert_eq!(keys.find_api_key(&b.hash, T0).await.unwrap(), None);
}

pub async fn touching_a_key_writes_last_used_at_once_per_interval_even_concurrently(
    stores: Stores,
) {
    let kim = created(&stores, user("kim@example.com")).await;
    let key = api_key(&kim.id, T0);
    stores.api_keys.create_api_key(&key, 25).await.unwrap();
    let stores = Arc::new(stores);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (stores, key) = (stores.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            stores
                .api_keys
                .touch_api_key(&key, T0.plus_secs(1), 60)
                .await
                .unwrap()
        }));
    }
    let mut wrote = 0;
    for t in tasks {
        if t.await.unwrap() {
            wrote += 1;
        }
    }
    assert_eq!(wrote, 1);
    let keys = &stores.api_keys;
    assert!(
        !keys
            .touch_api_key(&key, T0.plus_secs(60), 60)
            .await
            .unwrap()
    );
    assert!(
        keys.touch_api_key(&key, T0.plus_secs(61), 60)
            .await
            .unwrap()
    );
    let read = keys.find_api_key(&key.hash, T0).await.unwrap().unwrap();
    assert_eq!(read.last_used_at, Some(T0.plus_secs(61)));
    let listed = keys.list_api_keys(&kim.id, T0).await.unwrap();
    assert_eq!(listed[0].last_used_at, Some(T0.plus_secs(61)));
}

pub async fn audit_events_list_by_day_across_users_newest_first_in_pages(stores: Stores) {
    let (u1, u2) = (UserId::generate(), UserId::generate());
    // T0 is 08:00 UTC; the day runs from T0 - 8 h to T0 + 16 h.
    let day_start = T0.plus_secs(-8 * 3600);
    let yesterday = event(Some(&u1), day_start.plus_secs(-1), AuditKind::Register);
    let tomorrow = event(Some(&u1), day_start.plus_secs(86_400), AuditKind::Logout);
    let a = event(Some(&u1), day_start, AuditKind::Register);
    let b = event(None, T0, AuditKind::LoginFailed);
    let c = event(Some(&u2), T0.plus_secs(3), AuditKind::AdminAuthFailed);
    for e in [&yesterday, &tomorrow, &a, &b, &c] {
        stores.audit.append(e).await.unwrap();
    }
    let now = T0.plus_secs(60);
    let first = stores
        .audit_days
        .list_for_day(T0, None, 2, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.items, vec![c, b]);
    let second = stores
        .audit_days
        .list_for_day(T0, first.next_cursor.as_deref(), 2, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.items, vec![a]);
    assert_eq!(second.next_cursor, None);
    assert!(
        stores
            .audit_days
            .list_for_day(T0, Some("not-a-cursor"), 2, now)
            .await
            .unwrap()
            .is_none()
    );
}
