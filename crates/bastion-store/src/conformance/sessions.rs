//! Conformance: sessions, refresh lookups, rotation races and revocation.

use std::sync::Arc;

use bastion_core::{Clock, ManualClock, SessionId, UserId};
use tokio::sync::Barrier;

use super::{T0, created, fresh_hash, session, user};
use crate::{RefreshLookup, RotateOutcome, SessionRecord, Stores, UserRecord};

fn lookup_of(s: &SessionRecord) -> RefreshLookup {
    RefreshLookup {
        user_id: s.user_id.clone(),
        session_id: s.id.clone(),
    }
}

pub async fn a_created_session_reads_back_and_its_refresh_hash_points_to_it(stores: Stores) {
    let owner = created(&stores, user("gina@example.com")).await;
    let other = created(&stores, user("hank@example.com")).await;
    let s = session(&owner.id, T0, 3600);
    assert!(stores.sessions.create_session(&s, 0).await.unwrap());

    assert_eq!(
        stores
            .sessions
            .get_session(&owner.id, &s.id, T0)
            .await
            .unwrap(),
        Some(s.clone())
    );
    assert_eq!(
        stores
            .sessions
            .find_refresh(&s.refresh_hash, T0)
            .await
            .unwrap(),
        Some(lookup_of(&s))
    );
    // A session is addressed through its owner only.
    assert_eq!(
        stores
            .sessions
            .get_session(&other.id, &s.id, T0)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        stores
            .sessions
            .get_session(&owner.id, &SessionId::generate(), T0)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        stores
            .sessions
            .find_refresh(&fresh_hash(), T0)
            .await
            .unwrap(),
        None
    );
}

pub async fn expired_sessions_and_refresh_lookups_read_as_absent_while_still_stored(
    stores: Stores,
) {
    let owner = created(&stores, user("ivy@example.com")).await;
    let clock = ManualClock::new(T0);
    let s = session(&owner.id, clock.now(), 100);
    assert!(stores.sessions.create_session(&s, 0).await.unwrap());

    clock.set(s.expires_at.plus_secs(-1));
    assert_eq!(
        stores
            .sessions
            .get_session(&owner.id, &s.id, clock.now())
            .await
            .unwrap(),
        Some(s.clone())
    );
    assert_eq!(
        stores
            .sessions
            .find_refresh(&s.refresh_hash, clock.now())
            .await
            .unwrap(),
        Some(lookup_of(&s))
    );

    // At `expires_at` the session is over, whether or not the row has been cleaned up.
    clock.set(s.expires_at);
    let now = clock.now();
    assert_eq!(
        stores
            .sessions
            .get_session(&owner.id, &s.id, now)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        stores
            .sessions
            .find_refresh(&s.refresh_hash, now)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        stores.sessions.list_sessions(&owner.id, now).await.unwrap(),
        vec![]
    );
    let outcome = stores
        .sessions
        .rotate_refresh(&owner.id, &s.id, &s.refresh_hash, &fresh_hash(), now)
        .await
        .unwrap();
    assert_eq!(outcome, RotateOutcome::SessionGone);

    // The row is still there (and unchanged): absence came from `now` alone.
    let earlier = s.expires_at.plus_secs(-1);
    assert_eq!(
        stores
            .sessions
            .get_session(&owner.id, &s.id, earlier)
            .await
            .unwrap(),
        Some(s.clone())
    );
    assert!(
        stores
            .sessions
            .revoke_session(&owner.id, &s.id)
            .await
            .unwrap()
    );
}

pub async fn rotation_replaces_the_hash_and_the_old_hash_then_counts_as_reused(stores: Stores) {
    let owner = created(&stores, user("jack@example.com")).await;
    let s = session(&owner.id, T0, 3600);
    assert!(stores.sessions.create_session(&s, 0).await.unwrap());
    let (old, new) = (s.refresh_hash.clone(), fresh_hash());
    let used_at = T0.plus_secs(60);

    let outcome = stores
        .sessions
        .rotate_refresh(&owner.id, &s.id, &old, &new, used_at)
        .await
        .unwrap();
    assert_eq!(outcome, RotateOutcome::Rotated);
    let rotated = SessionRecord {
        refresh_hash: new.clone(),
        last_used_at: used_at,
        ..s.clone()
    };
    assert_eq!(
        stores
            .sessions
            .get_session(&owner.id, &s.id, used_at)
            .await
            .unwrap(),
        Some(rotated)
    );
    // Both hashes still lead to the session: the old one so that its reuse is recognised.
    assert_eq!(
        stores.sessions.find_refresh(&new, used_at).await.unwrap(),
        Some(lookup_of(&s))
    );
    assert_eq!(
        stores.sessions.find_refresh(&old, used_at).await.unwrap(),
        Some(lookup_of(&s))
    );
    // The new lookup ends with the session.
    assert_eq!(
        stores
            .sessions
            .find_refresh(&new, s.expires_at.plus_secs(-1))
            .await
            .unwrap(),
        Some(lookup_of(&s))
    );
    assert_eq!(
        stores
            .sessions
            .find_refresh(&new, s.expires_at)
            .await
            .unwrap(),
        None
    );

    let replay = stores
        .sessions
        .rotate_refresh(&owner.id, &s.id, &old, &fresh_hash(), used_at.plus_secs(1))
        .await
        .unwrap();
    assert_eq!(replay, RotateOutcome::Reused);
    let after_replay = stores
        .sessions
        .get_session(&owner.id, &s.id, used_at)
        .await
        .unwrap();
    assert_eq!(
        after_replay.map(|r| r.refresh_hash),
        Some(new.clone()),
        "reuse changes nothing"
    );

    let next = stores
        .sessions
        .rotate_refresh(&owner.id, &s.id, &new, &fresh_hash(), used_at.plus_secs(2))
        .await
        .unwrap();
    assert_eq!(next, RotateOutcome::Rotated);
}

pub async fn two_concurrent_rotations_of_one_hash_yield_one_rotated_and_one_reused(stores: Stores) {
    const SESSIONS: usize = 8;
    let owner = created(&stores, user("kate@example.com")).await;
    let mut sessions = Vec::new();
    for _ in 0..SESSIONS {
        let s = session(&owner.id, T0, 3600);
        assert!(stores.sessions.create_session(&s, 0).await.unwrap());
        sessions.push(s);
    }
    let barrier = Arc::new(Barrier::new(SESSIONS * 2));
    let mut tasks = Vec::new();
    for (i, s) in sessions.iter().enumerate() {
        for _ in 0..2 {
            let (stores, barrier) = (stores.clone(), barrier.clone());
            let (user_id, id, old, new) = (
                owner.id.clone(),
                s.id.clone(),
                s.refresh_hash.clone(),
                fresh_hash(),
            );
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let outcome = stores
                    .sessions
                    .rotate_refresh(&user_id, &id, &old, &new, T0.plus_secs(5))
                    .await
                    .unwrap();
                (i, new, outcome)
            }));
        }
    }
    let mut rotated_to = vec![None; SESSIONS];
    let mut reused = [0usize; SESSIONS];
    for task in tasks {
        let (i, new, outcome) = task.await.unwrap();
        match outcome {
            RotateOutcome::Rotated => {
                assert!(rotated_to[i].is_none(), "session {i} rotated twice");
                rotated_to[i] = Some(new);
            }
            RotateOutcome::Reused => reused[i] += 1,
            RotateOutcome::SessionGone => panic!("session {i} reported gone"),
        }
    }
    assert_eq!(reused, [1; SESSIONS]);
    for (s, winner) in sessions.iter().zip(rotated_to) {
        let stored = stores
            .sessions
            .get_session(&owner.id, &s.id, T0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(Some(stored.refresh_hash), winner);
    }
}

pub async fn rotating_a_revoked_or_unknown_session_reports_session_gone(stores: Stores) {
    let owner = created(&stores, user("liam@example.com")).await;
    let s = session(&owner.id, T0, 3600);
    assert!(stores.sessions.create_session(&s, 0).await.unwrap());
    assert!(
        stores
            .sessions
            .revoke_session(&owner.id, &s.id)
            .await
            .unwrap()
    );

    let revoked = stores
        .sessions
        .rotate_refresh(&owner.id, &s.id, &s.refresh_hash, &fresh_hash(), T0)
        .await
        .unwrap();
    assert_eq!(revoked, RotateOutcome::SessionGone);
    let unknown = stores
        .sessions
        .rotate_refresh(
            &owner.id,
            &SessionId::generate(),
            &fresh_hash(),
            &fresh_hash(),
            T0,
        )
        .await
        .unwrap();
    assert_eq!(unknown, RotateOutcome::SessionGone);
    assert_eq!(
        stores
            .sessions
            .get_session(&owner.id, &s.id, T0)
            .await
            .unwrap(),
        None
    );
}

pub async fn list_sessions_returns_live_sessions_newest_first(stores: Stores) {
    let owner = created(&stores, user("mia@example.com")).await;
    let other = created(&stores, user("noah@example.com")).await;
    let oldest = session(&owner.id, T0, 3600);
    let middle = session(&owner.id, T0.plus_secs(10), 3600);
    let newest = session(&owner.id, T0.plus_secs(20), 3600);
    let expired = session(&owner.id, T0.plus_secs(30), 60);
    let foreign = session(&other.id, T0.plus_secs(40), 3600);
    // Stored out of order, so the order must come from the store.
    for s in [&middle, &expired, &oldest, &foreign, &newest] {
        assert!(stores.sessions.create_session(s, 0).await.unwrap());
    }

    let now = T0.plus_secs(100);
    assert_eq!(
        stores.sessions.list_sessions(&owner.id, now).await.unwrap(),
        vec![newest, middle, oldest]
    );
    assert_eq!(
        stores.sessions.list_sessions(&other.id, now).await.unwrap(),
        vec![foreign]
    );
    assert_eq!(
        stores
            .sessions
            .list_sessions(&UserId::generate(), now)
            .await
            .unwrap(),
        vec![]
    );
}

pub async fn revoke_session_reports_whether_the_session_existed(stores: Stores) {
    let owner = created(&stores, user("olga@example.com")).await;
    let other = created(&stores, user("paul@example.com")).await;
    let s = session(&owner.id, T0, 3600);
    let kept = session(&owner.id, T0, 3600);
    assert!(stores.sessions.create_session(&s, 0).await.unwrap());
    assert!(stores.sessions.create_session(&kept, 0).await.unwrap());

    // Another user cannot revoke it by naming its id.
    assert!(
        !stores
            .sessions
            .revoke_session(&other.id, &s.id)
            .await
            .unwrap()
    );
    assert!(
        stores
            .sessions
            .revoke_session(&owner.id, &s.id)
            .await
            .unwrap()
    );
    assert!(
        !stores
            .sessions
            .revoke_session(&owner.id, &s.id)
            .await
            .unwrap()
    );
    assert_eq!(
        stores
            .sessions
            .get_session(&owner.id, &s.id, T0)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        stores.sessions.list_sessions(&owner.id, T0).await.unwrap(),
        vec![kept]
    );
}

pub async fn revoke_all_sessions_keeps_the_named_session_and_counts_the_rest(stores: Stores) {
    let owner = created(&stores, user("quinn@example.com")).await;
    let other = created(&stores, user("rosa@example.com")).await;
    let current = session(&owner.id, T0, 3600);
    for s in [
        current.clone(),
        session(&owner.id, T0.plus_secs(1), 3600),
        session(&owner.id, T0.plus_secs(2), 3600),
    ] {
        assert!(stores.sessions.create_session(&s, 0).await.unwrap());
    }
    let foreign = session(&other.id, T0, 3600);
    assert!(stores.sessions.create_session(&foreign, 0).await.unwrap());

    let revoked = stores
        .sessions
        .revoke_all_sessions(&owner.id, Some(&current.id))
        .await
        .unwrap();
    assert_eq!(revoked, 2);
    assert_eq!(
        stores.sessions.list_sessions(&owner.id, T0).await.unwrap(),
        vec![current]
    );
    assert_eq!(
        stores
            .sessions
            .revoke_all_sessions(&owner.id, None)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        stores.sessions.list_sessions(&owner.id, T0).await.unwrap(),
        vec![]
    );
    assert_eq!(
        stores
            .sessions
            .revoke_all_sessions(&owner.id, None)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        stores.sessions.list_sessions(&other.id, T0).await.unwrap(),
        vec![foreign]
    );
}

/// Device tokens are stamped with the epoch: the login lookup must see it advance at once.
pub async fn revoking_all_sessions_advances_the_session_epoch_the_login_lookup_reads(
    stores: Stores,
) {
    let owner = created(&stores, user("epoch@example.com")).await;
    let other = created(&stores, user("epoch-other@example.com")).await;
    assert_eq!(owner.session_epoch, 0);
    let epoch = |u: &UserRecord| {
        let (stores, id, email) = (stores.clone(), u.id.clone(), u.email.clone());
        async move {
            let by_id = stores.users.get_user(&id).await.unwrap().unwrap();
            let by_email = stores.users.find_user_by_email(&email).await.unwrap();
            assert_eq!(Some(&by_id), by_email.as_ref());
            by_id.session_epoch
        }
    };
    assert!(
        stores
            .sessions
            .create_session(&session(&owner.id, T0, 3600), 0)
            .await
            .unwrap()
    );
    let kept = session(&owner.id, T0.plus_secs(1), 3600);
    assert!(stores.sessions.create_session(&kept, 0).await.unwrap());
    let revoked = stores
        .sessions
        .revoke_all_sessions(&owner.id, Some(&kept.id))
        .await
        .unwrap();
    assert_eq!((revoked, epoch(&owner).await), (1, 1));
    // Nothing left to revoke still advances it: the device tokens are what it revokes.
    let revoked = stores
        .sessions
        .revoke_all_sessions(&owner.id, None)
        .await
        .unwrap();
    assert_eq!((revoked, epoch(&owner).await), (1, 2));
    assert_eq!(epoch(&other).await, 0);
    // Other profile changes keep it.
    assert!(
        stores
            .users
            .set_password_hash(&owner.id, &owner.password_hash, "$argon2id$v=19$other")
            .await
            .unwrap()
    );
    assert!(stores.accounts.set_disabled(&owner.id, true).await.unwrap());
    assert_eq!(epoch(&owner).await, 2);
}

pub async fn a_session_is_created_only_under_the_epoch_its_credentials_were_checked_at(
    stores: Stores,
) {
    let owner = created(&stores, user("epoch-race@example.com")).await;
    let first = session(&owner.id, T0, 3600);
    assert!(stores.sessions.create_session(&first, 0).await.unwrap());
    stores
        .sessions
        .revoke_all_sessions(&owner.id, None)
        .await
        .unwrap();
    // Checked before that revocation: nothing is written, not even the refresh lookup.
    let late = session(&owner.id, T0.plus_secs(1), 3600);
    assert!(!stores.sessions.create_session(&late, 0).await.unwrap());
    assert_eq!(
        stores
            .sessions
            .get_session(&owner.id, &late.id, T0)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        stores
            .sessions
            .find_refresh(&late.refresh_hash, T0)
            .await
            .unwrap(),
        None
    );
    let current = session(&owner.id, T0.plus_secs(2), 3600);
    assert!(stores.sessions.create_session(&current, 1).await.unwrap());
    // No account, no session.
    let ghost = session(&UserId::generate(), T0, 3600);
    assert!(!stores.sessions.create_session(&ghost, 0).await.unwrap());
}
