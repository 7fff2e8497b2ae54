//! SQLite `RecoveryStore`: one reset row per account, replaced by a newer request.

use async_trait::async_trait;
use bastion_core::crypto::TokenHash;
use bastion_core::{Timestamp, UserId};
use rusqlite::params;

use super::{SqliteStore, db_error};
use crate::{RecoveryStore, StoreError};

#[async_trait]
impl RecoveryStore for SqliteStore {
    async fn put_reset(
        &self,
        user: &UserId,
        hash: &TokenHash,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let (user, hash) = (user.as_str().to_owned(), hash.as_str().to_owned());
        self.run(move |conn| {
            // A deleted account's row would fail the foreign key; there is nothing to store then.
            conn.execute(
                "INSERT INTO password_resets (user_id, hash, expires_at)
                 SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?1)
                 ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash,
                                                     expires_at = excluded.expires_at",
                params![user, hash, expires_at.secs()],
            )
            .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn take_reset(
        &self,
        user: &UserId,
        hash: &TokenHash,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let (user, hash) = (user.as_str().to_owned(), hash.as_str().to_owned());
        self.run(move |conn| {
            let taken = conn
                .execute(
                    "DELETE FROM password_resets
                     WHERE user_id = ?1 AND hash = ?2 AND expires_at > ?3",
                    params![user, hash, now.secs()],
                )
                .map_err(db_error)?;
            Ok(taken == 1)
        })
        .await
    }
}
