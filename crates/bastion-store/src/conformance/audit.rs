//! Conformance: audit append, newest-first listing, pagination, expiry and bad cursors.

use std::collections::HashSet;

use bastion_core::audit::{AUDIT_RETENTION_SECS, AuditEvent, AuditKind, Outcome};
use bastion_core::{AuditId, UserId};

use super::{T0, event};
use crate::Stores;

/// Newest first; events at the same second come in descending id order on every adapter.
fn newest_first(mut events: Vec<AuditEvent>) -> Vec<AuditEvent> {
    events.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.id.cmp(&a.id)));
    events
}

pub async fn audit_events_list_newest_first_with_every_field(stores: Stores) {
    let user = UserId::generate();
    let first = event(Some(&user), T0, AuditKind::Register);
    let mut second = event(Some(&user), T0.plus_secs(5), AuditKind::LoginFailed);
    second.outcome = Outcome::Failure;
    second.detail = Some("bad_password".to_owned());
    second.ip = "2001:db8::1".to_owned();
    second.user_agent = String::new();
    let third = event(Some(&user), T0.plus_secs(9), AuditKind::PasswordChanged);
    for e in [&second, &third, &first] {
        stores.audit.append(e).await.unwrap();
    }

    let page = stores
        .audit
        .list_for_user(&user, None, 10, T0.plus_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.items, vec![third, second, first]);
    assert_eq!(page.next_cursor, None);
}

pub async fn five_audit_events_in_pages_of_two_come_back_as_two_two_one_without_duplicates(
    stores: Stores,
) {
    let user = UserId::generate();
    // Two events share a second, so ties must page without loss or repetition too.
    let events: Vec<AuditEvent> = [0, 1, 1, 2, 3]
        .into_iter()
        .map(|dt| event(Some(&user), T0.plus_secs(dt), AuditKind::LoginSucceeded))
        .collect();
    for e in &events {
        stores.audit.append(e).await.unwrap();
    }

    let now = T0.plus_secs(60);
    let mut sizes = Vec::new();
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = stores
            .audit
            .list_for_user(&user, cursor.as_deref(), 2, now)
            .await
            .unwrap()
            .unwrap();
        sizes.push(page.items.len());
        listed.extend(page.items);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
        assert!(sizes.len() < 5, "pagination does not terminate");
    }
    assert_eq!(sizes, vec![2, 2, 1]);
    let distinct: HashSet<&AuditId> = listed.iter().map(|e| &e.id).collect();
    assert_eq!(distinct.len(), 5);
    assert_eq!(listed, newest_first(events));
}

pub async fn expired_audit_events_are_skipped_while_still_stored(stores: Stores) {
    let user = UserId::generate();
    let old = event(Some(&user), T0, AuditKind::LoginSucceeded);
    let recent = event(Some(&user), T0.plus_secs(10), AuditKind::Logout);
    stores.audit.append(&old).await.unwrap();
    stores.audit.append(&recent).await.unwrap();

    let expiry = T0.plus_secs(AUDIT_RETENTION_SECS);
    assert_eq!(old.expires_at(), expiry);
    let before = stores
        .audit
        .list_for_user(&user, None, 10, expiry.plus_secs(-1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.items, vec![recent.clone(), old]);

    let at_expiry = stores
        .audit
        .list_for_user(&user, None, 1, expiry)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(at_expiry.items, vec![recent]);
    assert_eq!(
        at_expiry.next_cursor, None,
        "an expired event is no next page"
    );
}

pub async fn a_malformed_audit_cursor_yields_none(stores: Stores) {
    let user = UserId::generate();
    stores
        .audit
        .append(&event(Some(&user), T0, AuditKind::Register))
        .await
        .unwrap();
    for bad in [
        "",
        "not a cursor",
        "%%%",
        "AAAA",
        "MDAwMDAwMDAwMDAwMDAwMDAwMDAjeHl6",
    ] {
        assert_eq!(
            stores
                .audit
                .list_for_user(&user, Some(bad), 10, T0)
                .await
                .unwrap(),
            None,
            "cursor {bad:?}"
        );
    }
}

pub async fn audit_events_are_listed_only_for_their_user(stores: Stores) {
    let alice = UserId::generate();
    let bob = UserId::generate();
    let alices = event(Some(&alice), T0, AuditKind::LoginSucceeded);
    let bobs = event(Some(&bob), T0, AuditKind::LoginSucceeded);
    let anonymous = event(None, T0, AuditKind::LoginFailed);
    for e in [&alices, &bobs, &anonymous] {
        stores.audit.append(e).await.unwrap();
    }

    let page = stores
        .audit
        .list_for_user(&alice, None, 10, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.items, vec![alices]);
    let page = stores
        .audit
        .list_for_user(&bob, None, 10, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.items, vec![bobs]);
    let nobody = stores
        .audit
        .list_for_user(&UserId::generate(), None, 10, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(nobody.items, vec![]);
    assert_eq!(nobody.next_cursor, None);
}
