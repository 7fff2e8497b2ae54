//! The table's DynamoDB stream as exec's event source delivers it: a batch of records, of
//! which only the removal of a `USER#<id>`/`PROFILE` item (an account deletion) purges
//! anything. The template's filter already sends nothing else; the same test is made here so a
//! wider filter, or a hand-made invocation, never purges a live account's files.
//!
//! The answer is a partial batch response: the first record that failed, and every record
//! after it, are named in `batchItemFailures`, so the event source retries from there (and,
//! after its retries, sends the batch's description to the on-failure queue).

use std::collections::HashMap;

use bastion_core::UserId;
use bastion_http::side_events::{SideEvents, SideFuture};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use super::purge_user;
use crate::ExecState;

/// Just enough to tell a stream batch from an API Gateway event without keeping anything.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "Records")]
    records: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Batch {
    #[serde(rename = "Records")]
    records: Vec<Record>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    event_name: String,
    event_source: String,
    #[serde(rename = "eventSourceARN")]
    event_source_arn: String,
    dynamodb: Change,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Change {
    #[serde(default)]
    keys: HashMap<String, Attribute>,
    sequence_number: String,
}

/// A key attribute in DynamoDB's JSON; only strings are keys in this table.
#[derive(Debug, Deserialize)]
struct Attribute {
    #[serde(rename = "S")]
    s: Option<String>,
}

/// What one record asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The account's profile was removed: its workspace goes.
    Purge(UserId),
    /// Any other change.
    Nothing,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("the record is not from DynamoDB")]
    NotDynamoDb,
    #[error("the record is from another table's stream")]
    OtherTable,
    #[error("a removed profile's key holds no valid user id")]
    BadUserId,
}

impl Record {
    /// What the record asks for, for the table named `table`.
    pub fn action(&self, table: &str) -> Result<Action, RecordError> {
        if self.event_source != "aws:dynamodb" {
            return Err(RecordError::NotDynamoDb);
        }
        if stream_table(&self.event_source_arn) != Some(table) {
            return Err(RecordError::OtherTable);
        }
        let key = |name: &str| self.dynamodb.keys.get(name).and_then(|a| a.s.as_deref());
        if self.event_name != "REMOVE" || key("sk") != Some("PROFILE") {
            return Ok(Action::Nothing);
        }
        let Some(id) = key("pk").and_then(|pk| pk.strip_prefix("USER#")) else {
            return Ok(Action::Nothing);
        };
        UserId::parse(id)
            .map(Action::Purge)
            .map_err(|_| RecordError::BadUserId)
    }
}

/// The table a stream ARN (`arn:…:table/<name>/stream/<label>`) belongs to.
fn stream_table(arn: &str) -> Option<&str> {
    let (_, rest) = arn.split_once(":table/")?;
    let (name, label) = rest.split_once("/stream/")?;
    (!name.is_empty() && !label.is_empty()).then_some(name)
}

/// Exec's handler for the table's stream.
pub struct AccountDeletions {
    state: ExecState,
    table: String,
}

impl AccountDeletions {
    pub fn new(state: ExecState, table: String) -> Self {
        Self { state, table }
    }

    /// Every record in order; from the first that fails, the rest are left for the retry.
    async fn handle(&self, records: Vec<Record>) -> Value {
        let mut failed = Vec::new();
        for record in records {
            let sequence = record.dynamodb.sequence_number.clone();
            if !failed.is_empty() {
                failed.push(sequence);
                continue;
            }
            let done = match record.action(&self.table) {
                Ok(Action::Purge(user)) => purge_user(&self.state, &user).await.is_ok(),
                Ok(Action::Nothing) => true,
                Err(e) => {
                    tracing::error!(event = "stream_record_refused", sequence, error = %e, "a stream record exec cannot act on");
                    false
                }
            };
            if !done {
                failed.push(sequence);
            }
        }
        let failures: Vec<Value> = failed
            .into_iter()
            .map(|s| json!({ "itemIdentifier": s }))
            .collect();
        json!({ "batchItemFailures": failures })
    }
}

impl SideEvents for AccountDeletions {
    fn claim(&self, raw: &str) -> Option<SideFuture> {
        serde_json::from_str::<Probe>(raw).ok()?.records?;
        let batch = serde_json::from_str::<Batch>(raw);
        let this = Self::new(self.state.clone(), self.table.clone());
        Some(Box::pin(async move {
            // A batch that does not parse is an invocation error: retried, then sent to the
            // on-failure queue, never dropped.
            let batch = batch.inspect_err(|e| {
                tracing::error!(event = "stream_batch_unreadable", error = %e, "a Records event exec cannot read");
            })?;
            Ok(this.handle(batch.records).await)
        }))
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
