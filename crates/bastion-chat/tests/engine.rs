//! The engine against a fake OpenAI-compatible server and a SQLite store: provider outcomes,
//! retries, refunds, plans, and the channel entry point the webhooks function uses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bastion_chat::provider::{Completion, CompletionRequest, Provider, ProviderError};
use bastion_chat::testing::{Answer, FAKE_KEY, FakeLlm, default_reply};
use bastion_chat::{ChatEngine, ChatError, ChatSetup, FreePlans, PlanSource, RuntimeMode};
use bastion_core::{ManualClock, Owner, Plan, RequestId, Timestamp, UserId};
use bastion_store::{SqliteStore, StoreError, Stores};
use tokio::sync::Barrier;

const START: Timestamp = Timestamp(1_800_000_000);
/// The UTC midnight after `START`.
const MIDNIGHT: Timestamp = Timestamp(1_800_057_600);

struct ProPlans;

#[async_trait]
impl PlanSource for ProPlans {
    async fn plan(&self, _owner: &Owner) -> Result<Plan, StoreError> {
        Ok(Plan::Pro)
    }
}

struct Harness {
    engine: ChatEngine,
    stores: Stores,
    fake: FakeLlm,
    key: bastion_chat::provider::openai::ApiKey,
}

async fn harness_with(extra: &[(&str, &str)], plans: Arc<dyn PlanSource>) -> Harness {
    let fake = FakeLlm::start().await;
    let mut env: HashMap<String, String> = [
        ("LLM_BASE_URL", fake.base_url.as_str()),
        ("LLM_API_KEY", FAKE_KEY),
        ("LLM_MODEL", "fake-small"),
        ("LLM_ALLOWED_MODELS", "fake-small,fake-large"),
        ("LLM_SYSTEM_PROMPT", "You are terse."),
        ("PLAN_FREE_DAILY_CREDITS", "3"),
        ("PLAN_PRO_DAILY_CREDITS", "5"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    let setup = ChatSetup::from_env(&env, RuntimeMode::Lambda).unwrap();
    let stores = Stores::from_adapter(Arc::new(SqliteStore::open_in_memory().unwrap()));
    let key = setup.api_key.clone();
    let engine = ChatEngine::new(
        stores.clone(),
        setup.provider,
        plans,
        Arc::new(ManualClock::new(START)),
        setup.config,
    );
    Harness {
        engine,
        stores,
        fake,
        key,
    }
}

async fn harness() -> Harness {
    harness_with(&[], Arc::new(FreePlans)).await
}

fn telegram() -> Owner {
    Owner::Telegram(77_001)
}

/// A fresh platform delivery name, as the webhooks function passes its dedupe key.
fn delivery() -> String {
    format!("test#{}", RequestId::generate())
}

fn rid() -> RequestId {
    RequestId::generate()
}

/// Credits left today for `owner`: takes one to look, then gives it back.
async fn credits_left(h: &Harness, owner: &Owner, allowance: u64) -> u64 {
    let day = START.secs().div_euclid(86_400);
    match h
        .stores
        .credits
        .debit(owner, day, allowance, MIDNIGHT)
        .await
        .unwrap()
    {
        bastion_store::Debit::Taken { remaining } => {
            h.stores.credits.refund(owner, day).await.unwrap();
            remaining + 1
        }
        bastion_store::Debit::Exhausted => 0,
    }
}

#[tokio::test]
async fn channel_reply_continues_one_conversation_per_channel_owner_in_order() {
    let h = harness().await;
    let owner = telegram();
    let first = h
        .engine
        .channel_reply(&owner, "hello", &delivery(), &rid())
        .await
        .unwrap();
    assert_eq!(first, default_reply("hello"));
    let second = h
        .engine
        .channel_reply(&owner, "and then?", &delivery(), &rid())
        .await
        .unwrap();
    assert_eq!(second, default_reply("and then?"));

    assert_eq!(
        h.fake.messages_of(1),
        vec![
            ("system".to_owned(), "You are terse.".to_owned()),
            ("user".to_owned(), "hello".to_owned()),
            ("assistant".to_owned(), default_reply("hello")),
            ("user".to_owned(), "and then?".to_owned()),
        ]
    );
    assert_eq!(h.fake.requests()[1]["model"], "fake-small");
    assert!(h.fake.refusals().is_empty());
    let listed = h.engine.conversations(&owner, None).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].message_count, 4);
    assert_eq!(listed.items[0].title, "hello");

    // Another channel owner gets a conversation of their own.
    h.engine
        .channel_reply(
            &Owner::Messenger("5551234".into()),
            "hi",
            &delivery(),
            &rid(),
        )
        .await
        .unwrap();
    assert_eq!(h.fake.messages_of(2).len(), 2);
    assert_eq!(
        h.engine
            .conversations(&owner, None)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_overlapping_first_deliveries_from_one_channel_owner_both_get_answers() {
    let h = harness().await;
    let owner = Owner::Messenger("9988776655".into());
    let barrier = Arc::new(Barrier::new(2));
    let mut tasks = Vec::new();
    for text in ["first", "second"] {
        let (engine, barrier, owner) = (h.engine.clone(), barrier.clone(), owner.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            engine
                .channel_reply(&owner, text, &delivery(), &rid())
                .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let listed = h.engine.conversations(&owner, None).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].message_count, 4);
    // Whatever raced, exactly two credits stay spent (losers were refunded and retried).
    assert_eq!(credits_left(&h, &owner, 3).await, 1);
}

#[tokio::test]
async fn channel_reply_stops_at_the_free_allowance_with_the_next_utc_midnight() {
    let h = harness().await;
    let owner = telegram();
    for i in 0..3 {
        h.engine
            .channel_reply(&owner, &format!("n{i}"), &delivery(), &rid())
            .await
            .unwrap();
    }
    let err = h
        .engine
        .channel_reply(&owner, "one more", &delivery(), &rid())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ChatError::QuotaExceeded { resets_at, allowance: 3 } if resets_at == MIDNIGHT),
        "{err:?}"
    );
    assert_eq!(h.fake.requests().len(), 3);
}

#[tokio::test]
async fn a_pro_plan_gets_the_pro_allowance() {
    let h = harness_with(&[], Arc::new(ProPlans)).await;
    let owner = Owner::User(UserId::generate());
    for i in 0..5 {
        h.engine
            .channel_reply(&owner, &format!("n{i}"), &delivery(), &rid())
            .await
            .unwrap();
    }
    let err = h
        .engine
        .channel_reply(&owner, "six", &delivery(), &rid())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ChatError::QuotaExceeded { allowance: 5, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn channel_reply_refuses_blank_and_overlong_text_without_spending_a_credit() {
    let h = harness().await;
    let owner = telegram();
    for (text, code) in [
        (" \n ".to_owned(), "empty_message"),
        ("a".repeat(32_001), "message_too_long"),
    ] {
        let err = h
            .engine
            .channel_reply(&owner, &text, &delivery(), &rid())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ChatError::InvalidMessage { code: c, .. } if c == code),
            "{err:?}"
        );
    }
    assert!(h.fake.requests().is_empty());
    assert_eq!(credits_left(&h, &owner, 3).await, 3);
}

#[tokio::test]
async fn a_provider_500_is_retried_twice_then_fails_and_refunds_the_credit() {
    let h = harness().await;
    let owner = telegram();
    h.fake.script([
        Answer::Status(500),
        Answer::Status(503),
        Answer::Status(500),
    ]);
    let err = h
        .engine
        .channel_reply(&owner, "hi", &delivery(), &rid())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ChatError::ProviderFailed(ProviderError::Status(500))),
        "{err:?}"
    );
    assert_eq!(h.fake.requests().len(), 3);
    assert_eq!(credits_left(&h, &owner, 3).await, 3);
    assert!(
        h.engine
            .conversations(&owner, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn two_429s_then_a_reply_succeed_within_the_retry_budget() {
    let h = harness().await;
    h.fake.script([
        Answer::Status(429),
        Answer::Status(429),
        Answer::Reply("third time lucky".into()),
    ]);
    let reply = h
        .engine
        .channel_reply(&telegram(), "hi", &delivery(), &rid())
        .await
        .unwrap();
    assert_eq!(reply, "third time lucky");
    assert_eq!(h.fake.requests().len(), 3);
}

#[tokio::test]
async fn a_client_error_from_the_provider_is_not_retried() {
    let h = harness_with(&[("LLM_API_KEY", "sk-wrong")], Arc::new(FreePlans)).await;
    let err = h
        .engine
        .channel_reply(&telegram(), "hi", &delivery(), &rid())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ChatError::ProviderFailed(ProviderError::Status(401))),
        "{err:?}"
    );
    assert_eq!(h.fake.refusals(), vec!["bad authorization".to_owned()]);
}

#[tokio::test]
async fn a_key_stored_by_a_secret_refresh_is_sent_from_the_next_call_on() {
    let h = harness_with(&[("LLM_API_KEY", "sk-wrong")], Arc::new(FreePlans)).await;
    let first = h
        .engine
        .channel_reply(&telegram(), "hi", &delivery(), &rid())
        .await;
    assert!(matches!(
        first,
        Err(ChatError::ProviderFailed(ProviderError::Status(401)))
    ));
    let env: HashMap<String, String> = [("LLM_API_KEY".to_owned(), FAKE_KEY.to_owned())].into();
    h.key.store(bastion_chat::config::api_key(&env).unwrap());
    h.fake.script([Answer::Reply("with the new key".into())]);
    let reply = h
        .engine
        .channel_reply(&telegram(), "hi", &delivery(), &rid())
        .await
        .unwrap();
    assert_eq!(reply, "with the new key");
}

#[tokio::test]
async fn a_malformed_reply_fails_and_refunds_the_credit() {
    let h = harness().await;
    let owner = telegram();
    h.fake.script([Answer::Malformed]);
    let err = h
        .engine
        .channel_reply(&owner, "hi", &delivery(), &rid())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ChatError::ProviderFailed(ProviderError::Malformed(_))),
        "{err:?}"
    );
    assert_eq!(credits_left(&h, &owner, 3).await, 3);
}

#[tokio::test]
async fn a_provider_slower_than_the_deadline_times_out_and_refunds_the_credit() {
    let h = harness_with(&[("LLM_TIMEOUT_SECS", "1")], Arc::new(FreePlans)).await;
    let owner = telegram();
    h.fake.script([Answer::Slow(Duration::from_secs(3))]);
    let err = h
        .engine
        .channel_reply(&owner, "hi", &delivery(), &rid())
        .await
        .unwrap_err();
    assert!(matches!(err, ChatError::ProviderTimeout), "{err:?}");
    assert_eq!(credits_left(&h, &owner, 3).await, 3);
}

#[tokio::test]
async fn a_model_outside_the_allowlist_is_refused_before_any_credit_is_spent() {
    let h = harness().await;
    let owner = Owner::User(UserId::generate());
    let message = bastion_chat::ChatMessage::parse("hi").unwrap();
    let err = h
        .engine
        .turn(&owner, None, &message, Some("gpt-4"), &rid())
        .await
        .unwrap_err();
    assert!(matches!(err, ChatError::ModelNotAllowed), "{err:?}");
    let ok = h
        .engine
        .turn(&owner, None, &message, Some("fake-large"), &rid())
        .await
        .unwrap();
    assert_eq!(ok.message.model, "fake-large");
    assert_eq!(ok.credits_remaining, 2);
    assert_eq!(h.fake.requests().len(), 1);
    assert_eq!(h.fake.requests()[0]["model"], "fake-large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_turns_with_ten_credits_left_send_exactly_ten_to_the_provider() {
    let h = harness_with(&[("PLAN_FREE_DAILY_CREDITS", "10")], Arc::new(FreePlans)).await;
    let owner = Owner::User(UserId::generate());
    let barrier = Arc::new(Barrier::new(50));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (engine, barrier, owner) = (h.engine.clone(), barrier.clone(), owner.clone());
        tasks.push(tokio::spawn(async move {
            let message = bastion_chat::ChatMessage::parse(&format!("q{i}")).unwrap();
            barrier.wait().await;
            engine.turn(&owner, None, &message, None, &rid()).await
        }));
    }
    let (mut ok, mut quota) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(ChatError::QuotaExceeded { .. }) => quota += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((ok, quota), (10, 40));
    assert_eq!(h.fake.requests().len(), 10);
}

/// A provider that announces each call, then never answers.
struct Hangs(Arc<tokio::sync::Notify>);

#[async_trait]
impl Provider for Hangs {
    fn name(&self) -> &'static str {
        "hangs"
    }
    async fn complete(&self, _r: &CompletionRequest) -> Result<Completion, ProviderError> {
        self.0.notify_one();
        std::future::pending().await
    }
}

/// A provider whose call panics (a bug in an adapter, or in what it calls).
struct Panics;

#[async_trait]
impl Provider for Panics {
    fn name(&self) -> &'static str {
        "panics"
    }
    async fn complete(&self, _r: &CompletionRequest) -> Result<Completion, ProviderError> {
        panic!("provider adapter bug")
    }
}

fn engine_with(provider: Arc<dyn Provider>) -> (ChatEngine, Stores) {
    let stores = Stores::from_adapter(Arc::new(SqliteStore::open_in_memory().unwrap()));
    let config = bastion_chat::ChatConfig {
        free_daily_credits: 3,
        ..Default::default()
    };
    let engine = ChatEngine::new(
        stores.clone(),
        provider,
        Arc::new(FreePlans),
        Arc::new(ManualClock::new(START)),
        config,
    );
    (engine, stores)
}

/// Waits (bounded) until `owner` has `want` credits left; the refund of an abandoned turn
/// runs on its own task.
async fn await_credits(stores: &Stores, owner: &Owner, want: u64) -> u64 {
    let day = START.secs().div_euclid(86_400);
    let mut left = 0;
    for _ in 0..500 {
        left = match stores.credits.debit(owner, day, 3, MIDNIGHT).await.unwrap() {
            bastion_store::Debit::Taken { remaining } => {
                stores.credits.refund(owner, day).await.unwrap();
                remaining + 1
            }
            bastion_store::Debit::Exhausted => 0,
        };
        if left == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    left
}

#[tokio::test]
async fn a_turn_cancelled_while_the_provider_is_working_gives_its_credit_back() {
    let entered = Arc::new(tokio::sync::Notify::new());
    let (engine, stores) = engine_with(Arc::new(Hangs(entered.clone())));
    let owner = Owner::User(UserId::generate());
    let task = tokio::spawn({
        let (engine, owner) = (engine.clone(), owner.clone());
        async move {
            let message = bastion_chat::ChatMessage::parse("hi").unwrap();
            engine.turn(&owner, None, &message, None, &rid()).await
        }
    });
    entered.notified().await;
    // The client went away (or a caller's timeout fired) after the debit.
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(await_credits(&stores, &owner, 3).await, 3);
    assert!(
        engine
            .conversations(&owner, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn a_provider_that_panics_gives_the_credit_back() {
    let (engine, stores) = engine_with(Arc::new(Panics));
    let owner = Owner::Telegram(55_001);
    let task = tokio::spawn({
        let (engine, owner) = (engine.clone(), owner.clone());
        async move {
            engine
                .channel_reply(&owner, "hi", &delivery(), &rid())
                .await
        }
    });
    assert!(task.await.unwrap_err().is_panic());
    assert_eq!(await_credits(&stores, &owner, 3).await, 3);
}

#[tokio::test]
async fn an_answer_longer_than_the_cap_is_stored_and_returned_cut_to_the_cap() {
    let h = harness().await;
    let owner = Owner::User(UserId::generate());
    h.fake.script([Answer::Reply("x".repeat(600_000))]);
    let message = bastion_chat::ChatMessage::parse("write a lot").unwrap();
    let reply = h
        .engine
        .turn(&owner, None, &message, None, &rid())
        .await
        .unwrap();
    assert_eq!(
        reply.message.content.len(),
        bastion_chat::message::MAX_ANSWER_BYTES
    );
    let (_, page) = h
        .engine
        .messages(&owner, &reply.conversation_id, None)
        .await
        .unwrap();
    assert_eq!(page.items[0].content, reply.message.content);
}

#[tokio::test]
async fn a_repeated_delivery_replays_its_stored_answer_but_a_reused_delivery_id_with_new_text_is_a_new_turn()
 {
    let h = harness().await;
    let owner = telegram();
    let first = h
        .engine
        .channel_reply(&owner, "hello", "telegram#900", &rid())
        .await
        .unwrap();
    let again = h
        .engine
        .channel_reply(&owner, "hello", "telegram#900", &rid())
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(h.fake.requests().len(), 1);
    assert_eq!(credits_left(&h, &owner, 3).await, 2);

    // Telegram numbers updates randomly again after a quiet week: the same id can come back.
    let other = h
        .engine
        .channel_reply(&owner, "something else", "telegram#900", &rid())
        .await
        .unwrap();
    assert_eq!(other, default_reply("something else"));
    assert_eq!(h.fake.requests().len(), 2);
    assert_eq!(credits_left(&h, &owner, 3).await, 1);
}

/// A provider that counts its calls and answers each only when the test lets one through.
struct Gate {
    calls: std::sync::atomic::AtomicUsize,
    open: tokio::sync::Semaphore,
}

#[async_trait]
impl Provider for Gate {
    fn name(&self) -> &'static str {
        "gate"
    }
    async fn complete(&self, _r: &CompletionRequest) -> Result<Completion, ProviderError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.open.acquire().await.unwrap().forget();
        Ok(Completion {
            content: "gated answer".into(),
            tool_calls: Vec::new(),
            usage: bastion_chat::Usage {
                prompt_tokens: 1,
                completion_tokens: 1,
            },
            served_by: Default::default(),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_turns_on_one_conversation_reach_the_provider_once() {
    let gate = Arc::new(Gate {
        calls: 0.into(),
        open: tokio::sync::Semaphore::new(1),
    });
    let (engine, stores) = engine_with(gate.clone());
    let owner = Owner::User(UserId::generate());
    let hi = bastion_chat::ChatMessage::parse("hi").unwrap();
    let first = engine.turn(&owner, None, &hi, None, &rid()).await.unwrap();
    let id = first.conversation_id;

    let barrier = Arc::new(Barrier::new(20));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (engine, barrier, owner, id) =
            (engine.clone(), barrier.clone(), owner.clone(), id.clone());
        tasks.spawn(async move {
            let message = bastion_chat::ChatMessage::parse(&format!("q{i}")).unwrap();
            barrier.wait().await;
            engine.turn(&owner, Some(&id), &message, None, &rid()).await
        });
    }
    // The turn holding the conversation waits at the gate; every other one is refused
    // before spending anything.
    for _ in 0..19 {
        let refused = tasks.join_next().await.unwrap().unwrap();
        assert!(matches!(refused, Err(ChatError::Conflict)), "{refused:?}");
    }
    // The holder may still be on its way to the gate.
    for _ in 0..500 {
        if gate.calls.load(std::sync::atomic::Ordering::SeqCst) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(gate.calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    gate.open.add_permits(1);
    let won = tasks.join_next().await.unwrap().unwrap().unwrap();
    assert_eq!(won.message.content, "gated answer");
    assert_eq!(gate.calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    // Two turns stored, two credits spent of three; the conversation is free again.
    assert_eq!(await_credits(&stores, &owner, 1).await, 1);
    let listed = engine.conversations(&owner, None).await.unwrap();
    assert_eq!(listed.items[0].message_count, 4);
    gate.open.add_permits(1);
    let bye = bastion_chat::ChatMessage::parse("bye").unwrap();
    engine
        .turn(&owner, Some(&id), &bye, None, &rid())
        .await
        .unwrap();
}
