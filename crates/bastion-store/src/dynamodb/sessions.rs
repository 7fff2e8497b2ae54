//! DynamoDB `SessionStore`: `USER#<id>`/`SESSION#<sid>` items and `REFRESH#<hash>` lookups.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ConditionCheck, Put, ReturnValue, TransactWriteItem, Update};
use bastion_core::crypto::TokenHash;
use bastion_core::{SessionId, Timestamp, UserId};

use super::item::{Item, PK, SK, TTL, corrupt, get_n, get_s, is_live, key, n, s};
use super::users::{PROFILE_SK, SESSION_EPOCH, user_pk};
use super::{DynamoStore, build_error, sdk_error};
use crate::{RefreshLookup, RotateOutcome, SessionRecord, SessionStore, StoreError};

const SESSION_PREFIX: &str = "SESSION#";

fn session_key(user: &UserId, id: &SessionId) -> Item {
    key(user_pk(user), format!("{SESSION_PREFIX}{id}"))
}

fn refresh_key(hash: &TokenHash) -> Item {
    key(format!("REFRESH#{}", hash.as_str()), "REFRESH")
}

fn lookup_put(
    table: &str,
    hash: &TokenHash,
    user: &UserId,
    session: &SessionId,
    expires_at: Timestamp,
) -> Result<TransactWriteItem, StoreError> {
    let mut item = refresh_key(hash);
    item.insert("user_id".into(), s(user.as_str()));
    item.insert("session_id".into(), s(session.as_str()));
    item.insert(TTL.into(), n(expires_at.secs()));
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

impl DynamoStore {
    async fn read_session(
        &self,
        user: &UserId,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(session_key(user, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &e))?;
        match out.item {
            Some(item) if is_live(&item, now)? => parse_session(&item).map(Some),
            _ => Ok(None),
        }
    }
}

#[async_trait]
impl SessionStore for DynamoStore {
    async fn create_session(
        &self,
        session: &SessionRecord,
        epoch: u64,
    ) -> Result<bool, StoreError> {
        let mut item = session_key(&session.user_id, &session.id);
        item.insert("id".into(), s(session.id.as_str()));
        item.insert("user_id".into(), s(session.user_id.as_str()));
        item.insert("refresh_hash".into(), s(session.refresh_hash.as_str()));
        item.insert("created_at".into(), n(session.created_at.secs()));
        item.insert("last_used_at".into(), n(session.last_used_at.secs()));
        item.insert(TTL.into(), n(session.expires_at.secs()));
        item.insert("ip".into(), s(&session.ip));
        item.insert("user_agent".into(), s(&session.user_agent));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        // Profiles written before the epoch existed have none: epoch 0.
        let condition = if epoch == 0 {
            "attribute_exists(pk) AND (attribute_not_exists(#e) OR #e = :e)"
        } else {
            "#e = :e"
        };
        let same_epoch = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(&session.user_id), PROFILE_SK)))
            .condition_expression(condition)
            .expression_attribute_names("#e", SESSION_EPOCH)
            .expression_attribute_values(":e", n(i64::try_from(epoch).unwrap_or(i64::MAX)))
            .build()
            .map_err(build_error)?;
        let actions = vec![
            TransactWriteItem::builder().put(put).build(),
            lookup_put(
                &self.table,
                &session.refresh_hash,
                &session.user_id,
                &session.id,
                session.expires_at,
            )?,
            TransactWriteItem::builder()
                .condition_check(same_epoch)
                .build(),
        ];
        match self.transact(actions).await {
            Ok(()) => Ok(true),
            Err(f) if f.condition_failed_at(2) => Ok(false),
            Err(f) => Err(f.into_store_error("create_session")),
        }
    }

    async fn get_session(
        &self,
        user: &UserId,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.read_session(user, id, now).await
    }

    async fn find_refresh(
        &self,
        hash: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<RefreshLookup>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(refresh_key(hash)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &e))?;
        let item = match out.item {
            Some(item) if is_live(&item, now)? => item,
            _ => return Ok(None),
        };
        Ok(Some(RefreshLookup {
            user_id: UserId::parse(get_s(&item, "user_id")?)
                .map_err(|e| corrupt("lookup user", e.message))?,
            session_id: SessionId::parse(get_s(&item, "session_id")?)
                .map_err(|e| corrupt("lookup session", e.message))?,
        }))
    }

    async fn rotate_refresh(
        &self,
        user: &UserId,
        id: &SessionId,
        old: &TokenHash,
        new: &TokenHash,
        now: Timestamp,
    ) -> Result<RotateOutcome, StoreError> {
        // The read only supplies the expiry for the new lookup and short-cuts the outcomes
        // that need no write; the transaction's condition is what makes rotation exclusive.
        let Some(session) = self.read_session(user, id, now).await? else {
            return Ok(RotateOutcome::SessionGone);
        };
        if !session.refresh_hash.ct_eq(old) {
            return Ok(RotateOutcome::Reused);
        }
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(session_key(user, id)))
            .update_expression("SET refresh_hash = :new, last_used_at = :now")
            .condition_expression("refresh_hash = :old AND #ttl > :now")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":new", s(new.as_str()))
            .expression_attribute_values(":old", s(old.as_str()))
            .expression_attribute_values(":now", n(now.secs()))
            .build()
            .map_err(build_error)?;
        let actions = vec![
            TransactWriteItem::builder().update(update).build(),
            lookup_put(&self.table, new, user, id, session.expires_at)?,
        ];
        match self.transact(actions).await {
            Ok(()) => Ok(RotateOutcome::Rotated),
            // Another caller won between our read and our write: it is a reuse if the session
            // is still there, else the session was revoked or expired meanwhile.
            Err(f) if f.condition_failed_at(0) => match self.read_session(user, id, now).await? {
                Some(_) => Ok(RotateOutcome::Reused),
                None => Ok(RotateOutcome::SessionGone),
            },
            Err(f) => Err(f.into_store_error("rotate_refresh")),
        }
    }

    async fn list_sessions(
        &self,
        user: &UserId,
        now: Timestamp,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let mut sessions = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .filter_expression("#ttl > :now")
                .expression_attribute_names("#ttl", TTL)
                .expression_attribute_values(":pk", s(user_pk(user)))
                .expression_attribute_values(":prefix", s(SESSION_PREFIX))
                .expression_attribute_values(":now", n(now.secs()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error("Query", &e))?;
            for item in out.items.unwrap_or_default() {
                // The filter already dropped expired items; re-checking keeps one rule.
                if is_live(&item, now)? {
                    sessions.push(parse_session(&item)?);
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        sessions.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        });
        Ok(sessions)
    }

    async fn revoke_session(&self, user: &UserId, id: &SessionId) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(session_key(user, id)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteItem", &e))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn revoke_all_sessions(
        &self,
        user: &UserId,
        keep: Option<&SessionId>,
    ) -> Result<u32, StoreError> {
        // The epoch first: should the deletes fail part-way, the device tokens are already
        // revoked and a retry finishes the sessions. No profile (a deleted account): nothing
        // to advance.
        self.update_profile_if(user, "ADD #v :v", SESSION_EPOCH, n(1), None)
            .await?;
        let keep_sk = keep.map(|k| format!("{SESSION_PREFIX}{k}"));
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(user_pk(user)))
                .expression_attribute_values(":prefix", s(SESSION_PREFIX))
                .projection_expression("pk, sk")
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error("Query", &e))?;
            for item in out.items.unwrap_or_default() {
                let sk = get_s(&item, SK)?;
                if keep_sk.as_deref() != Some(sk) {
                    keys.push(key(get_s(&item, PK)?, sk));
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        let count = u32::try_from(keys.len()).map_err(|_| corrupt("session count", keys.len()))?;
        self.batch_delete(keys).await?;
        Ok(count)
    }
}

fn parse_session(item: &Item) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        id: SessionId::parse(get_s(item, "id")?).map_err(|e| corrupt("session id", e.message))?,
        user_id: UserId::parse(get_s(item, "user_id")?)
            .map_err(|e| corrupt("session user", e.message))?,
        refresh_hash: TokenHash::from_stored(get_s(item, "refresh_hash")?.to_owned()),
        created_at: Timestamp(get_n(item, "created_at")?),
        last_used_at: Timestamp(get_n(item, "last_used_at")?),
        expires_at: Timestamp(get_n(item, TTL)?),
        ip: get_s(item, "ip")?.to_owned(),
        user_agent: get_s(item, "user_agent")?.to_owned(),
    })
}
