//! `SealedConversations`: a `ConversationStore` decorator that seals message text and
//! conversation titles before they reach the adapter and opens them on the way back, so both
//! adapters and every caller (chat routes, channel replies and their replays) get it.
//!
//! Each value is bound to its owner (the data key's context) and to its item (AEAD additional
//! data: the conversation id, and `title` or `message` plus the sequence number), so a value
//! copied to another owner, conversation or position fails to open. Such a value is corrupt: it
//! is never returned, the failure is logged with the owner and item (never content) and the
//! read fails with `StoreError::Corrupt`, which the functions answer with 503 `unavailable`.
//! Metadata (ids, roles, timestamps, token counts, model names, counts) stays plaintext.

use std::sync::Arc;

use async_trait::async_trait;
use bastion_core::Owner;
use bastion_core::envelope::{ContentContext, ContentSealer, PURPOSE_CHAT, SealError};

use crate::chat::{
    AppendError, ConversationId, ConversationRecord, ConversationStore, MessageRecord, TurnWrite,
};
use crate::{Page, StoreError, Stores};

/// The decorator; see the module documentation.
pub struct SealedConversations {
    inner: Arc<dyn ConversationStore>,
    sealer: Arc<ContentSealer>,
}

impl SealedConversations {
    pub fn new(inner: Arc<dyn ConversationStore>, sealer: Arc<ContentSealer>) -> Self {
        Self { inner, sealer }
    }
}

impl Stores {
    /// These stores with chat content and TOTP secrets sealed under `sealer` (one line per
    /// function's main).
    pub fn with_content_sealing(mut self, sealer: Arc<ContentSealer>) -> Self {
        self.mfa = Arc::new(crate::sealed_mfa::SealedMfa::new(self.mfa, sealer.clone()));
        self.conversations = Arc::new(SealedConversations::new(self.conversations, sealer));
        self
    }
}

fn context(owner: &Owner) -> ContentContext {
    ContentContext::new(PURPOSE_CHAT, owner.key())
}

fn seq_text(seq: u64) -> String {
    seq.to_string()
}

fn store_error(owner: &Owner, id: &ConversationId, item: &str, e: SealError) -> StoreError {
    match e {
        SealError::Unavailable(k) => StoreError::Unavailable(k.to_string()),
        SealError::Corrupt(why) => {
            tracing::error!(owner = %owner.key(), conversation = %id, item, error = %why, "sealed chat content failed to open; not shown");
            StoreError::Corrupt(format!("sealed {item} of conversation {id}: {why}"))
        }
    }
}

impl SealedConversations {
    async fn open_conversation(
        &self,
        mut c: ConversationRecord,
    ) -> Result<ConversationRecord, StoreError> {
        let ctx = context(&c.owner);
        c.title = self
            .sealer
            .open(&ctx, &[c.id.as_str(), "title"], &c.title)
            .await
            .map_err(|e| store_error(&c.owner, &c.id, "title", e))?;
        Ok(c)
    }

    async fn open_message(
        &self,
        owner: &Owner,
        id: &ConversationId,
        mut m: MessageRecord,
    ) -> Result<MessageRecord, StoreError> {
        let seq = seq_text(m.seq);
        m.content = self
            .sealer
            .open(&context(owner), &[id.as_str(), "message", &seq], &m.content)
            .await
            .map_err(|e| store_error(owner, id, "message", e))?;
        if !m.steps.is_empty() {
            m.steps = self
                .sealer
                .open(&context(owner), &[id.as_str(), "steps", &seq], &m.steps)
                .await
                .map_err(|e| store_error(owner, id, "steps", e))?;
        }
        Ok(m)
    }
}

#[async_trait]
impl ConversationStore for SealedConversations {
    async fn get_conversation(
        &self,
        owner: &Owner,
        id: &ConversationId,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        match self.inner.get_conversation(owner, id).await? {
            Some(c) => Ok(Some(self.open_conversation(c).await?)),
            None => Ok(None),
        }
    }

    async fn list_conversations(
        &self,
        owner: &Owner,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Option<Page<ConversationRecord>>, StoreError> {
        let Some(page) = self.inner.list_conversations(owner, cursor, limit).await? else {
            return Ok(None);
        };
        let mut items = Vec::with_capacity(page.items.len());
        for c in page.items {
            items.push(self.open_conversation(c).await?);
        }
        Ok(Some(Page {
            items,
            next_cursor: page.next_cursor,
        }))
    }

    async fn list_messages(
        &self,
        owner: &Owner,
        id: &ConversationId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Option<Page<MessageRecord>>, StoreError> {
        let Some(page) = self.inner.list_messages(owner, id, cursor, limit).await? else {
            return Ok(None);
        };
        let mut items = Vec::with_capacity(page.items.len());
        for m in page.items {
            items.push(self.open_message(owner, id, m).await?);
        }
        Ok(Some(Page {
            items,
            next_cursor: page.next_cursor,
        }))
    }

    async fn append_turn(&self, turn: &TurnWrite) -> Result<(), AppendError> {
        let conv = &turn.conversation;
        let ctx = context(&conv.owner);
        let id = conv.id.as_str();
        let mut sealed = turn.clone();
        sealed.conversation.title = self
            .sealer
            .seal(&ctx, &[id, "title"], &conv.title)
            .await
            .map_err(|e| store_error(&conv.owner, &conv.id, "title", e))?;
        for m in &mut sealed.messages {
            let seq = seq_text(m.seq);
            m.content = self
                .sealer
                .seal(&ctx, &[id, "message", &seq], &m.content)
                .await
                .map_err(|e| store_error(&conv.owner, &conv.id, "message", e))?;
            if !m.steps.is_empty() {
                m.steps = self
                    .sealer
                    .seal(&ctx, &[id, "steps", &seq], &m.steps)
                    .await
                    .map_err(|e| store_error(&conv.owner, &conv.id, "steps", e))?;
            }
        }
        self.inner.append_turn(&sealed).await
    }

    async fn delete_conversation(
        &self,
        owner: &Owner,
        id: &ConversationId,
    ) -> Result<bool, StoreError> {
        self.inner.delete_conversation(owner, id).await
    }
}
