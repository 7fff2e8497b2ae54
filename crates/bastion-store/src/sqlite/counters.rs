//! SQLite `CounterStore`: one upsert-and-return per hit, so concurrent hits never lose counts.

use async_trait::async_trait;
use bastion_core::Timestamp;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{SqliteStore, corrupt, db_error};
use crate::{CounterStore, StoreError, WindowCounts};

#[async_trait]
impl CounterStore for SqliteStore {
    async fn hit(
        &self,
        key: &str,
        window: i64,
        expires_at: Timestamp,
    ) -> Result<WindowCounts, StoreError> {
        let key = key.to_owned();
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            let current: i64 = tx
                .query_row(
                    "INSERT INTO counters (counter_key, win, n, expires_at) VALUES (?1, ?2, 1, ?3)
                     ON CONFLICT (counter_key, win) DO UPDATE
                         SET n = n + 1, expires_at = excluded.expires_at
                     RETURNING n",
                    params![key, window, expires_at.secs()],
                    |row| row.get(0),
                )
                .map_err(db_error)?;
            let previous: Option<i64> = tx
                .query_row(
                    "SELECT n FROM counters WHERE counter_key = ?1 AND win = ?2",
                    params![key, window.saturating_sub(1)],
                    |row| row.get(0),
                )
                .optional()
                .map_err(db_error)?;
            tx.commit().map_err(db_error)?;
            Ok(WindowCounts {
                current: u64::try_from(current).map_err(|_| corrupt("counter", current))?,
                previous: u64::try_from(previous.unwrap_or(0))
                    .map_err(|_| corrupt("counter", previous.unwrap_or(0)))?,
            })
        })
        .await
    }
}
