//! SQLite `SessionStore`: sessions plus one lookup row per refresh-token hash ever issued.

use async_trait::async_trait;
use bastion_core::crypto::TokenHash;
use bastion_core::{SessionId, Timestamp, UserId};
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::{SqliteStore, corrupt, db_error};
use crate::{RefreshLookup, RotateOutcome, SessionRecord, SessionStore, StoreError};

const SESSION_COLUMNS: &str =
    "user_id, id, refresh_hash, created_at, last_used_at, expires_at, ip, user_agent";

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(
        &self,
        session: &SessionRecord,
        epoch: u64,
    ) -> Result<bool, StoreError> {
        let s = session.clone();
        let epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            let current: Option<i64> = tx
                .query_row(
                    "SELECT session_epoch FROM users WHERE id = ?1",
                    [s.user_id.as_str()],
                    |row| row.get(0),
                )
                .optional()
                .map_err(db_error)?;
            if current != Some(epoch) {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO sessions (user_id, id, refresh_hash, created_at, last_used_at, expires_at, ip, user_agent)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    s.user_id.as_str(),
                    s.id.as_str(),
                    s.refresh_hash.as_str(),
                    s.created_at.secs(),
                    s.last_used_at.secs(),
                    s.expires_at.secs(),
                    s.ip,
                    s.user_agent,
                ],
            )
            .map_err(db_error)?;
            insert_lookup(&tx, &s.refresh_hash, &s.user_id, &s.id, s.expires_at)?;
            tx.commit().map_err(db_error)?;
            Ok(true)
        })
        .await
    }

    async fn get_session(
        &self,
        user: &UserId,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let (user, id) = (user.as_str().to_owned(), id.as_str().to_owned());
        self.run(move |conn| {
            conn.query_row(
                &format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions
                     WHERE user_id = ?1 AND id = ?2 AND expires_at > ?3"
                ),
                params![user, id, now.secs()],
                raw_session,
            )
            .optional()
            .map_err(db_error)?
            .map(RawSession::into_record)
            .transpose()
        })
        .await
    }

    async fn find_refresh(
        &self,
        hash: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<RefreshLookup>, StoreError> {
        let hash = hash.as_str().to_owned();
        self.run(move |conn| {
            let row: Option<(String, String)> = conn
                .query_row(
                    "SELECT user_id, session_id FROM refresh_lookups
                     WHERE hash = ?1 AND expires_at > ?2",
                    params![hash, now.secs()],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(db_error)?;
            row.map(|(user, session)| {
                Ok(RefreshLookup {
                    user_id: UserId::parse(&user).map_err(|e| corrupt("lookup user", e.message))?,
                    session_id: SessionId::parse(&session)
                        .map_err(|e| corrupt("lookup session", e.message))?,
                })
            })
            .transpose()
        })
        .await
    }

    async fn rotate_refresh(
        &self,
        user: &UserId,
        id: &SessionId,
        old: &TokenHash,
        new: &TokenHash,
        now: Timestamp,
    ) -> Result<RotateOutcome, StoreError> {
        let (user, id) = (user.clone(), id.clone());
        let (old, new) = (old.clone(), new.clone());
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            // The compare-and-set: only a caller holding the current hash matches a row.
            let expires_at: Option<i64> = tx
                .query_row(
                    "UPDATE sessions SET refresh_hash = ?4, last_used_at = ?5
                     WHERE user_id = ?1 AND id = ?2 AND refresh_hash = ?3 AND expires_at > ?5
                     RETURNING expires_at",
                    params![
                        user.as_str(),
                        id.as_str(),
                        old.as_str(),
                        new.as_str(),
                        now.secs()
                    ],
                    |row| row.get(0),
                )
                .optional()
                .map_err(db_error)?;
            let outcome = match expires_at {
                Some(expires_at) => {
                    insert_lookup(&tx, &new, &user, &id, Timestamp(expires_at))?;
                    RotateOutcome::Rotated
                }
                None => {
                    let live: bool = tx
                        .query_row(
                            "SELECT EXISTS (SELECT 1 FROM sessions
                             WHERE user_id = ?1 AND id = ?2 AND expires_at > ?3)",
                            params![user.as_str(), id.as_str(), now.secs()],
                            |row| row.get(0),
                        )
                        .map_err(db_error)?;
                    if live {
                        RotateOutcome::Reused
                    } else {
                        RotateOutcome::SessionGone
                    }
                }
            };
            tx.commit().map_err(db_error)?;
            Ok(outcome)
        })
        .await
    }

    async fn list_sessions(
        &self,
        user: &UserId,
        now: Timestamp,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions
                     WHERE user_id = ?1 AND expires_at > ?2
                     ORDER BY created_at DESC, id DESC"
                ))
                .map_err(db_error)?;
            let rows = stmt
                .query_map(params![user, now.secs()], raw_session)
                .map_err(db_error)?;
            let mut sessions = Vec::new();
            for row in rows {
                sessions.push(row.map_err(db_error)?.into_record()?);
            }
            Ok(sessions)
        })
        .await
    }

    async fn revoke_session(&self, user: &UserId, id: &SessionId) -> Result<bool, StoreError> {
        let (user, id) = (user.as_str().to_owned(), id.as_str().to_owned());
        self.run(move |conn| {
            let deleted = conn
                .execute(
                    "DELETE FROM sessions WHERE user_id = ?1 AND id = ?2",
                    params![user, id],
                )
                .map_err(db_error)?;
            Ok(deleted == 1)
        })
        .await
    }

    async fn revoke_all_sessions(
        &self,
        user: &UserId,
        keep: Option<&SessionId>,
    ) -> Result<u32, StoreError> {
        let user = user.as_str().to_owned();
        let keep = keep.map(|k| k.as_str().to_owned());
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            tx.execute(
                "UPDATE users SET session_epoch = session_epoch + 1 WHERE id = ?1",
                [&user],
            )
            .map_err(db_error)?;
            let deleted = tx
                .execute(
                    "DELETE FROM sessions WHERE user_id = ?1 AND (?2 IS NULL OR id <> ?2)",
                    params![user, keep],
                )
                .map_err(db_error)?;
            tx.commit().map_err(db_error)?;
            u32::try_from(deleted).map_err(|_| corrupt("session count", deleted))
        })
        .await
    }
}

fn insert_lookup(
    conn: &rusqlite::Connection,
    hash: &TokenHash,
    user: &UserId,
    session: &SessionId,
    expires_at: Timestamp,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO refresh_lookups (hash, user_id, session_id, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![hash.as_str(), user.as_str(), session.as_str(), expires_at.secs()],
    )
    .map_err(db_error)?;
    Ok(())
}

struct RawSession {
    user_id: String,
    id: String,
    refresh_hash: String,
    created_at: i64,
    last_used_at: i64,
    expires_at: i64,
    ip: String,
    user_agent: String,
}

fn raw_session(row: &Row<'_>) -> rusqlite::Result<RawSession> {
    Ok(RawSession {
        user_id: row.get(0)?,
        id: row.get(1)?,
        refresh_hash: row.get(2)?,
        created_at: row.get(3)?,
        last_used_at: row.get(4)?,
        expires_at: row.get(5)?,
        ip: row.get(6)?,
        user_agent: row.get(7)?,
    })
}

impl RawSession {
    fn into_record(self) -> Result<SessionRecord, StoreError> {
        Ok(SessionRecord {
            id: SessionId::parse(&self.id).map_err(|e| corrupt("session id", e.message))?,
            user_id: UserId::parse(&self.user_id)
                .map_err(|e| corrupt("session user", e.message))?,
            refresh_hash: TokenHash::from_stored(self.refresh_hash),
            created_at: Timestamp(self.created_at),
            last_used_at: Timestamp(self.last_used_at),
            expires_at: Timestamp(self.expires_at),
            ip: self.ip,
            user_agent: self.user_agent,
        })
    }
}
