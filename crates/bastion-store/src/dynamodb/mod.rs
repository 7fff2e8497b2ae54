//! DynamoDB adapter: every port on one table (`pk`/`sk`, GSI `gsi1`, numeric `ttl`).
//!
//! Requests per operation (a Query counts once per 1 MB page; "+1 on conflict" means a
//! transaction cancelled only by `TransactionConflict` is retried, at most twice):
//!
//! | operation             | requests                                                        |
//! |-----------------------|-----------------------------------------------------------------|
//! | `create_user`         | 1 TransactWriteItems (profile + email guard)                    |
//! | `get_user`            | 1 GetItem                                                       |
//! | `find_user_by_email`  | 1 GetItem (the guard carries the login copy; 2 for older guards)|
//! | `set_password_hash`   | 1 GetItem + 1 TransactWriteItems (profile, conditional on the   |
//! |                       | expected hash, and login copy)                                  |
//! | `delete_user`         | 1 Query + 1 TransactWriteItems while the partition holds ≤ 99   |
//! |                       | items; beyond that + ⌈extra/25⌉ BatchWriteItem first            |
//! | `create_session`      | 1 TransactWriteItems (session + refresh lookup + a check of the |
//! |                       | profile's session epoch)                                        |
//! | `get_session`         | 1 GetItem                                                       |
//! | `find_refresh`        | 1 GetItem                                                       |
//! | `rotate_refresh`      | Rotated: 1 GetItem + 1 TransactWriteItems; Reused/SessionGone:  |
//! |                       | 1 GetItem; losing a concurrent race: 1 GetItem + 1 Transact + 1 |
//! |                       | GetItem                                                         |
//! | `list_sessions`       | 1 Query                                                         |
//! | `revoke_session`      | 1 DeleteItem                                                    |
//! | `revoke_all_sessions` | 1 GetItem + 1 TransactWriteItems (session epoch on profile and  |
//! |                       | login copy) + 1 Query + ⌈n/25⌉ BatchWriteItem                   |
//! | `hit`                 | 1 UpdateItem (both windows on one item, returned by the write); |
//! |                       | rarely + 1 UpdateItem pruning counts of long-past windows       |
//! | `append`              | 1 PutItem                                                       |
//! | `list_for_user`       | 1 Query (Limit = page + 1); more only when expired-but-undeleted|
//! |                       | events were filtered out of the page                            |
//! | `list_for_day`        | 1 Query on `gsi1` (Limit = page + 1), eventually consistent     |
//! | `put_one_time`        | 1 PutItem                                                       |
//! | `take_one_time`       | 1 DeleteItem (ReturnValues ALL_OLD): single use by construction |
//! | `find_user_by_google` | 2 GetItem, sequential (guard, then profile)                     |
//! | `create_google_user`  | 1 TransactWriteItems (profile, email guard, Google guard, link) |
//! | `link_google`         | 1 TransactWriteItems (profile check, Google guard, link)        |
//! | `set_roles`, `set_disabled` | 1 UpdateItem                                              |
//! | `create_api_key`      | 1 TransactWriteItems (hash lookup + owner item + key count);    |
//! |                       | when the count refuses: + 1 GetItem + 1 Query + sweep of expired|
//! |                       | keys + 1 TransactWriteItems (recount), then once more           |
//! | `find_api_key`        | 1 GetItem                                                       |
//! | `list_api_keys`       | 1 Query                                                         |
//! | `revoke_api_key`      | 1 GetItem + 1 TransactWriteItems (+1 for keys older than count)|
//! | `revoke_all_api_keys` | 1 Query + ⌈2n/25⌉ BatchWriteItem + recount (1 GetItem + 1 Query |
//! |                       | + 1 TransactWriteItems)                                         |
//! | `touch_api_key`       | 1 TransactWriteItems (both copies, conditional)                 |
//! | `get_conversation`    | 1 GetItem                                                       |
//! | `list_conversations`  | 1 Query (Limit = page + 1)                                      |
//! | `list_messages`       | 1 Query (Limit = page + 1)                                      |
//! | `append_turn`         | 1 TransactWriteItems (conversation put/update + the messages)  |
//! | `delete_conversation` | 1 DeleteItem + 1 Query per 1 MB + ⌈n/25⌉ BatchWriteItem         |
//! | `debit`, `refund`     | 1 UpdateItem (conditional)                                      |
//! | `claim_delivery`      | 1 PutItem (conditional); + 1 GetItem when the condition fails   |
//! | `complete_delivery`   | 1 UpdateItem (conditional on the holder)                        |
//! | `release_delivery`    | 1 DeleteItem (conditional on the holder)                        |
//! | `acquire_lease`       | 1 PutItem (conditional: absent or expired)                      |
//! | `release_lease`       | 1 DeleteItem (conditional on the holder)                        |
//! | `link_customer`       | 1 TransactWriteItems (customer lookup + user's billing item)    |
//! | `user_for_customer`   | 1 GetItem                                                       |
//! | `apply_billing`       | 1 UpdateItem (conditional on `event_created`, returns old item) |
//! | `billing_of`/`plan_of`| 1 GetItem                                                       |
//!
//! Items in a user's partition that index the user from elsewhere (API-key owner items, the
//! Google link) carry `twin_pk`/`twin_sk`; `delete_user` deletes the twins with them.
//!
//! Rotation reads the session first because the new refresh lookup must carry the session's
//! expiry, which a transaction cannot copy from another item; the transaction's condition, not
//! the read, decides who wins.

mod accounts;
mod api_key_count;
mod api_keys;
mod audit;
mod billing;
mod chat;
mod counters;
mod deliveries;
mod item;
mod leases;
mod mfa;
mod recovery;
mod sessions;
mod users;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, DeleteRequest, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType,
    TimeToLiveSpecification, TransactWriteItem, WriteRequest,
};

use crate::StoreError;

/// The environment variable naming the table in deployed functions.
pub const TABLE_ENV: &str = "TABLE_NAME";
/// The one global secondary index, keyed `gsi1pk`/`gsi1sk`.
pub const GSI1: &str = "gsi1";

/// BatchWriteItem takes at most 25 requests.
const BATCH_MAX: usize = 25;
/// TransactWriteItems takes at most 100 actions.
const TRANSACT_MAX: usize = 100;
/// Attempts for a transaction that only lost to a concurrent one, and for unprocessed batches.
const ATTEMPTS: u32 = 3;

/// Implements every storage port on one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table from `TABLE_NAME` in `env` and a client on the process's one shared AWS
    /// configuration. Fails, naming the variable, when the table is unset.
    pub fn from_sdk(
        sdk: &aws_types::SdkConfig,
        env: &dyn bastion_core::config::Env,
    ) -> Result<Self, StoreError> {
        let table = table_name(env.get(TABLE_ENV))?;
        Ok(Self::new(Client::new(sdk), table))
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Runs a transaction, retrying when it was cancelled only because another transaction
    /// touched the same items (the retry then sees the winner's writes).
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), TransactFailure> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match sent {
                Ok(_) => return Ok(()),
                Err(err) => err,
            };
            let codes = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => c
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().unwrap_or("None").to_owned())
                    .collect::<Vec<_>>(),
                _ => {
                    return Err(TransactFailure::Store(sdk_error(
                        "TransactWriteItems",
                        &err,
                    )));
                }
            };
            let only_conflicts = codes
                .iter()
                .all(|c| c == "None" || c == "TransactionConflict")
                && codes.iter().any(|c| c == "TransactionConflict");
            if only_conflicts && attempt < ATTEMPTS {
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
            if codes.iter().any(|c| c == "ConditionalCheckFailed") {
                return Err(TransactFailure::Cancelled(codes));
            }
            return Err(TransactFailure::Store(sdk_error(
                "TransactWriteItems",
                &err,
            )));
        }
    }

    /// Deletes the given keys with BatchWriteItem, resubmitting unprocessed ones a few times.
    async fn batch_delete(
        &self,
        keys: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<(), StoreError> {
        for chunk in keys.chunks(BATCH_MAX) {
            let mut requests = Vec::with_capacity(chunk.len());
            for key in chunk {
                let delete = DeleteRequest::builder()
                    .set_key(Some(key.clone()))
                    .build()
                    .map_err(build_error)?;
                requests.push(WriteRequest::builder().delete_request(delete).build());
            }
            let mut attempt = 0;
            while !requests.is_empty() {
                attempt += 1;
                if attempt > ATTEMPTS {
                    return Err(StoreError::Unavailable(format!(
                        "dynamodb BatchWriteItem: {} deletes still unprocessed",
                        requests.len()
                    )));
                }
                if attempt > 1 {
                    tokio::time::sleep(backoff(attempt - 1)).await;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(self.table.clone(), requests)
                    .send()
                    .await
                    .map_err(|e| sdk_error("BatchWriteItem", &e))?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
            }
        }
        Ok(())
    }
}

/// Why a transaction did not commit.
enum TransactFailure {
    /// Cancelled by a failed condition; one code per action, in order (`"None"` where fine).
    Cancelled(Vec<String>),
    Store(StoreError),
}

impl TransactFailure {
    fn condition_failed_at(&self, index: usize) -> bool {
        matches!(self, TransactFailure::Cancelled(codes)
            if codes.get(index).is_some_and(|c| c == "ConditionalCheckFailed"))
    }

    fn into_store_error(self, what: &str) -> StoreError {
        match self {
            TransactFailure::Store(e) => e,
            TransactFailure::Cancelled(codes) => StoreError::Unavailable(format!(
                "dynamodb {what}: transaction cancelled ({})",
                codes.join(", ")
            )),
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(25_u64.saturating_mul(u64::from(attempt)))
}

fn table_name(value: Option<String>) -> Result<String, StoreError> {
    match value {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(StoreError::Unavailable(format!(
            "environment variable {TABLE_ENV} is not set or empty"
        ))),
    }
}

/// Creates the table with the production key schema and enables TTL on `ttl`.
pub async fn create_table(client: &Client, name: &str) -> Result<(), StoreError> {
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(build_error)
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .map_err(build_error)
    };
    let gsi = GlobalSecondaryIndex::builder()
        .index_name(GSI1)
        .key_schema(key("gsi1pk", KeyType::Hash)?)
        .key_schema(key("gsi1sk", KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(build_error)?;
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .attribute_definitions(attr("gsi1pk")?)
        .attribute_definitions(attr("gsi1sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(gsi)
        .send()
        .await
        .map_err(|e| sdk_error("CreateTable", &e))?;
    client
        .wait_until_table_exists()
        .table_name(name)
        .wait(Duration::from_secs(120))
        .await
        .map_err(|e| sdk_error("DescribeTable (waiting for ACTIVE)", &e))?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("ttl")
                .build()
                .map_err(build_error)?,
        )
        .send()
        .await
        .map_err(|e| sdk_error("UpdateTimeToLive", &e))?;
    Ok(())
}

fn sdk_error(op: &str, e: &(impl std::error::Error + 'static)) -> StoreError {
    StoreError::Unavailable(format!("dynamodb {op}: {}", DisplayErrorContext(e)))
}

/// A conditional write's result: `Some` when it was applied, `None` when its condition refused
/// it (an expected outcome the caller decides on), the store error otherwise.
fn applied<T, E>(
    op: &str,
    result: Result<T, aws_sdk_dynamodb::error::SdkError<E, HttpResponse>>,
) -> Result<Option<T>, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(None),
        Err(e) => Err(sdk_error(op, &e)),
    }
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Unavailable(format!("dynamodb request could not be built: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_table_name_is_an_error_naming_the_variable() {
        for value in [None, Some(String::new()), Some("  ".to_owned())] {
            let err = table_name(value).unwrap_err().to_string();
            assert_eq!(
                err,
                "store unavailable: environment variable TABLE_NAME is not set or empty"
            );
        }
        assert_eq!(table_name(Some("bastion".to_owned())).unwrap(), "bastion");
    }
}
