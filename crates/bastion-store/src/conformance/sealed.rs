//! Conformance: chat content sealed by `Stores::with_content_sealing` never reaches an adapter
//! as plaintext, reads back as written, legacy plaintext still reads, and a sealed value moved
//! to another owner, conversation or position is refused as corrupt.
//!
//! Adapters' tests call [`sealed_conformance_tests!`](crate::sealed_conformance_tests) with a
//! fixture returning the plain stores, a sealer and a `RawDump` of everything the adapter holds.

use std::sync::Arc;

use async_trait::async_trait;
use bastion_core::envelope::ContentSealer;
use bastion_core::{Owner, UserId};

use super::T0;
use super::chat::{add_exchange, conversation};
use crate::{ConversationRecord, MessageRecord, StoreError, Stores, TurnWrite};

/// Every byte an adapter stored, as text (lossy), read around the store's own API.
#[async_trait]
pub trait RawDump: Send + Sync {
    async fn dump(&self) -> String;
}

/// Emits one `#[tokio::test]` per sealed-content conformance function. `$fixture` is an
/// `async fn() -> (Stores, Arc<ContentSealer>, R)` with `R: RawDump` (also kept alive as the
/// test's guard).
#[macro_export]
macro_rules! sealed_conformance_tests {
    ($fixture:path) => {
        $crate::sealed_conformance_tests!(@each $fixture;
            sealed_chat_content_never_reaches_the_store_as_plaintext,
            chat_content_written_before_sealing_still_reads,
            sealed_content_copied_to_another_owner_is_refused_as_corrupt,
            sealed_content_moved_to_another_conversation_or_position_is_refused_as_corrupt,
            totp_secrets_never_reach_the_store_as_plaintext,
        );
    };
    (@each $fixture:path; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (stores, sealer, raw) = $fixture().await;
                $crate::conformance::$name(stores, sealer, &raw).await;
            }
        )+
    };
}

const SECRET_TITLE: &str = "Plans for tangerine zebra";
const SECRET_TEXT: &str = "my passport number is X9-tangerine-4711";

fn owner() -> Owner {
    Owner::User(UserId::generate())
}

/// A conversation with a recognisable title and one exchange, written through `stores`.
async fn secret_conversation(stores: &Stores, owner: &Owner) -> ConversationRecord {
    let mut conv = conversation(owner, T0);
    conv.title = SECRET_TITLE.to_owned();
    add_exchange(stores, &conv, T0, SECRET_TEXT).await
}

async fn messages(stores: &Stores, owner: &Owner, conv: &ConversationRecord) -> Vec<MessageRecord> {
    stores
        .conversations
        .list_messages(owner, &conv.id, None, 10)
        .await
        .unwrap()
        .unwrap()
        .items
}

pub async fn sealed_chat_content_never_reaches_the_store_as_plaintext(
    plain: Stores,
    sealer: Arc<ContentSealer>,
    raw: &dyn RawDump,
) {
    let sealed = plain.clone().with_content_sealing(sealer);
    let alice = owner();
    let conv = secret_conversation(&sealed, &alice).await;

    let read = sealed
        .conversations
        .get_conversation(&alice, &conv.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read, conv);
    let read_messages = messages(&sealed, &alice, &conv).await;
    assert!(
        read_messages[0].steps.contains(SECRET_TEXT),
        "the answer's steps open again"
    );
    let texts: Vec<String> = read_messages.into_iter().map(|m| m.content).collect();
    assert_eq!(
        texts,
        [format!("re: {SECRET_TEXT}"), SECRET_TEXT.to_owned()]
    );
    let listed = sealed
        .conversations
        .list_conversations(&alice, None, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(listed.items, vec![conv.clone()]);

    let dump = raw.dump().await;
    assert!(
        dump.contains(conv.id.as_str()),
        "the dump must cover the chat items"
    );
    for needle in ["tangerine", "passport", "zebra"] {
        assert!(!dump.contains(needle), "{needle:?} stored in plaintext");
    }
    assert_eq!(
        dump.matches("bastion-sealed:v1:").count(),
        4,
        "title, two messages and the answer's steps"
    );
}

pub async fn chat_content_written_before_sealing_still_reads(
    plain: Stores,
    sealer: Arc<ContentSealer>,
    _raw: &dyn RawDump,
) {
    let alice = owner();
    let conv = secret_conversation(&plain, &alice).await;
    let sealed = plain.clone().with_content_sealing(sealer);
    let read = sealed
        .conversations
        .get_conversation(&alice, &conv.id)
        .await
        .unwrap();
    assert_eq!(read.as_ref().map(|c| c.title.as_str()), Some(SECRET_TITLE));
    assert_eq!(
        messages(&sealed, &alice, &conv).await,
        messages(&plain, &alice, &conv).await
    );
    // The next turn on a legacy conversation is sealed like any other.
    let next = add_exchange(&sealed, &read.unwrap(), T0, "follow-up tangerine").await;
    let stored = messages(&plain, &alice, &next).await;
    assert!(stored[0].content.starts_with("bastion-sealed:v1:"));
    assert_eq!(stored[3].content, SECRET_TEXT);
    assert_eq!(
        messages(&sealed, &alice, &next).await[0].content,
        "re: follow-up tangerine"
    );
}

/// Writes `conv` and `msgs` (already sealed, read raw) as they are, through the plain stores.
async fn copy_raw(plain: &Stores, conv: ConversationRecord, msgs: Vec<MessageRecord>) {
    let turn = TurnWrite {
        conversation: conv,
        previous_count: None,
        messages: msgs,
    };
    plain.conversations.append_turn(&turn).await.unwrap();
}

fn assert_corrupt<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(matches!(result, Err(StoreError::Corrupt(_))), "{result:?}");
}

pub async fn sealed_content_copied_to_another_owner_is_refused_as_corrupt(
    plain: Stores,
    sealer: Arc<ContentSealer>,
    _raw: &dyn RawDump,
) {
    let sealed = plain.clone().with_content_sealing(sealer);
    let (alice, mallory) = (owner(), owner());
    let conv = secret_conversation(&sealed, &alice).await;
    let mut stolen = plain
        .conversations
        .get_conversation(&alice, &conv.id)
        .await
        .unwrap()
        .unwrap();
    let stolen_msgs = messages(&plain, &alice, &conv).await;
    stolen.owner = mallory.clone();
    copy_raw(&plain, stolen, stolen_msgs).await;

    let convs = &sealed.conversations;
    assert_corrupt(convs.get_conversation(&mallory, &conv.id).await);
    assert_corrupt(convs.list_conversations(&mallory, None, 10).await);
    assert_corrupt(convs.list_messages(&mallory, &conv.id, None, 10).await);
    // The owner's own copy is untouched.
    assert_eq!(
        messages(&sealed, &alice, &conv).await[1].content,
        SECRET_TEXT
    );
}

pub async fn sealed_content_moved_to_another_conversation_or_position_is_refused_as_corrupt(
    plain: Stores,
    sealer: Arc<ContentSealer>,
    _raw: &dyn RawDump,
) {
    let sealed = plain.clone().with_content_sealing(sealer);
    let alice = owner();
    let conv = secret_conversation(&sealed, &alice).await;
    let raw_conv = plain
        .conversations
        .get_conversation(&alice, &conv.id)
        .await
        .unwrap()
        .unwrap();
    let raw_msgs = messages(&plain, &alice, &conv).await;

    // The same sealed values under a new conversation id of the same owner.
    let mut moved = conversation(&alice, T0);
    moved.title = raw_conv.title.clone();
    moved.message_count = raw_conv.message_count;
    copy_raw(&plain, moved.clone(), raw_msgs.clone()).await;
    assert_corrupt(
        sealed
            .conversations
            .get_conversation(&alice, &moved.id)
            .await,
    );
    assert_corrupt(
        sealed
            .conversations
            .list_messages(&alice, &moved.id, None, 10)
            .await,
    );

    // The user's message and the answer swapped within one conversation.
    let mut swapped = conversation(&alice, T0);
    swapped.message_count = 2;
    let mut msgs = raw_msgs;
    let (a, b) = (msgs[0].content.clone(), msgs[1].content.clone());
    msgs[0].content = b;
    msgs[1].content = a;
    copy_raw(&plain, swapped.clone(), msgs).await;
    assert_corrupt(
        sealed
            .conversations
            .list_messages(&alice, &swapped.id, None, 10)
            .await,
    );
}
