//! SQLite `LeaseStore`: one row per lease key, taken inside an `IMMEDIATE` transaction so
//! concurrent takers serialise.

use async_trait::async_trait;
use bastion_core::{RequestId, Timestamp};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{SqliteStore, db_error};
use crate::{LeaseStore, StoreError};

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn acquire_lease(
        &self,
        key: &str,
        holder: &RequestId,
        now: Timestamp,
        ttl_secs: i64,
    ) -> Result<bool, StoreError> {
        let (key, holder) = (key.to_owned(), holder.as_str().to_owned());
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            let expires: Option<i64> = tx
                .query_row(
                    "SELECT expires_at FROM leases WHERE lease_key = ?1",
                    params![key],
                    |row| row.get(0),
                )
                .optional()
                .map_err(db_error)?;
            if expires.is_some_and(|e| e > now.secs()) {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO leases (lease_key, holder, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (lease_key) DO UPDATE SET holder = excluded.holder,
                     expires_at = excluded.expires_at",
                params![key, holder, now.plus_secs(ttl_secs).secs()],
            )
            .map_err(db_error)?;
            tx.commit().map_err(db_error)?;
            Ok(true)
        })
        .await
    }

    async fn release_lease(&self, key: &str, holder: &RequestId) -> Result<bool, StoreError> {
        let (key, holder) = (key.to_owned(), holder.as_str().to_owned());
        self.run(move |conn| {
            let changed = conn
                .execute(
                    "DELETE FROM leases WHERE lease_key = ?1 AND holder = ?2",
                    params![key, holder],
                )
                .map_err(db_error)?;
            Ok(changed == 1)
        })
        .await
    }
}
