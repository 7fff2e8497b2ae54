//! DynamoDB `ConversationStore` and `CreditStore`, all in the owner's partition: an account's
//! items live under `USER#<id>` (so deleting the account's partition removes them), a channel
//! owner's under `OWNER#<owner key>`.
//!
//! Items: `CONV#<id>` (conversation), `MSG#<id>#<seq, 20 digits>` (message), `CREDITS#<day>`
//! (used credits, with `ttl`).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem, Update};
use bastion_core::{Owner, Timestamp};

use super::item::{Item, PK, SK, TTL, corrupt, get_n, get_opt_s, get_s, key, n, s};
use super::users::user_pk;
use super::{DynamoStore, applied, build_error, sdk_error};
use crate::chat::{
    decode_conversation_cursor, decode_message_cursor, encode_conversation_cursor,
    encode_message_cursor,
};
use crate::{
    AppendError, ConversationId, ConversationRecord, ConversationStore, CreditStore, Debit,
    MessageRecord, MessageRole, Page, StoreError, TurnWrite,
};

pub(super) fn owner_pk(owner: &Owner) -> String {
    match owner {
        Owner::User(id) => user_pk(id),
        other => format!("OWNER#{}", other.key()),
    }
}

fn conversation_sk(id: &ConversationId) -> String {
    format!("CONV#{id}")
}

fn message_prefix(id: &ConversationId) -> String {
    format!("MSG#{id}#")
}

fn message_sk(id: &ConversationId, seq: u64) -> String {
    format!("MSG#{id}#{seq:020}")
}

fn credits_sk(day: i64) -> String {
    format!("CREDITS#{day}")
}

fn num(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_u(item: &Item, name: &str) -> Result<u64, StoreError> {
    let v = get_n(item, name)?;
    u64::try_from(v).map_err(|_| corrupt(name, v))
}

fn conversation_item(c: &ConversationRecord) -> Item {
    let mut item = key(owner_pk(&c.owner), conversation_sk(&c.id));
    item.insert("owner".into(), s(c.owner.key()));
    item.insert("id".into(), s(c.id.as_str()));
    item.insert("title".into(), s(&c.title));
    item.insert("created_at".into(), n(c.created_at.secs()));
    item.insert("updated_at".into(), n(c.updated_at.secs()));
    item.insert("message_count".into(), num(c.message_count));
    item
}

fn parse_conversation(item: &Item) -> Result<ConversationRecord, StoreError> {
    Ok(ConversationRecord {
        owner: Owner::parse_key(get_s(item, "owner")?).map_err(|e| corrupt("owner", e.message))?,
        id: ConversationId::parse(get_s(item, "id")?)
            .map_err(|e| corrupt("conversation id", e.message))?,
        title: get_s(item, "title")?.to_owned(),
        created_at: Timestamp(get_n(item, "created_at")?),
        updated_at: Timestamp(get_n(item, "updated_at")?),
        message_count: get_u(item, "message_count")?,
    })
}

fn message_item(owner: &Owner, conversation: &ConversationId, m: &MessageRecord) -> Item {
    let mut item = key(owner_pk(owner), message_sk(conversation, m.seq));
    item.insert("seq".into(), num(m.seq));
    item.insert("id".into(), s(&m.id));
    item.insert("role".into(), s(m.role.as_str()));
    item.insert("content".into(), s(&m.content));
    item.insert("created_at".into(), n(m.created_at.secs()));
    item.insert("prompt_tokens".into(), num(m.prompt_tokens));
    item.insert("completion_tokens".into(), num(m.completion_tokens));
    item.insert("model".into(), s(&m.model));
    // Absent when the turn called no tool: items written before steps existed read the same.
    if !m.steps.is_empty() {
        item.insert("steps".into(), s(&m.steps));
    }
    if !m.stop_reason.is_empty() {
        item.insert("stop_reason".into(), s(&m.stop_reason));
    }
    item
}

fn parse_message(item: &Item) -> Result<MessageRecord, StoreError> {
    let role = get_s(item, "role")?;
    Ok(MessageRecord {
        seq: get_u(item, "seq")?,
        id: get_s(item, "id")?.to_owned(),
        role: MessageRole::parse(role).ok_or_else(|| corrupt("role", role))?,
        content: get_s(item, "content")?.to_owned(),
        created_at: Timestamp(get_n(item, "created_at")?),
        prompt_tokens: get_u(item, "prompt_tokens")?,
        completion_tokens: get_u(item, "completion_tokens")?,
        model: get_s(item, "model")?.to_owned(),
        steps: get_opt_s(item, "steps")?.unwrap_or_default().to_owned(),
        stop_reason: get_opt_s(item, "stop_reason")?
            .unwrap_or_default()
            .to_owned(),
    })
}

impl DynamoStore {
    /// One page of `begins_with(sk, prefix)` newest (highest key) first, after `start_sk`.
    async fn query_desc(
        &self,
        pk: String,
        prefix: String,
        start_sk: Option<String>,
        limit: usize,
    ) -> Result<(Vec<Item>, bool), StoreError> {
        let fetch = i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX);
        let start = start_sk.map(|sk| key(pk.clone(), sk));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s(prefix))
            .scan_index_forward(false)
            .consistent_read(true)
            .limit(fetch)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| sdk_error("Query", &e))?;
        let mut items = out.items.unwrap_or_default();
        let more = items.len() > limit;
        items.truncate(limit);
        Ok((items, more))
    }
}

#[async_trait]
impl ConversationStore for DynamoStore {
    async fn get_conversation(
        &self,
        owner: &Owner,
        id: &ConversationId,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(owner_pk(owner), conversation_sk(id))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &e))?;
        out.item.as_ref().map(parse_conversation).transpose()
    }

    async fn list_conversations(
        &self,
        owner: &Owner,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Option<Page<ConversationRecord>>, StoreError> {
        let start = match cursor {
            None => None,
            Some(c) => match decode_conversation_cursor(c) {
                Some(id) => Some(conversation_sk(&id)),
                None => return Ok(None),
            },
        };
        let (items, more) = self
            .query_desc(owner_pk(owner), "CONV#".to_owned(), start, limit)
            .await?;
        let items = items
            .iter()
            .map(parse_conversation)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if more {
            items.last().map(|c| encode_conversation_cursor(&c.id))
        } else {
            None
        };
        Ok(Some(Page { items, next_cursor }))
    }

    async fn list_messages(
        &self,
        owner: &Owner,
        id: &ConversationId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Option<Page<MessageRecord>>, StoreError> {
        let start = match cursor {
            None => None,
            Some(c) => match decode_message_cursor(c) {
                Some(seq) => Some(message_sk(id, seq)),
                None => return Ok(None),
            },
        };
        let (items, more) = self
            .query_desc(owner_pk(owner), message_prefix(id), start, limit)
            .await?;
        let items = items
            .iter()
            .map(parse_message)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if more {
            items.last().map(|m| encode_message_cursor(m.seq))
        } else {
            None
        };
        Ok(Some(Page { items, next_cursor }))
    }

    async fn append_turn(&self, turn: &TurnWrite) -> Result<(), AppendError> {
        let c = &turn.conversation;
        let mut actions = Vec::with_capacity(turn.messages.len() + 1);
        let head = match turn.previous_count {
            None => {
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(conversation_item(c)))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().put(put).build()
            }
            Some(previous) => {
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(owner_pk(&c.owner), conversation_sk(&c.id))))
                    .update_expression("SET updated_at = :u, message_count = :new")
                    .condition_expression("message_count = :old")
                    .expression_attribute_values(":u", n(c.updated_at.secs()))
                    .expression_attribute_values(":new", num(c.message_count))
                    .expression_attribute_values(":old", num(previous))
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().update(update).build()
            }
        };
        actions.push(head);
        for m in &turn.messages {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(message_item(&c.owner, &c.id, m)))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(build_error)?;
            actions.push(TransactWriteItem::builder().put(put).build());
        }
        match self.transact(actions).await {
            Ok(()) => Ok(()),
            Err(f) if (0..=turn.messages.len()).any(|i| f.condition_failed_at(i)) => {
                Err(AppendError::Conflict)
            }
            Err(f) => Err(f.into_store_error("append_turn").into()),
        }
    }

    async fn delete_conversation(
        &self,
        owner: &Owner,
        id: &ConversationId,
    ) -> Result<bool, StoreError> {
        let pk = owner_pk(owner);
        // The conversation goes first: its messages are unreachable from then on, so a failure
        // while deleting them leaves nothing visible, and a retry finishes the job.
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(&pk, conversation_sk(id))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteItem", &e))?;
        let existed = out.attributes.is_some_and(|a| !a.is_empty());
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(&pk))
                .expression_attribute_values(":prefix", s(message_prefix(id)))
                .projection_expression("pk, sk")
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error("Query", &e))?;
            for item in out.items.unwrap_or_default() {
                keys.push(key(get_s(&item, PK)?, get_s(&item, SK)?));
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        if !keys.is_empty() {
            self.batch_delete(keys).await?;
        }
        Ok(existed)
    }
}

#[async_trait]
impl CreditStore for DynamoStore {
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
        // The condition and the `ADD` are one atomic step in DynamoDB: concurrent debits can
        // never push `used` past the allowance.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(owner_pk(owner), credits_sk(day))))
            .update_expression("ADD used :one SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(used) OR used < :allowance")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", n(expires_at.secs()))
            .expression_attribute_values(":allowance", num(allowance))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        let Some(out) = applied("UpdateItem", result)? else {
            return Ok(Debit::Exhausted);
        };
        let used = get_u(&out.attributes.unwrap_or_default(), "used")?;
        Ok(Debit::Taken {
            remaining: allowance.saturating_sub(used),
        })
    }

    async fn refund(&self, owner: &Owner, day: i64) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(owner_pk(owner), credits_sk(day))))
            .update_expression("ADD used :minus")
            .condition_expression("used > :zero")
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        // A refused condition means nothing was taken (or the counter expired): nothing to give back.
        applied("UpdateItem", result)?;
        Ok(())
    }
}
