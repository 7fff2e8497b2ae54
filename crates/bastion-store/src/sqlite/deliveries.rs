//! SQLite `DeliveryStore`: one row per delivery key, claimed and finished inside `IMMEDIATE`
//! transactions so concurrent claims serialise.

use async_trait::async_trait;
use bastion_core::{RequestId, Timestamp};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{SqliteStore, db_error};
use crate::{ClaimOutcome, DELIVERY_RETENTION_SECS, DeliveryStore, StoreError};

const IN_PROGRESS: &str = "in_progress";
const DONE: &str = "done";

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn claim_delivery(
        &self,
        key: &str,
        holder: &RequestId,
        now: Timestamp,
        lease_secs: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        let (key, holder) = (key.to_owned(), holder.as_str().to_owned());
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            let existing: Option<(String, i64, i64)> = tx
                .query_row(
                    "SELECT state, lease_until, expires_at FROM deliveries WHERE delivery_key = ?1",
                    params![key],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()
                .map_err(db_error)?;
            let outcome = match existing {
                Some((_, _, expires)) if expires <= now.secs() => ClaimOutcome::Claimed,
                Some((state, _, _)) if state == DONE => ClaimOutcome::Done,
                Some((_, lease, _)) if lease > now.secs() => ClaimOutcome::InProgress,
                _ => ClaimOutcome::Claimed,
            };
            if outcome == ClaimOutcome::Claimed {
                tx.execute(
                    "INSERT INTO deliveries (delivery_key, state, holder, lease_until, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (delivery_key) DO UPDATE SET state = excluded.state,
                         holder = excluded.holder, lease_until = excluded.lease_until,
                         expires_at = excluded.expires_at",
                    params![
                        key,
                        IN_PROGRESS,
                        holder,
                        now.plus_secs(lease_secs).secs(),
                        now.plus_secs(DELIVERY_RETENTION_SECS).secs()
                    ],
                )
                .map_err(db_error)?;
            }
            tx.commit().map_err(db_error)?;
            Ok(outcome)
        })
        .await
    }

    async fn complete_delivery(
        &self,
        key: &str,
        holder: &RequestId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let (key, holder) = (key.to_owned(), holder.as_str().to_owned());
        self.run(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE deliveries SET state = ?3, expires_at = ?4
                     WHERE delivery_key = ?1 AND holder = ?2",
                    params![
                        key,
                        holder,
                        DONE,
                        now.plus_secs(DELIVERY_RETENTION_SECS).secs()
                    ],
                )
                .map_err(db_error)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn release_delivery(&self, key: &str, holder: &RequestId) -> Result<bool, StoreError> {
        let (key, holder) = (key.to_owned(), holder.as_str().to_owned());
        self.run(move |conn| {
            let changed = conn
                .execute(
                    "DELETE FROM deliveries WHERE delivery_key = ?1 AND holder = ?2 AND state = ?3",
                    params![key, holder, IN_PROGRESS],
                )
                .map_err(db_error)?;
            Ok(changed == 1)
        })
        .await
    }
}
