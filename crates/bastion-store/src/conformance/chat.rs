//! Conformance: conversations and messages under their owner, atomic turns, and daily credits
//! that concurrency can never overdraw.

use std::sync::Arc;

use bastion_core::{Owner, Timestamp, UserId};
use tokio::sync::Barrier;

use super::{T0, created, user};
use crate::{
    AppendError, ConversationId, ConversationRecord, Debit, MessageRecord, MessageRole, Stores,
    TurnWrite,
};

/// A fresh conversation of `owner` created at `at` with no messages yet.
pub fn conversation(owner: &Owner, at: Timestamp) -> ConversationRecord {
    ConversationRecord {
        owner: owner.clone(),
        id: ConversationId::generate(at),
        title: "Hello there".to_owned(),
        created_at: at,
        updated_at: at,
        message_count: 0,
    }
}

/// A user message and the assistant's answer at positions `seq` and `seq + 1`.
pub fn exchange(seq: u64, at: Timestamp, text: &str) -> Vec<MessageRecord> {
    let message = |seq: u64, role: MessageRole, content: String, tokens: u64| MessageRecord {
        seq,
        id: UserId::generate().as_str().to_owned(),
        role,
        content,
        created_at: at,
        prompt_tokens: tokens,
        completion_tokens: tokens * 2,
        model: if role == MessageRole::Assistant {
            "test-model".to_owned()
        } else {
            String::new()
        },
        // Assistant answers carry steps, so both adapters (and the sealing) keep them.
        steps: if role == MessageRole::Assistant {
            serde_json::json!([{"type": "tool_call", "id": "c1", "name": "read_file", "arguments": {"path": text}}])
                .to_string()
        } else {
            String::new()
        },
        stop_reason: if role == MessageRole::Assistant {
            "client_disconnected".to_owned()
        } else {
            String::new()
        },
    };
    vec![
        message(seq, MessageRole::User, text.to_owned(), 0),
        message(seq + 1, MessageRole::Assistant, format!("re: {text}"), 7),
    ]
}

/// Writes one exchange into `conv` (creating it when it has no messages) and returns its new
/// state.
pub async fn add_exchange(
    stores: &Stores,
    conv: &ConversationRecord,
    at: Timestamp,
    text: &str,
) -> ConversationRecord {
    let mut next = conv.clone();
    next.message_count += 2;
    next.updated_at = at;
    let turn = TurnWrite {
        conversation: next.clone(),
        previous_count: (conv.message_count > 0).then_some(conv.message_count),
        messages: exchange(conv.message_count, at, text),
    };
    stores.conversations.append_turn(&turn).await.unwrap();
    next
}

fn channel() -> Owner {
    Owner::Telegram(424_242)
}

pub async fn fifty_concurrent_debits_with_ten_credits_left_take_exactly_ten(stores: Stores) {
    let owner = Owner::User(UserId::generate());
    let barrier = Arc::new(Barrier::new(50));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (stores, barrier, owner) = (stores.clone(), barrier.clone(), owner.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            stores
                .credits
                .debit(&owner, 20_833, 10, T0.plus_secs(86_400))
                .await
                .unwrap()
        }));
    }
    let mut remaining = Vec::new();
    let mut exhausted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Debit::Taken { remaining: r } => remaining.push(r),
            Debit::Exhausted => exhausted += 1,
        }
    }
    remaining.sort_unstable();
    assert_eq!(remaining, (0..10).collect::<Vec<u64>>());
    assert_eq!(exhausted, 40);
    assert_eq!(
        stores
            .credits
            .debit(&owner, 20_833, 10, T0.plus_secs(86_400))
            .await
            .unwrap(),
        Debit::Exhausted
    );
}

pub async fn a_refund_gives_back_one_credit_and_never_goes_below_zero(stores: Stores) {
    let owner = channel();
    let expires = T0.plus_secs(86_400);
    // Refunding before anything was taken changes nothing.
    stores.credits.refund(&owner, 7).await.unwrap();
    assert_eq!(
        stores.credits.debit(&owner, 7, 2, expires).await.unwrap(),
        Debit::Taken { remaining: 1 }
    );
    assert_eq!(
        stores.credits.debit(&owner, 7, 2, expires).await.unwrap(),
        Debit::Taken { remaining: 0 }
    );
    assert_eq!(
        stores.credits.debit(&owner, 7, 2, expires).await.unwrap(),
        Debit::Exhausted
    );
    stores.credits.refund(&owner, 7).await.unwrap();
    assert_eq!(
        stores.credits.debit(&owner, 7, 2, expires).await.unwrap(),
        Debit::Taken { remaining: 0 }
    );
    for _ in 0..4 {
        stores.credits.refund(&owner, 7).await.unwrap();
    }
    // Two were in use; four refunds bring the count to zero, not below.
    assert_eq!(
        stores.credits.debit(&owner, 7, 2, expires).await.unwrap(),
        Debit::Taken { remaining: 1 }
    );
}

pub async fn credits_are_counted_per_owner_and_per_day_against_the_given_allowance(stores: Stores) {
    let (a, b) = (Owner::User(UserId::generate()), channel());
    let expires = T0.plus_secs(86_400);
    assert_eq!(
        stores.credits.debit(&a, 1, 1, expires).await.unwrap(),
        Debit::Taken { remaining: 0 }
    );
    assert_eq!(
        stores.credits.debit(&a, 1, 1, expires).await.unwrap(),
        Debit::Exhausted
    );
    assert_eq!(
        stores.credits.debit(&b, 1, 1, expires).await.unwrap(),
        Debit::Taken { remaining: 0 }
    );
    assert_eq!(
        stores.credits.debit(&a, 2, 1, expires).await.unwrap(),
        Debit::Taken { remaining: 0 }
    );
    // A larger allowance (an upgraded plan) applies to the same day's count at once.
    assert_eq!(
        stores.credits.debit(&a, 1, 5, expires).await.unwrap(),
        Debit::Taken { remaining: 3 }
    );
    assert_eq!(
        stores.credits.debit(&a, 1, 0, expires).await.unwrap(),
        Debit::Exhausted
    );
}

pub async fn a_turn_creates_a_conversation_whose_messages_read_back_newest_first(stores: Stores) {
    let owner = Owner::User(UserId::generate());
    let conv = conversation(&owner, T0);
    let after_one = add_exchange(&stores, &conv, T0, "first").await;
    let after_two = add_exchange(&stores, &after_one, T0.plus_secs(9), "second").await;

    let stored = stores
        .conversations
        .get_conversation(&owner, &conv.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, after_two);
    assert_eq!(stored.message_count, 4);
    assert_eq!(stored.updated_at, T0.plus_secs(9));

    let page = stores
        .conversations
        .list_messages(&owner, &conv.id, None, 10)
        .await
        .unwrap()
        .unwrap();
    let mut expected = exchange(0, T0, "first");
    expected.extend(exchange(2, T0.plus_secs(9), "second"));
    let seqs: Vec<u64> = page.items.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, vec![3, 2, 1, 0]);
    assert_eq!(page.items[0].content, "re: second");
    assert_eq!(page.items[0].role, MessageRole::Assistant);
    assert_eq!(page.items[0].prompt_tokens, 7);
    assert_eq!(page.items[0].completion_tokens, 14);
    assert_eq!(page.items[0].model, "test-model");
    assert_eq!(page.items[3].content, "first");
    assert_eq!(page.items[3].role, MessageRole::User);
    assert_eq!(page.next_cursor, None);
    assert_eq!(expected.len(), page.items.len());
}

pub async fn a_turn_with_a_stale_count_or_a_duplicate_create_is_a_conflict_and_writes_nothing(
    stores: Stores,
) {
    let owner = Owner::User(UserId::generate());
    let conv = conversation(&owner, T0);
    let current = add_exchange(&stores, &conv, T0, "one").await;

    // Creating the same conversation again loses.
    let recreate = TurnWrite {
        conversation: current.clone(),
        previous_count: None,
        messages: exchange(0, T0, "again"),
    };
    assert!(matches!(
        stores.conversations.append_turn(&recreate).await,
        Err(AppendError::Conflict)
    ));
    // A turn computed from the state before `current` loses too.
    let mut stale_next = current.clone();
    stale_next.message_count = 2;
    let stale = TurnWrite {
        conversation: stale_next,
        previous_count: Some(0),
        messages: exchange(0, T0, "stale"),
    };
    assert!(matches!(
        stores.conversations.append_turn(&stale).await,
        Err(AppendError::Conflict)
    ));
    // A turn on a conversation that does not exist loses as well.
    let ghost = conversation(&owner, T0);
    let orphan = TurnWrite {
        conversation: ghost.clone(),
        previous_count: Some(0),
        messages: exchange(0, T0, "ghost"),
    };
    assert!(matches!(
        stores.conversations.append_turn(&orphan).await,
        Err(AppendError::Conflict)
    ));

    let page = stores
        .conversations
        .list_messages(&owner, &conv.id, None, 10)
        .await
        .unwrap()
        .unwrap();
    let contents: Vec<&str> = page.items.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(contents, vec!["re: one", "one"]);
    assert_eq!(
        stores
            .conversations
            .get_conversation(&owner, &ghost.id)
            .await
            .unwrap(),
        None
    );
}

pub async fn five_conversations_list_newest_first_in_pages_of_two_without_duplicates(
    stores: Stores,
) {
    let owner = Owner::User(UserId::generate());
    let mut ids = Vec::new();
    for i in 0..5 {
        let conv = conversation(&owner, T0.plus_secs(i * 10));
        add_exchange(&stores, &conv, conv.created_at, "hi").await;
        ids.push(conv.id);
    }
    // Another owner's conversation never shows up.
    let other = conversation(&channel(), T0.plus_secs(100));
    add_exchange(&stores, &other, T0.plus_secs(100), "hi").await;

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = stores
            .conversations
            .list_conversations(&owner, cursor.as_deref(), 2)
            .await
            .unwrap()
            .unwrap();
        sizes.push(page.items.len());
        seen.extend(page.items.into_iter().map(|c| c.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    ids.reverse();
    assert_eq!(seen, ids);
    assert_eq!(sizes, vec![2, 2, 1]);
    assert_eq!(
        stores
            .conversations
            .list_conversations(&owner, Some("not-a-cursor"), 2)
            .await
            .unwrap(),
        None
    );
}

pub async fn messages_page_newest_first_and_a_malformed_cursor_yields_none(stores: Stores) {
    let owner = channel();
    let mut conv = conversation(&owner, T0);
    for i in 0..3 {
        conv = add_exchange(&stores, &conv, T0.plus_secs(i), &format!("m{i}")).await;
    }
    let mut seqs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = stores
            .conversations
            .list_messages(&owner, &conv.id, cursor.as_deref(), 4)
            .await
            .unwrap()
            .unwrap();
        seqs.push(page.items.iter().map(|m| m.seq).collect::<Vec<_>>());
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seqs, vec![vec![5, 4, 3, 2], vec![1, 0]]);
    assert_eq!(
        stores
            .conversations
            .list_messages(&owner, &conv.id, Some("%%%"), 4)
            .await
            .unwrap(),
        None
    );
}

pub async fn another_owners_conversation_reads_as_absent_and_cannot_be_deleted(stores: Stores) {
    let alice = Owner::User(UserId::generate());
    let bob = Owner::User(UserId::generate());
    let conv = conversation(&alice, T0);
    add_exchange(&stores, &conv, T0, "private").await;

    assert_eq!(
        stores
            .conversations
            .get_conversation(&bob, &conv.id)
            .await
            .unwrap(),
        None
    );
    let bobs_view = stores
        .conversations
        .list_messages(&bob, &conv.id, None, 10)
        .await
        .unwrap()
        .unwrap();
    assert!(bobs_view.items.is_empty());
    assert!(
        !stores
            .conversations
            .delete_conversation(&bob, &conv.id)
            .await
            .unwrap()
    );
    assert!(
        stores
            .conversations
            .get_conversation(&alice, &conv.id)
            .await
            .unwrap()
            .is_some()
    );
}

pub async fn deleting_a_conversation_removes_its_messages_and_reports_whether_it_existed(
    stores: Stores,
) {
    let owner = Owner::User(UserId::generate());
    let keep = conversation(&owner, T0);
    add_exchange(&stores, &keep, T0, "keep").await;
    let mut gone = conversation(&owner, T0.plus_secs(1));
    for i in 0..3 {
        gone = add_exchange(&stores, &gone, T0.plus_secs(1 + i), "bye").await;
    }
    assert!(
        stores
            .conversations
            .delete_conversation(&owner, &gone.id)
            .await
            .unwrap()
    );
    assert!(
        !stores
            .conversations
            .delete_conversation(&owner, &gone.id)
            .await
            .unwrap()
    );
    assert_eq!(
        stores
            .conversations
            .get_conversation(&owner, &gone.id)
            .await
            .unwrap(),
        None
    );
    let left = stores
        .conversations
        .list_messages(&owner, &gone.id, None, 10)
        .await
        .unwrap()
        .unwrap();
    assert!(left.items.is_empty());
    let kept = stores
        .conversations
        .list_messages(&owner, &keep.id, None, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.items.len(), 2);
}

pub async fn deleting_a_user_removes_their_conversations_and_credits_but_no_one_elses(
    stores: Stores,
) {
    let doomed = created(&stores, user("leaving@example.com")).await;
    let staying = created(&stores, user("staying@example.com")).await;
    let (d, s) = (
        Owner::User(doomed.id.clone()),
        Owner::User(staying.id.clone()),
    );
    let dc = conversation(&d, T0);
    add_exchange(&stores, &dc, T0, "mine").await;
    let sc = conversation(&s, T0);
    add_exchange(&stores, &sc, T0, "theirs").await;
    let expires = T0.plus_secs(86_400);
    stores.credits.debit(&d, 3, 1, expires).await.unwrap();

    stores.users.delete_user(&doomed.id).await.unwrap();

    let listed = stores
        .conversations
        .list_conversations(&d, None, 10)
        .await
        .unwrap()
        .unwrap();
    assert!(listed.items.is_empty());
    let messages = stores
        .conversations
        .list_messages(&d, &dc.id, None, 10)
        .await
        .unwrap()
        .unwrap();
    assert!(messages.items.is_empty());
    // The day's counter went with the account.
    assert_eq!(
        stores.credits.debit(&d, 3, 1, expires).await.unwrap(),
        Debit::Taken { remaining: 0 }
    );
    let theirs = stores
        .conversations
        .list_conversations(&s, None, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(theirs.items.len(), 1);
}
