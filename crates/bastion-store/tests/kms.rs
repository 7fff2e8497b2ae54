//! KMS data keys against moto's KMS (the real `aws-sdk-kms` client, endpoint from
//! `BASTION_TEST_DYNAMODB_ENDPOINT`), and the KMS calls a chat turn's store traffic costs on a
//! cold and on a warm instance.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::{Credentials, Region};
use bastion_core::envelope::{
    CACHE_MAX_AGE_SECS, ContentContext, ContentKeys, ContentSealer, KeyError, PURPOSE_CHAT,
};
use bastion_core::{Clock, ManualClock, Owner, Timestamp, UserId};
use bastion_store::conformance::{add_exchange, conversation};
use bastion_store::dynamodb::create_table;
use bastion_store::kms::KmsContentKeys;
use bastion_store::{ConversationRecord, DynamoStore, Stores};

const ENDPOINT_ENV: &str = "BASTION_TEST_DYNAMODB_ENDPOINT";
const T0: Timestamp = Timestamp(1_800_000_000);

async fn sdk_config() -> aws_config::SdkConfig {
    let endpoint = std::env::var(ENDPOINT_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| panic!("{ENDPOINT_ENV} is not set: run `scripts/test` (moto)"));
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await
}

async fn kms_keys(config: &aws_config::SdkConfig) -> Arc<KmsContentKeys> {
    let created = aws_sdk_kms::Client::new(config)
        .create_key()
        .send()
        .await
        .unwrap();
    let key_id = created.key_metadata.unwrap().key_id;
    Arc::new(KmsContentKeys::from_sdk(config, key_id))
}

fn chat(owner: &str) -> ContentContext {
    ContentContext::new(PURPOSE_CHAT, owner)
}

#[tokio::test]
async fn a_kms_data_key_unwraps_to_the_same_key_under_its_encryption_context() {
    let keys = kms_keys(&sdk_config().await).await;
    let alice = chat("user#alice");
    let dk = keys.generate(&alice).await.unwrap();
    assert!(
        dk.wrapped.len() > 32,
        "KMS returns a ciphertext blob, not the key"
    );
    let sealer = ContentSealer::new(keys.clone(), Arc::new(ManualClock::new(T0)));
    let sealed = sealer.seal(&alice, &["c", "0"], "hello kms").await.unwrap();
    // A second instance has no cached key: it must go through KMS Decrypt.
    let cold = ContentSealer::new(keys.clone(), Arc::new(ManualClock::new(T0)));
    assert_eq!(
        cold.open(&alice, &["c", "0"], &sealed).await.unwrap(),
        "hello kms"
    );
    assert_eq!(keys.calls(), 3);
    assert!(keys.unwrap(&dk.wrapped, &alice).await.is_ok());
}

#[tokio::test]
async fn kms_refuses_a_data_key_under_another_owners_or_purposes_context() {
    let keys = kms_keys(&sdk_config().await).await;
    let dk = keys.generate(&chat("user#alice")).await.unwrap();
    for wrong in [
        chat("user#mallory"),
        ContentContext::new("exec-workspace", "user#alice"),
    ] {
        let refused = keys.unwrap(&dk.wrapped, &wrong).await;
        assert!(matches!(refused, Err(KeyError::Refused(_))), "{refused:?}");
    }
    let mut tampered = dk.wrapped.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let refused = keys.unwrap(&tampered, &chat("user#alice")).await;
    assert!(matches!(refused, Err(KeyError::Refused(_))), "{refused:?}");
}

#[tokio::test]
async fn a_kms_key_that_does_not_exist_is_unavailable_not_corrupt() {
    let config = sdk_config().await;
    let keys = KmsContentKeys::from_sdk(&config, "alias/bastion-missing");
    let err = keys.generate(&chat("user#a")).await.unwrap_err();
    assert!(matches!(err, KeyError::Unavailable(_)), "{err:?}");
}

/// One Lambda instance: the sealed DynamoDB stores and the KMS call counter behind them.
struct Instance {
    stores: Stores,
    keys: Arc<KmsContentKeys>,
    clock: ManualClock,
}

fn instance(config: &aws_config::SdkConfig, plain: &Stores, key_id: &str) -> Instance {
    let keys = Arc::new(KmsContentKeys::from_sdk(config, key_id));
    let clock = ManualClock::new(T0);
    let sealer = Arc::new(ContentSealer::new(keys.clone(), Arc::new(clock.clone())));
    Instance {
        stores: plain.clone().with_content_sealing(sealer),
        keys,
        clock,
    }
}

/// What a chat turn does to the conversation store (see `ChatEngine::run_turn`): read the
/// conversation and its recent messages, then write the exchange with the updated title.
async fn turn(at: &Instance, conv: &ConversationRecord, text: &str) -> ConversationRecord {
    let convs = &at.stores.conversations;
    let read = convs
        .get_conversation(&conv.owner, &conv.id)
        .await
        .unwrap()
        .unwrap();
    convs
        .list_messages(&conv.owner, &conv.id, None, 20)
        .await
        .unwrap()
        .unwrap();
    add_exchange(&at.stores, &read, at.clock.now(), text).await
}

/// KMS calls per chat turn, written down in README.md: a new conversation 1; a returning owner
/// on a warm instance 0; otherwise 1 GenerateDataKey + 1 Decrypt per distinct data key read.
#[tokio::test]
async fn a_returning_owners_turn_on_a_warm_instance_makes_no_kms_call() {
    let config = sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = format!("bastion-kms-test-{}", UserId::generate().as_str());
    create_table(&client, &table).await.unwrap();
    let plain = Stores::from_adapter(Arc::new(DynamoStore::new(client, table)));
    let key_id = aws_sdk_kms::Client::new(&config)
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    let owner = Owner::User(UserId::generate());

    let warm = instance(&config, &plain, &key_id);
    // First turn of a new conversation: nothing to read, one GenerateDataKey for the writes.
    let conv = add_exchange(&warm.stores, &conversation(&owner, T0), T0, "one").await;
    assert_eq!(warm.keys.calls(), 1);
    // The same owner again on the same instance within five minutes: no KMS call at all.
    let conv = turn(&warm, &conv, "two").await;
    warm.clock.advance(CACHE_MAX_AGE_SECS - 1);
    let conv = turn(&warm, &conv, "three").await;
    assert_eq!(warm.keys.calls(), 1);

    // A cold instance: one Decrypt for the stored data key, one GenerateDataKey for its writes.
    let cold = instance(&config, &plain, &key_id);
    let conv = turn(&cold, &conv, "four").await;
    assert_eq!(cold.keys.calls(), 2);
    // Its next turn is warm; the title and messages it wrote use its own key, also cached.
    let conv = turn(&cold, &conv, "five").await;
    assert_eq!(cold.keys.calls(), 2);

    // Past the key age the warm instance decrypts each distinct data key it reads (its own
    // expired one and the cold instance's) and generates a new one for its writes.
    warm.clock.advance(1);
    let conv = turn(&warm, &conv, "six").await;
    assert_eq!(warm.keys.calls(), 1 + 2 + 1);
    let texts = warm
        .stores
        .conversations
        .list_messages(&owner, &conv.id, None, 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(texts.items[1].content, "six");
}
