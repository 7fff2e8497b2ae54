//! Chat storage ports: conversations and their messages keyed under their `Owner`, and the
//! owner's daily credit counter with an atomic conditional debit.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bastion_core::crypto::random_bytes;
use bastion_core::{Owner, Timestamp, ValidationError};

use crate::{Page, StoreError};

/// Hex digits of the creation-second prefix of a conversation id.
const TIME_HEX: usize = 12;
/// Total length: the time prefix plus 128 random bits as 32 hex digits.
const CONVERSATION_ID_LEN: usize = TIME_HEX + 32;

/// A conversation: a creation-second prefix (so ids sort by age on both adapters) followed by
/// 128 random bits. Not a credential: every lookup is also keyed by the owner.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ConversationId(String);

impl ConversationId {
    /// A fresh id created at `now`.
    pub fn generate(now: Timestamp) -> Self {
        Self::from_parts(now, random_bytes::<16>())
    }

    /// The id built from a creation time and 16 bytes (random, or a digest for the one
    /// conversation of a channel owner).
    pub fn from_parts(created: Timestamp, tail: [u8; 16]) -> Self {
        let secs = u64::try_from(created.secs().max(0)).unwrap_or(0) & 0xffff_ffff_ffff;
        Self(format!("{secs:012x}{}", hex_lower(&tail)))
    }

    /// Accepts exactly what `generate` produces: 44 lowercase hex digits.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if s.len() == CONVERSATION_ID_LEN
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new(
                "invalid_id",
                "not a valid conversation id",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ConversationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageRole {
    User,
    Assistant,
}

impl MessageRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageRole::User => "user",
            MessageRole::Assistant => "assistant",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(MessageRole::User),
            "assistant" => Some(MessageRole::Assistant),
            _ => None,
        }
    }
}

/// A conversation as stored. `message_count` doubles as the optimistic-concurrency version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRecord {
    pub owner: Owner,
    pub id: ConversationId,
    pub title: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub message_count: u64,
}

/// One message; `seq` orders messages within their conversation (0, 1, 2, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub seq: u64,
    /// 32 hex digits, unique per message.
    pub id: String,
    pub role: MessageRole,
    pub content: String,
    pub created_at: Timestamp,
    /// The provider's token counts for the turn this assistant message answered (0 for user
    /// messages).
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// The model that wrote an assistant message; empty for user messages.
    pub model: String,
    /// An assistant message's agent steps (tool calls and results) as JSON text; empty when
    /// the turn called no tool. Sealed like `content`.
    pub steps: String,
    /// Why an assistant message's turn stopped (`end_turn`, `max_steps`, `client_disconnected`,
    /// …); empty for user messages and for answers stored before it was recorded. Not sealed:
    /// it is one of a few fixed words, never content.
    pub stop_reason: String,
}

/// One turn's writes: the conversation's new state and the messages it adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnWrite {
    /// The conversation after the turn (`message_count` includes `messages`).
    pub conversation: ConversationRecord,
    /// `None` creates the conversation; `Some(n)` requires its stored count still to be `n`.
    pub previous_count: Option<u64>,
    pub messages: Vec<MessageRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The conversation changed (another turn, a delete) or already exists since it was read.
    #[error("conversation changed concurrently")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[async_trait]
pub trait ConversationStore: Send + Sync {
    async fn get_conversation(
        &self,
        owner: &Owner,
        id: &ConversationId,
    ) -> Result<Option<ConversationRecord>, StoreError>;
    /// The owner's conversations, newest created first; `Ok(None)` for a malformed cursor.
    async fn list_conversations(
        &self,
        owner: &Owner,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Option<Page<ConversationRecord>>, StoreError>;
    /// A conversation's messages, newest first; `Ok(None)` for a malformed cursor. Does not
    /// check that the conversation exists.
    async fn list_messages(
        &self,
        owner: &Owner,
        id: &ConversationId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Option<Page<MessageRecord>>, StoreError>;
    /// Writes the turn atomically: all of it or none of it.
    async fn append_turn(&self, turn: &TurnWrite) -> Result<(), AppendError>;
    /// Removes the conversation and its messages; returns whether it existed.
    async fn delete_conversation(
        &self,
        owner: &Owner,
        id: &ConversationId,
    ) -> Result<bool, StoreError>;
}

/// The result of asking for one credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Debit {
    /// One credit taken; `remaining` are left today.
    Taken { remaining: u64 },
    /// Today's allowance is used up; nothing changed.
    Exhausted,
}

#[async_trait]
pub trait CreditStore: Send + Sync {
    /// Atomically takes one credit of `owner`'s `day` if fewer than `allowance` are used: the
    /// count of used credits can never exceed the allowance, whatever the concurrency. The
    /// counter carries `ttl` = `expires_at`.
    async fn debit(
        &self,
        owner: &Owner,
        day: i64,
        allowance: u64,
        expires_at: Timestamp,
    ) -> Result<Debit, StoreError>;
    /// Gives back one credit taken on `day`; never below zero used.
    async fn refund(&self, owner: &Owner, day: i64) -> Result<(), StoreError>;
}

/// Conversation cursors: base64url of the last returned id.
pub(crate) fn encode_conversation_cursor(id: &ConversationId) -> String {
    URL_SAFE_NO_PAD.encode(id.as_str())
}

pub(crate) fn decode_conversation_cursor(cursor: &str) -> Option<ConversationId> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    ConversationId::parse(std::str::from_utf8(&bytes).ok()?).ok()
}

/// Message cursors: base64url of `m<seq>` of the last returned message.
pub(crate) fn encode_message_cursor(seq: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("m{seq}"))
}

pub(crate) fn decode_message_cursor(cursor: &str) -> Option<u64> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let digits = text.strip_prefix('m')?;
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_ids_sort_by_creation_second_and_parse_back() {
        let a = ConversationId::generate(Timestamp(1_800_000_000));
        let b = ConversationId::generate(Timestamp(1_800_000_001));
        assert!(a < b);
        assert_eq!(a.as_str().len(), 44);
        assert_eq!(ConversationId::parse(a.as_str()).unwrap(), a);
        for bad in ["", "abc", &"A".repeat(44), &"0".repeat(45), "../etc/passwd"] {
            assert!(ConversationId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        let id = ConversationId::generate(Timestamp(5));
        assert_eq!(
            decode_conversation_cursor(&encode_conversation_cursor(&id)),
            Some(id)
        );
        assert_eq!(decode_message_cursor(&encode_message_cursor(42)), Some(42));
        for bad in ["", "!!", "bTE5OTk5OTk5OTk5OTk5OTk5OTk5", "eDE"] {
            assert_eq!(decode_message_cursor(bad), None, "{bad}");
            assert_eq!(decode_conversation_cursor(bad), None, "{bad}");
        }
    }
}
