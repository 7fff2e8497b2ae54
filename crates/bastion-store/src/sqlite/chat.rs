//! SQLite `ConversationStore` and `CreditStore`: rows keyed by the owner's key, turns written
//! in one transaction, credits taken by one conditional upsert.

use async_trait::async_trait;
use bastion_core::{Owner, Timestamp};
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::{SqliteStore, corrupt, db_error};
use crate::chat::{
    decode_conversation_cursor, decode_message_cursor, encode_conversation_cursor,
    encode_message_cursor,
};
use crate::{
    AppendError, ConversationId, ConversationRecord, ConversationStore, CreditStore, Debit,
    MessageRecord, MessageRole, Page, StoreError, TurnWrite,
};

fn to_i64(what: &str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| corrupt(what, v))
}

fn to_u64(what: &str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| corrupt(what, v))
}

struct RawConversation {
    owner: String,
    id: String,
    title: String,
    created_at: i64,
    updated_at: i64,
    message_count: i64,
}

const CONVERSATION_COLUMNS: &str = "owner, id, title, created_at, updated_at, message_count";

fn raw_conversation(row: &Row<'_>) -> rusqlite::Result<RawConversation> {
    Ok(RawConversation {
        owner: row.get(0)?,
        id: row.get(1)?,
        title: row.get(2)?,
        created_at: row.get(3)?,
        updated_at: row.get(4)?,
        message_count: row.get(5)?,
    })
}

impl RawConversation {
    fn into_record(self) -> Result<ConversationRecord, StoreError> {
        Ok(ConversationRecord {
            owner: Owner::parse_key(&self.owner).map_err(|e| corrupt("owner", e.message))?,
            id: ConversationId::parse(&self.id)
                .map_err(|e| corrupt("conversation id", e.message))?,
            title: self.title,
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
            message_count: to_u64("message count", self.message_count)?,
        })
    }
}

struct RawMessage {
    seq: i64,
    id: String,
    role: String,
    content: String,
    created_at: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    model: String,
    steps: String,
    stop_reason: String,
}

const MESSAGE_COLUMNS: &str = "seq, id, role, content, created_at, prompt_tokens, completion_tokens, model, steps, stop_reason";

fn raw_message(row: &Row<'_>) -> rusqlite::Result<RawMessage> {
    Ok(RawMessage {
        seq: row.get(0)?,
        id: row.get(1)?,
        role: row.get(2)?,
        content: row.get(3)?,
        created_at: row.get(4)?,
        prompt_tokens: row.get(5)?,
        completion_tokens: row.get(6)?,
        model: row.get(7)?,
        steps: row.get(8)?,
        stop_reason: row.get(9)?,
    })
}

impl RawMessage {
    fn into_record(self) -> Result<MessageRecord, StoreError> {
        Ok(MessageRecord {
            seq: to_u64("message seq", self.seq)?,
            id: self.id,
            role: MessageRole::parse(&self.role).ok_or_else(|| corrupt("role", &self.role))?,
            content: self.content,
            created_at: Timestamp(self.created_at),
            prompt_tokens: to_u64("prompt tokens", self.prompt_tokens)?,
            completion_tokens: to_u64("completion tokens", self.completion_tokens)?,
            model: self.model,
            steps: self.steps,
            stop_reason: self.stop_reason,
        })
    }
}

#[async_trait]
impl ConversationStore for SqliteStore {
    async fn get_conversation(
        &self,
        owner: &Owner,
        id: &ConversationId,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        let (owner, id) = (owner.key(), id.as_str().to_owned());
        self.run(move |conn| {
            conn.query_row(
                &format!(
                    "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE owner = ?1 AND id = ?2"
                ),
                params![owner, id],
                raw_conversation,
            )
            .optional()
            .map_err(db_error)?
            .map(RawConversation::into_record)
            .transpose()
        })
        .await
    }

    async fn list_conversations(
        &self,
        owner: &Owner,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Option<Page<ConversationRecord>>, StoreError> {
        let after = match cursor {
            None => None,
            Some(c) => match decode_conversation_cursor(c) {
                Some(id) => Some(id.as_str().to_owned()),
                None => return Ok(None),
            },
        };
        let owner = owner.key();
        let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let rows = self
            .run(move |conn| {
                let mut stmt = conn
                    .prepare(&format!(
                        "SELECT {CONVERSATION_COLUMNS} FROM conversations
                         WHERE owner = ?1 AND (?2 IS NULL OR id < ?2)
                         ORDER BY id DESC LIMIT ?3"
                    ))
                    .map_err(db_error)?;
                let rows = stmt
                    .query_map(params![owner, after, fetch], raw_conversation)
                    .map_err(db_error)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(db_error)?;
                rows.into_iter()
                    .map(RawConversation::into_record)
                    .collect::<Result<Vec<_>, StoreError>>()
            })
            .await?;
        Ok(Some(page(rows, limit, |c| {
            encode_conversation_cursor(&c.id)
        })))
    }

    async fn list_messages(
        &self,
        owner: &Owner,
        id: &ConversationId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Option<Page<MessageRecord>>, StoreError> {
        let before = match cursor {
            None => None,
            Some(c) => match decode_message_cursor(c) {
                Some(seq) => Some(to_i64("cursor", seq)?),
                None => return Ok(None),
            },
        };
        let (owner, id) = (owner.key(), id.as_str().to_owned());
        let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let rows = self
            .run(move |conn| {
                let mut stmt = conn
                    .prepare(&format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages
                         WHERE owner = ?1 AND conversation_id = ?2 AND (?3 IS NULL OR seq < ?3)
                         ORDER BY seq DESC LIMIT ?4"
                    ))
                    .map_err(db_error)?;
                let rows = stmt
                    .query_map(params![owner, id, before, fetch], raw_message)
                    .map_err(db_error)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(db_error)?;
                rows.into_iter()
                    .map(RawMessage::into_record)
                    .collect::<Result<Vec<_>, StoreError>>()
            })
            .await?;
        Ok(Some(page(rows, limit, |m| encode_message_cursor(m.seq))))
    }

    async fn append_turn(&self, turn: &TurnWrite) -> Result<(), AppendError> {
        let turn = turn.clone();
        self.run(move |conn| {
            let c = &turn.conversation;
            let owner = c.owner.key();
            let count = to_i64("message count", c.message_count)?;
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            let changed = match turn.previous_count {
                None => tx
                    .execute(
                        "INSERT INTO conversations (owner, id, title, created_at, updated_at, message_count)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                        params![owner, c.id.as_str(), c.title, c.created_at.secs(), c.updated_at.secs(), count],
                    )
                    .map_err(db_error)?,
                Some(previous) => tx
                    .execute(
                        "UPDATE conversations SET updated_at = ?3, message_count = ?4
                         WHERE owner = ?1 AND id = ?2 AND message_count = ?5",
                        params![owner, c.id.as_str(), c.updated_at.secs(), count, to_i64("message count", previous)?],
                    )
                    .map_err(db_error)?,
            };
            if changed != 1 {
                // Dropping the transaction rolls it back: nothing of the turn is written.
                return Err(AppendError::Conflict);
            }
            for m in &turn.messages {
                let inserted = tx
                    .execute(
                        &format!(
                            "INSERT INTO messages (owner, conversation_id, {MESSAGE_COLUMNS})
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT DO NOTHING"
                        ),
                        params![
                            owner,
                            c.id.as_str(),
                            to_i64("message seq", m.seq)?,
                            m.id,
                            m.role.as_str(),
                            m.content,
                            m.created_at.secs(),
                            to_i64("prompt tokens", m.prompt_tokens)?,
                            to_i64("completion tokens", m.completion_tokens)?,
                            m.model,
                            m.steps,
                            m.stop_reason,
                        ],
                    )
                    .map_err(db_error)?;
                if inserted != 1 {
                    return Err(AppendError::Conflict);
                }
            }
            tx.commit().map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn delete_conversation(
        &self,
        owner: &Owner,
        id: &ConversationId,
    ) -> Result<bool, StoreError> {
        let (owner, id) = (owner.key(), id.as_str().to_owned());
        // Messages go with the row through `ON DELETE CASCADE`, in the same statement.
        self.run(move |conn| {
            let deleted = conn
                .execute(
                    "DELETE FROM conversations WHERE owner = ?1 AND id = ?2",
                    params![owner, id],
                )
                .map_err(db_error)?;
            Ok(deleted == 1)
        })
        .await
    }
}

/// Cuts a `limit + 1` fetch to a page, with a cursor only when there is more.
fn page<T>(mut rows: Vec<T>, limit: usize, cursor_of: impl Fn(&T) -> String) -> Page<T> {
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = if more {
        rows.last().map(cursor_of)
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

#[async_trait]
impl CreditStore for SqliteStore {
    async fn debit(
        &self,
        owner: &Owner,
        day: i64,
        allowance: u64,
        expires_at: Timestamp,
    ) -> Result<Debit, StoreError> {
        if allowance == 0 {
            return Ok(Debit::Exhausted);
        }
        let owner = owner.key();
        let allowance_i = to_i64("allowance", allowance)?;
        self.run(move |conn| {
            // The conflict branch's WHERE makes the upsert a no-op (and return no row) once the
            // allowance is used, so "check and take" is one atomic statement.
            let used: Option<i64> = conn
                .query_row(
                    "INSERT INTO credits (owner, day, used, expires_at) VALUES (?1, ?2, 1, ?3)
                     ON CONFLICT (owner, day) DO UPDATE
                         SET used = used + 1, expires_at = excluded.expires_at
                         WHERE used < ?4
                     RETURNING used",
                    params![owner, day, expires_at.secs(), allowance_i],
                    |row| row.get(0),
                )
                .optional()
                .map_err(db_error)?;
            match used {
                None => Ok(Debit::Exhausted),
                Some(used) => Ok(Debit::Taken {
                    remaining: allowance.saturating_sub(to_u64("credits used", used)?),
                }),
            }
        })
        .await
    }

    async fn refund(&self, owner: &Owner, day: i64) -> Result<(), StoreError> {
        let owner = owner.key();
        self.run(move |conn| {
            conn.execute(
                "UPDATE credits SET used = used - 1 WHERE owner = ?1 AND day = ?2 AND used > 0",
                params![owner, day],
            )
            .map_err(db_error)?;
            Ok(())
        })
        .await
    }
}
