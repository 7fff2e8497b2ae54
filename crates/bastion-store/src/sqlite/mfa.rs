//! SQLite `MfaStore`: one `totp` row per account, its unused recovery codes as rows beside it.
//! Every change is one conditional statement (or one transaction), so of concurrent callers
//! at most one succeeds.

use async_trait::async_trait;
use bastion_core::crypto::TokenHash;
use bastion_core::{Timestamp, UserId};
use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, corrupt, db_error};
use crate::{MfaStore, StoreError, TotpRecord};

#[async_trait]
impl MfaStore for SqliteStore {
    async fn get_totp(&self, user: &UserId) -> Result<Option<TotpRecord>, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |conn| {
            let row = conn
                .query_row(
                    "SELECT id, secret, confirmed, last_step, created_at FROM totp WHERE user_id = ?1",
                    [&user],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, bool>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, i64>(4)?,
                        ))
                    },
                )
                .optional()
                .map_err(db_error)?;
            let Some((id, secret, confirmed, last_step, created_at)) = row else {
                return Ok(None);
            };
            let mut stmt = conn
                .prepare("SELECT hash FROM recovery_codes WHERE user_id = ?1 ORDER BY hash")
                .map_err(db_error)?;
            let codes = stmt
                .query_map([&user], |r| r.get::<_, String>(0))
                .map_err(db_error)?
                .map(|h| h.map(TokenHash::from_stored).map_err(db_error))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(TotpRecord {
                id,
                secret,
                confirmed,
                last_step: u64::try_from(last_step).map_err(|e| corrupt("totp last step", e))?,
                recovery_codes: codes,
                created_at: Timestamp(created_at),
            }))
        })
        .await
    }

    async fn put_pending_totp(
        &self,
        user: &UserId,
        record: &TotpRecord,
    ) -> Result<bool, StoreError> {
        let user = user.as_str().to_owned();
        let record = record.clone();
        self.run(move |conn| {
            let written = conn
                .execute(
                    "INSERT INTO totp (user_id, id, secret, confirmed, last_step, created_at)
                     SELECT ?1, ?2, ?3, 0, 0, ?4 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?1)
                     ON CONFLICT (user_id) DO UPDATE SET id = excluded.id, secret = excluded.secret,
                         last_step = 0, created_at = excluded.created_at
                     WHERE totp.confirmed = 0",
                    params![user, record.id, record.secret, record.created_at.secs()],
                )
                .map_err(db_error)?;
            Ok(written == 1)
        })
        .await
    }

    async fn confirm_totp(
        &self,
        user: &UserId,
        id: &str,
        step: u64,
        codes: &[TokenHash],
    ) -> Result<bool, StoreError> {
        let (user, id) = (user.as_str().to_owned(), id.to_owned());
        let codes: Vec<String> = codes.iter().map(|c| c.as_str().to_owned()).collect();
        let step = i64::try_from(step).map_err(|e| corrupt("totp step", e))?;
        self.run(move |conn| {
            let tx = conn.transaction().map_err(db_error)?;
            let changed = tx
                .execute(
                    "UPDATE totp SET confirmed = 1, last_step = ?3
                     WHERE user_id = ?1 AND id = ?2 AND confirmed = 0",
                    params![user, id, step],
                )
                .map_err(db_error)?;
            if changed != 1 {
                return Ok(false);
            }
            tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [&user])
                .map_err(db_error)?;
            for code in &codes {
                tx.execute(
                    "INSERT INTO recovery_codes (user_id, hash) VALUES (?1, ?2)",
                    params![user, code],
                )
                .map_err(db_error)?;
            }
            tx.commit().map_err(db_error)?;
            Ok(true)
        })
        .await
    }

    async fn accept_totp_step(
        &self,
        user: &UserId,
        id: &str,
        step: u64,
    ) -> Result<bool, StoreError> {
        let (user, id) = (user.as_str().to_owned(), id.to_owned());
        let step = i64::try_from(step).map_err(|e| corrupt("totp step", e))?;
        self.run(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE totp SET last_step = ?3
                     WHERE user_id = ?1 AND id = ?2 AND confirmed = 1 AND last_step < ?3",
                    params![user, id, step],
                )
                .map_err(db_error)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn use_recovery_code(&self, user: &UserId, code: &TokenHash) -> Result<bool, StoreError> {
        let (user, code) = (user.as_str().to_owned(), code.as_str().to_owned());
        self.run(move |conn| {
            let used = conn
                .execute(
                    "DELETE FROM recovery_codes WHERE user_id = ?1 AND hash = ?2
                     AND EXISTS (SELECT 1 FROM totp WHERE user_id = ?1 AND confirmed = 1)",
                    params![user, code],
                )
                .map_err(db_error)?;
            Ok(used == 1)
        })
        .await
    }

    async fn delete_totp(&self, user: &UserId) -> Result<bool, StoreError> {
        let user = user.as_str().to_owned();
        // The codes go with the row through `ON DELETE CASCADE`.
        self.run(move |conn| {
            let deleted = conn
                .execute("DELETE FROM totp WHERE user_id = ?1", [user])
                .map_err(db_error)?;
            Ok(deleted == 1)
        })
        .await
    }
}
