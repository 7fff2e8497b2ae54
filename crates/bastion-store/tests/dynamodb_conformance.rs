//! The conformance suite against `DynamoStore`, talking to the DynamoDB endpoint named by
//! `BASTION_TEST_DYNAMODB_ENDPOINT` (a local moto server started by `scripts/test`), with a
//! fresh table per test so tests run in parallel.
// Fixtures outside `#[test]` fns are test code too; a failed setup should fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::types::{KeyType, ProjectionType, TimeToLiveStatus};
use bastion_core::envelope::ContentSealer;
use bastion_core::{ManualClock, Timestamp};
use bastion_store::conformance::RawDump;
use bastion_store::dynamodb::create_table;
use bastion_store::kms::KmsContentKeys;
use bastion_store::{DynamoStore, Stores};

const ENDPOINT_ENV: &str = "BASTION_TEST_DYNAMODB_ENDPOINT";

async fn sdk_config() -> aws_config::SdkConfig {
    let endpoint = match std::env::var(ENDPOINT_ENV) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!(
            "{ENDPOINT_ENV} is not set: the DynamoDB conformance tests need a local moto server. \
             Run `scripts/test`, which starts one on 127.0.0.1 and sets the variable."
        ),
    };
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await
}

async fn client() -> Client {
    Client::new(&sdk_config().await)
}

fn unique_table_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = bastion_core::Clock::now_nanos(&bastion_core::SystemClock);
    format!(
        "bastion-test-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

async fn dynamodb() -> (Stores, ()) {
    let client = client().await;
    let table = unique_table_name();
    create_table(&client, &table).await.unwrap();
    (
        Stores::from_adapter(Arc::new(DynamoStore::new(client, table))),
        (),
    )
}

bastion_store::conformance_tests!(dynamodb);

/// Scans the whole table with the raw client, around the store.
struct RawDynamo {
    client: Client,
    table: String,
}

#[async_trait::async_trait]
impl RawDump for RawDynamo {
    async fn dump(&self) -> String {
        let scan = self
            .client
            .scan()
            .table_name(&self.table)
            .send()
            .await
            .unwrap();
        let mut out = String::new();
        for item in scan.items() {
            for (name, value) in item {
                let text = match value {
                    AttributeValue::S(s) => s.clone(),
                    other => format!("{other:?}"),
                };
                out.push_str(&format!("{name}={text}\t"));
            }
            out.push('\n');
        }
        out
    }
}

/// The DynamoDB adapter sealed through moto's KMS: the Lambda configuration.
async fn dynamodb_sealed() -> (Stores, Arc<ContentSealer>, RawDynamo) {
    let config = sdk_config().await;
    let client = Client::new(&config);
    let table = unique_table_name();
    create_table(&client, &table).await.unwrap();
    let key = aws_sdk_kms::Client::new(&config)
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    let sealer = KmsContentKeys::sealer(
        &config,
        key,
        Arc::new(ManualClock::new(Timestamp(1_800_000_000))),
    );
    let stores = Stores::from_adapter(Arc::new(DynamoStore::new(client.clone(), table.clone())));
    (stores, sealer, RawDynamo { client, table })
}

bastion_store::sealed_conformance_tests!(dynamodb_sealed);

#[tokio::test]
async fn create_table_builds_the_production_key_schema_with_ttl_enabled() {
    let client = client().await;
    let table = unique_table_name();
    create_table(&client, &table).await.unwrap();

    let described = client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let desc = described.table.unwrap();
    let keys: Vec<(&str, KeyType)> = desc
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type().clone()))
        .collect();
    assert_eq!(keys, vec![("pk", KeyType::Hash), ("sk", KeyType::Range)]);
    let gsis = desc.global_secondary_indexes();
    assert_eq!(gsis.len(), 1);
    assert_eq!(gsis[0].index_name(), Some("gsi1"));
    let gsi_keys: Vec<(&str, KeyType)> = gsis[0]
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type().clone()))
        .collect();
    assert_eq!(
        gsi_keys,
        vec![("gsi1pk", KeyType::Hash), ("gsi1sk", KeyType::Range)]
    );
    assert_eq!(
        gsis[0].projection().and_then(|p| p.projection_type()),
        Some(&ProjectionType::All)
    );

    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description.unwrap();
    assert_eq!(ttl.attribute_name(), Some("ttl"));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
}
