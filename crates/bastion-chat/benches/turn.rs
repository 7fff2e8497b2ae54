//! Bench binary for one chat turn's overhead excluding the provider: the engine with the
//! in-process echo provider on a SQLite file store (read context, debit, assemble, write the
//! turn). It also counts the store-port calls per turn, which map one-to-one onto DynamoDB
//! requests (see the table in `bastion_store::dynamodb`). Run with
//! `cargo bench -p bastion-chat --bench turn`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bastion_chat::provider::EchoProvider;
use bastion_chat::{ChatConfig, ChatEngine, ChatMessage, FreePlans};
use bastion_core::{Owner, RequestId, SystemClock, Timestamp, UserId};
use bastion_store::{
    AppendError, ConversationId, ConversationRecord, ConversationStore, CreditStore, Debit,
    MessageRecord, Page, SqliteStore, StoreError, Stores, TurnWrite,
};

/// Counts every port call, then delegates.
struct Counting<S> {
    inner: Arc<S>,
    calls: Arc<AtomicU64>,
}

impl<S> Counting<S> {
    fn tick(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

#[async_trait]
impl<S: ConversationStore> ConversationStore for Counting<S> {
    async fn get_conversation(
        &self,
        owner: &Owner,
        id: &ConversationId,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        self.tick();
        self.inner.get_conversation(owner, id).await
    }
    async fn list_conversations(
        &self,
        owner: &Owner,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Option<Page<ConversationRecord>>, StoreError> {
        self.tick();
        self.inner.list_conversations(owner, cursor, limit).await
    }
    async fn list_messages(
        &self,
        owner: &Owner,
        id: &ConversationId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Option<Page<MessageRecord>>, StoreError> {
        self.tick();
        self.inner.list_messages(owner, id, cursor, limit).await
    }
    async fn append_turn(&self, turn: &TurnWrite) -> Result<(), AppendError> {
        self.tick();
        self.inner.append_turn(turn).await
    }
    async fn delete_conversation(
        &self,
        owner: &Owner,
        id: &ConversationId,
    ) -> Result<bool, StoreError> {
        self.tick();
        self.inner.delete_conversation(owner, id).await
    }
}

#[async_trait]
impl<S: CreditStore> CreditStore for Counting<S> {
    async fn debit(
        &self,
        owner: &Owner,
        day: i64,
        allowance: u64,
        expires_at: Timestamp,
    ) -> Result<Debit, StoreError> {
        self.tick();
        self.inner.debit(owner, day, allowance, expires_at).await
    }
    async fn refund(&self, owner: &Owner, day: i64) -> Result<(), StoreError> {
        self.tick();
        self.inner.refund(owner, day).await
    }
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let n = samples.len();
    let mean = samples.iter().sum::<Duration>() / u32::try_from(n).unwrap();
    let pct = |p: usize| samples[(n * p / 100).min(n - 1)];
    println!(
        "{name:<44} n={n:<6} mean={mean:>10.1?} p50={:>10.1?} p95={:>10.1?}",
        pct(50),
        pct(95)
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let path =
        std::env::temp_dir().join(format!("bastion-chat-bench-{}.db", RequestId::generate()));
    let sqlite = Arc::new(SqliteStore::open(&path).unwrap());
    let calls = Arc::new(AtomicU64::new(0));
    let mut stores = Stores::from_adapter(sqlite.clone());
    stores.conversations = Arc::new(Counting {
        inner: sqlite.clone(),
        calls: calls.clone(),
    });
    stores.credits = Arc::new(Counting {
        inner: sqlite,
        calls: calls.clone(),
    });
    let config = ChatConfig {
        free_daily_credits: 1_000_000,
        ..ChatConfig::default()
    };
    let echo = EchoProvider::new(&HashMap::<String, String>::new()).unwrap();
    let engine = ChatEngine::new(
        stores,
        Arc::new(echo),
        Arc::new(FreePlans),
        Arc::new(SystemClock),
        config,
    );
    let owner = Owner::User(UserId::generate());
    let message = ChatMessage::parse(&"How does the borrow checker work? ".repeat(8)).unwrap();

    // New conversations: debit + write.
    let mut new_samples = Vec::new();
    let mut ids = Vec::new();
    let before = calls.load(Ordering::Relaxed);
    for _ in 0..500 {
        let rid = RequestId::generate();
        let t = Instant::now();
        let reply = engine
            .turn(&owner, None, &message, None, &rid)
            .await
            .unwrap();
        new_samples.push(t.elapsed());
        ids.push(reply.conversation_id);
    }
    let new_calls = (calls.load(Ordering::Relaxed) - before) as f64 / 500.0;

    // Follow-ups on conversations that grow to 40 messages: read context, debit, write.
    let mut follow_samples = Vec::new();
    let before = calls.load(Ordering::Relaxed);
    let mut turns = 0u64;
    for _ in 0..19 {
        for id in ids.iter().take(100) {
            let rid = RequestId::generate();
            let t = Instant::now();
            engine
                .turn(&owner, Some(id), &message, None, &rid)
                .await
                .unwrap();
            follow_samples.push(t.elapsed());
            turns += 1;
        }
    }
    let follow_calls = (calls.load(Ordering::Relaxed) - before) as f64 / turns as f64;

    report("turn, new conversation (SQLite, echo)", new_samples);
    report("turn, follow-up, 2..38 msgs (SQLite, echo)", follow_samples);
    println!(
        "store-port calls per turn: new conversation {new_calls:.1}, follow-up {follow_calls:.1}"
    );

    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
