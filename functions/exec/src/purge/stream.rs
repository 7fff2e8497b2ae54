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

use super::{IN_FLIGHT_TAIL, purge_user};
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
                Ok(Action::Purge(user)) => {
                    purge_user(&self.state, &user, IN_FLIGHT_TAIL).await.is_ok()
                }
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

/// Which records purge (a profile's removal, for this table) and which do nothing, and,
/// against S3 on the moto server, that a purge through the handler leaves no version or delete
/// marker of the deleted user and touches no one else's. Inline rather than in a file of its
/// own: infra/drift.py reads every source file but `#[cfg(test)]` items, and these tests call
/// store methods exec's code does not.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use bastion_core::{Email, ManualClock, Timestamp, UserId};
    use bastion_http::side_events::SideEvents;
    use bastion_http::{Edge, EdgeConfig};
    use bastion_sandbox::SandboxPath;
    use bastion_store::sqlite::SqliteStore;
    use bastion_store::{Stores, UserRecord};
    use serde_json::{Value, json};

    use super::{Action, Batch, Record, RecordError};
    use crate::workspace::conformance::{moto_s3, versioned_bucket, versions_under};
    use crate::workspace::{S3Workspaces, WorkspaceStore};
    use crate::{ExecConfig, ExecState};

    const TABLE: &str = "bastion-test";
    const ARN: &str =
        "arn:aws:dynamodb:us-east-1:123456789012:table/bastion-test/stream/2026-12-06T19:00:00.000";

    fn record(name: &str, pk: &str, sk: &str, seq: &str) -> Value {
        json!({
            "eventID": format!("id-{seq}"),
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "eventSourceARN": ARN,
            "dynamodb": {
                "ApproximateCreationDateTime": 1_800_000_000,
                "Keys": {"pk": {"S": pk}, "sk": {"S": sk}},
                "SequenceNumber": seq,
                "SizeBytes": 80,
                "StreamViewType": "KEYS_ONLY"
            }
        })
    }

    fn batch(records: Vec<Value>) -> String {
        json!({ "Records": records }).to_string()
    }

    fn action_of(record: Value) -> Result<Action, RecordError> {
        let batch: Batch = serde_json::from_str(&batch(vec![record])).unwrap();
        let records: Vec<Record> = batch.records;
        records[0].action(TABLE)
    }

    #[test]
    fn only_the_removal_of_a_profile_of_this_table_asks_for_a_purge() {
        let user = UserId::generate();
        let pk = format!("USER#{user}");
        assert_eq!(
            action_of(record("REMOVE", &pk, "PROFILE", "1")),
            Ok(Action::Purge(user.clone()))
        );
        for (name, pk, sk) in [
            ("MODIFY", pk.as_str(), "PROFILE"),
            ("INSERT", pk.as_str(), "PROFILE"),
            ("REMOVE", pk.as_str(), "SESSION#abc"),
            ("REMOVE", "EMAIL#a@example.com", "USER"),
            ("REMOVE", "LEASE#exec#x", "PROFILE"),
        ] {
            assert_eq!(
                action_of(record(name, pk, sk, "2")),
                Ok(Action::Nothing),
                "{name} {pk} {sk}"
            );
        }
        let mut other_table = record("REMOVE", &pk, "PROFILE", "3");
        other_table["eventSourceARN"] =
            json!("arn:aws:dynamodb:us-east-1:123456789012:table/bastion-prod/stream/label");
        assert_eq!(action_of(other_table), Err(RecordError::OtherTable));
        let mut kinesis = record("REMOVE", &pk, "PROFILE", "4");
        kinesis["eventSource"] = json!("aws:kinesis");
        assert_eq!(action_of(kinesis), Err(RecordError::NotDynamoDb));
        assert_eq!(
            action_of(record("REMOVE", "USER#not-an-id", "PROFILE", "5")),
            Err(RecordError::BadUserId)
        );
    }

    /// Exec's state on an in-memory table and `workspaces`, as a fresh instance has it.
    fn state(workspaces: Arc<dyn WorkspaceStore>, stores: Stores) -> ExecState {
        let root = std::env::temp_dir().join(format!("bastion-purge-{}", std::process::id()));
        let env: HashMap<String, String> = [
            (
                "JWT_VERIFY_KEYS",
                "k1:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",
            ),
            (
                "PASSWORD_PEPPER",
                "1:ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=",
            ),
            (
                "EXEC_SANDBOX_KEY",
                "ZXhlYy1zYW5kYm94LWtleS1mb3ItdGVzdHMtb25seSE=",
            ),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let clock = Arc::new(ManualClock::new(Timestamp(1_800_000_000)));
        let edge = Edge::new(EdgeConfig::from_env(&env).unwrap(), stores, clock);
        let config = ExecConfig::from_env(&env, root).unwrap();
        ExecState::new(edge, config, workspaces).unwrap()
    }

    fn memory_stores() -> Stores {
        Stores::from_adapter(Arc::new(SqliteStore::open_in_memory().unwrap()))
    }

    async fn claim(handler: &super::AccountDeletions, raw: &str) -> Value {
        handler
            .claim(raw)
            .expect("a Records event is claimed")
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn an_api_gateway_event_is_left_to_the_router() {
        let dir = std::env::temp_dir().join(format!("bastion-purge-dir-{}", std::process::id()));
        let workspaces = Arc::new(crate::workspace::DirWorkspaces::new(dir));
        let handler =
            super::AccountDeletions::new(state(workspaces, memory_stores()), TABLE.into());
        let rest = json!({
            "resource": "/{proxy+}", "path": "/exec/files", "httpMethod": "GET",
            "headers": {"host": "x"}, "body": "{\"Records\": []}",
            "requestContext": {"stage": "v1"}
        });
        assert!(handler.claim(&rest.to_string()).is_none());
        assert!(handler.claim("not json").is_none());
    }

    fn p(s: &str) -> SandboxPath {
        SandboxPath::parse(s).unwrap()
    }

    fn account(id: &UserId) -> UserRecord {
        UserRecord {
            id: id.clone(),
            email: Email::parse("alive@example.com").unwrap(),
            display_name: None,
            password_hash: String::new(),
            roles: vec![],
            created_at: Timestamp(1_800_000_000),
            disabled: false,
            session_epoch: 0,
            email_verified: false,
        }
    }

    /// Three versions of one file and a deleted file (its version behind a marker).
    async fn fill(s3: &S3Workspaces, owner: &str) {
        for content in ["v1", "v2", "v3"] {
            s3.write(owner, &p("notes.md"), content.as_bytes().to_vec())
                .await
                .unwrap();
        }
        s3.write(owner, &p("tmp/scratch"), b"x".to_vec())
            .await
            .unwrap();
        assert!(s3.delete(owner, &p("tmp/scratch")).await.unwrap());
    }

    #[tokio::test]
    async fn a_profile_removal_on_the_stream_purges_every_version_and_marker_of_that_user_only() {
        let client = moto_s3().await;
        let bucket = versioned_bucket(&client).await;
        let s3 = Arc::new(S3Workspaces::new(
            client.clone(),
            bucket.clone(),
            "alias/bastion-test".to_owned(),
        ));
        let stores = memory_stores();
        let state = state(s3.clone(), stores.clone());
        let handler = super::AccountDeletions::new(state.clone(), TABLE.into());
        let (gone, alive) = (UserId::generate(), UserId::generate());
        stores.users.create_user(&account(&alive)).await.unwrap();
        let (gone_owner, alive_owner) = (
            state.inner.sandboxes.name_for(&gone),
            state.inner.sandboxes.name_for(&alive),
        );
        fill(&s3, &gone_owner).await;
        fill(&s3, &alive_owner).await;
        let gone_prefix = format!("{gone_owner}/");
        let alive_prefix = format!("{alive_owner}/");
        let before = versions_under(&client, &bucket, &alive_prefix).await;
        assert_eq!(
            before.len(),
            5,
            "three versions, one deleted file and its marker"
        );
        assert_eq!(
            versions_under(&client, &bucket, &gone_prefix).await.len(),
            5
        );

        // Nothing that is not a deleted account's profile removes anything: a profile change, a
        // session's removal, and the "removal" of a profile that still exists.
        let unrelated = batch(vec![
            record("MODIFY", &format!("USER#{gone}"), "PROFILE", "10"),
            record("REMOVE", &format!("USER#{gone}"), "SESSION#s1", "11"),
            record("REMOVE", &format!("USER#{alive}"), "PROFILE", "12"),
        ]);
        assert_eq!(
            claim(&handler, &unrelated).await,
            json!({"batchItemFailures": []})
        );
        assert_eq!(
            versions_under(&client, &bucket, &gone_prefix).await.len(),
            5
        );
        assert_eq!(
            versions_under(&client, &bucket, &alive_prefix).await,
            before
        );

        let deletion = batch(vec![record(
            "REMOVE",
            &format!("USER#{gone}"),
            "PROFILE",
            "20",
        )]);
        assert_eq!(
            claim(&handler, &deletion).await,
            json!({"batchItemFailures": []})
        );
        assert_eq!(versions_under(&client, &bucket, &gone_prefix).await, vec![]);
        assert_eq!(
            versions_under(&client, &bucket, &alive_prefix).await,
            before,
            "another user's versions and markers are untouched"
        );
        assert_eq!(
            claim(&handler, &deletion).await,
            json!({"batchItemFailures": []}),
            "a redelivered record purges nothing and succeeds"
        );
    }

    #[tokio::test]
    async fn from_the_first_record_that_fails_the_rest_of_the_batch_is_left_for_the_retry() {
        let dir = std::env::temp_dir().join(format!("bastion-purge-fail-{}", std::process::id()));
        let workspaces = Arc::new(crate::workspace::DirWorkspaces::new(dir));
        let handler =
            super::AccountDeletions::new(state(workspaces, memory_stores()), TABLE.into());
        let user = UserId::generate();
        let mut foreign = record("REMOVE", &format!("USER#{user}"), "PROFILE", "31");
        foreign["eventSourceARN"] = json!("arn:aws:dynamodb:us-east-1:1:table/other/stream/l");
        let raw = batch(vec![
            record("MODIFY", &format!("USER#{user}"), "PROFILE", "30"),
            foreign,
            record("REMOVE", &format!("USER#{user}"), "PROFILE", "32"),
        ]);
        assert_eq!(
            claim(&handler, &raw).await,
            json!({"batchItemFailures": [{"itemIdentifier": "31"}, {"itemIdentifier": "32"}]})
        );
        let unreadable = json!({"Records": [{"eventName": "REMOVE"}]}).to_string();
        assert!(
            handler.claim(&unreadable).unwrap().await.is_err(),
            "an unreadable batch is an invocation error, retried and never dropped"
        );
    }
}
