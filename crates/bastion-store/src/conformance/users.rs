//! Conformance: accounts, the email-uniqueness guard and account deletion.

use std::sync::Arc;

use bastion_core::audit::AuditKind;
use bastion_core::{Email, Role, UserId};
use tokio::sync::Barrier;

use super::{T0, created, event, session, user};
use crate::{CreateUserError, Stores};

pub async fn two_concurrent_registrations_of_one_email_exactly_one_succeeds(stores: Stores) {
    // Several emails raced at once, so the race is real rather than two calls in a row.
    const EMAILS: usize = 8;
    let barrier = Arc::new(Barrier::new(EMAILS * 2));
    let mut tasks = Vec::new();
    for i in 0..EMAILS {
        for _ in 0..2 {
            let (stores, barrier) = (stores.clone(), barrier.clone());
            let candidate = user(&format!("racer{i}@example.com"));
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let result = stores.users.create_user(&candidate).await;
                (i, candidate, result)
            }));
        }
    }
    let mut winners: Vec<Option<UserId>> = vec![None; EMAILS];
    let mut taken = [0usize; EMAILS];
    for task in tasks {
        let (i, candidate, result) = task.await.unwrap();
        match result {
            Ok(()) => {
                assert_eq!(winners[i], None, "two registrations of racer{i} succeeded");
                winners[i] = Some(candidate.id);
            }
            Err(CreateUserError::EmailTaken) => taken[i] += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(taken, [1; EMAILS]);
    for (i, winner) in winners.into_iter().enumerate() {
        let email = Email::parse(&format!("racer{i}@example.com")).unwrap();
        let found = stores
            .users
            .find_user_by_email(&email)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(Some(found.id), winner);
    }
}

pub async fn a_created_user_reads_back_by_id_and_by_normalized_email(stores: Stores) {
    let mut alice = user("  Alice@Example.COM ");
    alice.roles = vec![Role::User, Role::Admin];
    let alice = created(&stores, alice).await;
    let mut bob = user("bob@example.com");
    bob.display_name = None;
    bob.roles = vec![];
    bob.disabled = true;
    let bob = created(&stores, bob).await;

    assert_eq!(alice.email.as_str(), "alice@example.com");
    assert_eq!(
        stores.users.get_user(&alice.id).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        stores.users.get_user(&bob.id).await.unwrap(),
        Some(bob.clone())
    );
    let by_email = Email::parse("ALICE@example.com").unwrap();
    assert_eq!(
        stores.users.find_user_by_email(&by_email).await.unwrap(),
        Some(alice)
    );
    assert_eq!(
        stores.users.find_user_by_email(&bob.email).await.unwrap(),
        Some(bob)
    );

    assert_eq!(
        stores.users.get_user(&UserId::generate()).await.unwrap(),
        None
    );
    let nobody = Email::parse("nobody@example.com").unwrap();
    assert_eq!(
        stores.users.find_user_by_email(&nobody).await.unwrap(),
        None
    );
}

pub async fn registering_a_taken_email_returns_email_taken_and_keeps_the_first_account(
    stores: Stores,
) {
    let first = created(&stores, user("carol@example.com")).await;
    let mut second = user("Carol@Example.com");
    second.password_hash = "legacy$salt$00ff".to_owned();

    let result = stores.users.create_user(&second).await;
    assert!(
        matches!(result, Err(CreateUserError::EmailTaken)),
        "{result:?}"
    );
    assert_eq!(stores.users.get_user(&second.id).await.unwrap(), None);
    assert_eq!(
        stores.users.find_user_by_email(&first.email).await.unwrap(),
        Some(first)
    );
}

pub async fn set_password_hash_replaces_only_the_expected_hash_and_reports_unknown_users(
    stores: Stores,
) {
    let dave = created(&stores, user("dave@example.com")).await;
    let new_hash = "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3aGFzaA";

    assert!(
        stores
            .users
            .set_password_hash(&dave.id, &dave.password_hash, new_hash)
            .await
            .unwrap()
    );
    // Checked against the hash it replaced: a stale one (a change raced it) writes nothing.
    assert!(
        !stores
            .users
            .set_password_hash(&dave.id, &dave.password_hash, "$argon2id$v=19$stale")
            .await
            .unwrap()
    );
    let expected = crate::UserRecord {
        password_hash: new_hash.to_owned(),
        ..dave.clone()
    };
    assert_eq!(
        stores.users.get_user(&dave.id).await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        stores.users.find_user_by_email(&dave.email).await.unwrap(),
        Some(expected)
    );

    let ghost = UserId::generate();
    assert!(
        !stores
            .users
            .set_password_hash(&ghost, "", new_hash)
            .await
            .unwrap()
    );
    assert_eq!(
        stores.users.get_user(&ghost).await.unwrap(),
        None,
        "no upsert"
    );
}

pub async fn deleting_a_user_removes_profile_guard_and_sessions_and_frees_the_email(
    stores: Stores,
) {
    let erin = created(&stores, user("erin@example.com")).await;
    let other = created(&stores, user("frank@example.com")).await;
    let erins = [
        session(&erin.id, T0, 3600),
        session(&erin.id, T0.plus_secs(1), 3600),
    ];
    for s in &erins {
        assert!(stores.sessions.create_session(s, 0).await.unwrap());
    }
    let franks = session(&other.id, T0, 3600);
    assert!(stores.sessions.create_session(&franks, 0).await.unwrap());
    let audited = event(Some(&erin.id), T0, AuditKind::Register);
    stores.audit.append(&audited).await.unwrap();

    stores.users.delete_user(&erin.id).await.unwrap();

    assert_eq!(stores.users.get_user(&erin.id).await.unwrap(), None);
    assert_eq!(
        stores.users.find_user_by_email(&erin.email).await.unwrap(),
        None
    );
    assert_eq!(
        stores.sessions.list_sessions(&erin.id, T0).await.unwrap(),
        vec![]
    );
    for s in &erins {
        assert_eq!(
            stores
                .sessions
                .get_session(&erin.id, &s.id, T0)
                .await
                .unwrap(),
            None
        );
    }
    // Deleted, not merely hidden: nothing is left to revoke.
    assert_eq!(
        stores
            .sessions
            .revoke_all_sessions(&erin.id, None)
            .await
            .unwrap(),
        0
    );
    // Audit entries outlive the account.
    let page = stores
        .audit
        .list_for_user(&erin.id, None, 10, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.items, vec![audited]);
    // Other accounts are untouched.
    assert_eq!(
        stores.users.get_user(&other.id).await.unwrap(),
        Some(other.clone())
    );
    assert_eq!(
        stores.sessions.list_sessions(&other.id, T0).await.unwrap(),
        vec![franks]
    );

    let again = created(&stores, user("erin@example.com")).await;
    assert_eq!(
        stores.users.find_user_by_email(&again.email).await.unwrap(),
        Some(again)
    );
    // Deleting an account that does not exist is not an error.
    stores.users.delete_user(&UserId::generate()).await.unwrap();
}
