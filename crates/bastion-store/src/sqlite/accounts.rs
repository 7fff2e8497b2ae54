//! SQLite `AccountStore`, `OneTimeStore` and `AuditDayStore`.

use async_trait::async_trait;
use bastion_core::audit::AuditEvent;
use bastion_core::crypto::TokenHash;
use bastion_core::{Role, Timestamp, UserId};
use rusqlite::{OptionalExtension, params};

use super::audit::{audit_page, raw_event};
use super::users::{USER_COLUMNS, encode_roles, insert_user, is_unique_violation_of, raw_user};
use super::{SqliteStore, db_error};
use crate::keys::decode_audit_cursor;
use crate::{AccountStore, AuditDayStore, LinkError, OneTimeStore, Page, StoreError, UserRecord};

const DAY_SECS: i64 = 24 * 3600;

#[async_trait]
impl OneTimeStore for SqliteStore {
    async fn put_one_time(
        &self,
        purpose: &str,
        hash: &TokenHash,
        payload: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let (purpose, hash, payload) = (
            purpose.to_owned(),
            hash.as_str().to_owned(),
            payload.to_owned(),
        );
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO one_time (purpose, hash, payload, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![purpose, hash, payload, expires_at.secs()],
            )
            .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn take_one_time(
        &self,
        purpose: &str,
        hash: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<String>, StoreError> {
        let (purpose, hash) = (purpose.to_owned(), hash.as_str().to_owned());
        self.run(move |conn| {
            // DELETE … RETURNING is one statement: only one caller can see the row.
            let row: Option<(String, i64)> = conn
                .query_row(
                    "DELETE FROM one_time WHERE purpose = ?1 AND hash = ?2
                     RETURNING payload, expires_at",
                    params![purpose, hash],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db_error)?;
            Ok(row
                .filter(|(_, expires_at)| *expires_at > now.secs())
                .map(|(p, _)| p))
        })
        .await
    }
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn find_user_by_google(&self, sub: &str) -> Result<Option<UserRecord>, StoreError> {
        let sub = sub.to_owned();
        self.run(move |conn| {
            let cols = USER_COLUMNS
                .split(", ")
                .map(|c| format!("u.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            conn.query_row(
                &format!(
                    "SELECT {cols} FROM google_links g JOIN users u ON u.id = g.user_id
                     WHERE g.sub = ?1"
                ),
                [sub],
                raw_user,
            )
            .optional()
            .map_err(db_error)?
            .map(super::users::RawUser::into_record)
            .transpose()
        })
        .await
    }

    async fn create_google_user(&self, user: &UserRecord, sub: &str) -> Result<(), LinkError> {
        let user = user.clone();
        let sub = sub.to_owned();
        let roles = encode_roles(&user.roles)?;
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(db_error)?;
            let taken: bool = tx
                .query_row("SELECT 1 FROM google_links WHERE sub = ?1", [&sub], |_| {
                    Ok(true)
                })
                .optional()
                .map_err(db_error)?
                .unwrap_or(false);
            if taken {
                return Err(LinkError::IdentityTaken);
            }
            let inserted = insert_user(&tx, &user, &roles);
            match inserted {
                Ok(_) => {}
                Err(e) if is_unique_violation_of(&e, "users.email") => {
                    return Err(LinkError::EmailTaken);
                }
                Err(e) => return Err(db_error(e).into()),
            }
            tx.execute(
                "INSERT INTO google_links (sub, user_id) VALUES (?1, ?2)",
                params![sub, user.id.as_str()],
            )
            .map_err(db_error)?;
            tx.commit().map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn link_google(&self, user: &UserId, sub: &str) -> Result<(), LinkError> {
        let (user, sub) = (user.as_str().to_owned(), sub.to_owned());
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(db_error)?;
            let exists = tx
                .query_row("SELECT 1 FROM users WHERE id = ?1", [&user], |_| Ok(()))
                .optional()
                .map_err(db_error)?
                .is_some();
            if !exists {
                return Err(LinkError::UserGone);
            }
            match tx.execute(
                "INSERT INTO google_links (sub, user_id) VALUES (?1, ?2)",
                params![sub, user],
            ) {
                Ok(_) => {}
                Err(e)
                    if is_unique_violation_of(&e, "google_links.sub")
                        || is_unique_violation_of(&e, "google_links.user_id")
                        || matches!(&e, rusqlite::Error::SqliteFailure(err, _)
                            if err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY) =>
                {
                    return Err(LinkError::IdentityTaken);
                }
                Err(e) => return Err(db_error(e).into()),
            }
            tx.commit().map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn unlink_google(&self, user: &UserId) -> Result<bool, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |conn| {
            let n = conn
                .execute("DELETE FROM google_links WHERE user_id = ?1", [&user])
                .map_err(db_error)?;
            Ok(n > 0)
        })
        .await
    }

    async fn set_roles(&self, user: &UserId, roles: &[Role]) -> Result<bool, StoreError> {
        let user = user.as_str().to_owned();
        let roles = encode_roles(roles)?;
        self.run(move |conn| {
            let n = conn
                .execute(
                    "UPDATE users SET roles = ?2 WHERE id = ?1",
                    params![user, roles],
                )
                .map_err(db_error)?;
            Ok(n == 1)
        })
        .await
    }

    async fn set_disabled(&self, user: &UserId, disabled: bool) -> Result<bool, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |conn| {
            let n = conn
                .execute(
                    "UPDATE users SET disabled = ?2 WHERE id = ?1",
                    params![user, disabled],
                )
                .map_err(db_error)?;
            Ok(n == 1)
        })
        .await
    }
}

#[async_trait]
impl AuditDayStore for SqliteStore {
    async fn list_for_day(
        &self,
        day: Timestamp,
        cursor: Option<&str>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Option<Page<AuditEvent>>, StoreError> {
        let after = match cursor {
            Some(raw) => match decode_audit_cursor(raw) {
                Some(position) => Some(position),
                None => return Ok(None),
            },
            None => None,
        };
        if limit == 0 {
            return Ok(Some(Page {
                items: Vec::new(),
                next_cursor: None,
            }));
        }
        let start = day.secs() - day.secs().rem_euclid(DAY_SECS);
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1);
        let (after_at, after_id) = match &after {
            Some((at, id)) => (Some(at.secs()), Some(id.as_str().to_owned())),
            None => (None, None),
        };
        self.run(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT at, id, kind, outcome, user_id, ip, user_agent, request_id, detail
                     FROM audit
                     WHERE at >= ?1 AND at < ?2 AND expires_at > ?3
                       AND (?4 IS NULL OR (at, id) < (?4, ?5))
                     ORDER BY at DESC, id DESC
                     LIMIT ?6",
                )
                .map_err(db_error)?;
            let rows = stmt
                .query_map(
                    params![
                        start,
                        start + DAY_SECS,
                        now.secs(),
                        after_at,
                        after_id,
                        fetch
                    ],
                    raw_event,
                )
                .map_err(db_error)?;
            audit_page(rows, limit).map(Some)
        })
        .await
    }
}
