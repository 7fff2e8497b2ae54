//! DynamoDB `AccountStore`, `OneTimeStore` and `AuditDayStore`.
//!
//! Google links are a `GOOGLE#<sub>`/`USER` guard plus a `USER#<id>`/`LINK#GOOGLE` pointer
//! naming it as its twin; one-time records are `ONCE#<purpose>#<hash>`/`ONCE`, taken with a
//! conditional DeleteItem that returns the old item.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, ReturnValue, TransactWriteItem};
use bastion_core::audit::AuditEvent;
use bastion_core::crypto::TokenHash;
use bastion_core::{Role, Timestamp, UserId};

use super::audit::parse_event;
use super::item::{TTL, TWIN_PK, TWIN_SK, corrupt, get_n, get_s, is_live, key, n, s};
use super::users::{PROFILE_SK, profile_and_guard, put_new, roles_value, user_pk};
use super::{DynamoStore, GSI1, build_error, sdk_error};
use crate::keys::{audit_sort_key, decode_audit_cursor, encode_audit_cursor};
use crate::{
    AccountStore, AuditDayStore, LinkError, OneTimeStore, Page, StoreError, UserRecord, UserStore,
};

const GOOGLE_LINK_SK: &str = "LINK#GOOGLE";

fn google_key(sub: &str) -> super::item::Item {
    key(format!("GOOGLE#{sub}"), "USER")
}

fn once_key(purpose: &str, hash: &TokenHash) -> super::item::Item {
    key(format!("ONCE#{purpose}#{}", hash.as_str()), "ONCE")
}

/// The guard and the pointer that together link `sub` to `user`.
fn link_items(user: &UserId, sub: &str) -> (super::item::Item, super::item::Item) {
    let mut guard = google_key(sub);
    guard.insert("user_id".into(), s(user.as_str()));
    let mut pointer = key(user_pk(user), GOOGLE_LINK_SK);
    pointer.insert("sub".into(), s(sub));
    pointer.insert(TWIN_PK.into(), s(format!("GOOGLE#{sub}")));
    pointer.insert(TWIN_SK.into(), s("USER"));
    (guard, pointer)
}

#[async_trait]
impl OneTimeStore for DynamoStore {
    async fn put_one_time(
        &self,
        purpose: &str,
        hash: &TokenHash,
        payload: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut item = once_key(purpose, hash);
        item.insert("payload".into(), s(payload));
        item.insert(TTL.into(), n(expires_at.secs()));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| sdk_error("PutItem", &e))?;
        Ok(())
    }

    async fn take_one_time(
        &self,
        purpose: &str,
        hash: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<String>, StoreError> {
        // Only the caller whose delete removed the item gets it back: single use.
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(once_key(purpose, hash)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteItem", &e))?;
        let Some(old) = out.attributes.filter(|a| !a.is_empty()) else {
            return Ok(None);
        };
        if !is_live(&old, now)? {
            return Ok(None);
        }
        Ok(Some(get_s(&old, "payload")?.to_owned()))
    }
}

#[async_trait]
impl AccountStore for DynamoStore {
    async fn find_user_by_google(&self, sub: &str) -> Result<Option<UserRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(google_key(sub)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &e))?;
        let Some(guard) = out.item else {
            return Ok(None);
        };
        let id = UserId::parse(get_s(&guard, "user_id")?)
            .map_err(|e| corrupt("google link user id", e.message))?;
        self.get_user(&id).await
    }

    async fn create_google_user(&self, user: &UserRecord, sub: &str) -> Result<(), LinkError> {
        let (profile, email_guard) = profile_and_guard(user);
        let (google_guard, pointer) = link_items(&user.id, sub);
        let items = vec![
            put_new(&self.table, profile)?,
            put_new(&self.table, email_guard)?,
            put_new(&self.table, google_guard)?,
            put_new(&self.table, pointer)?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(f) if f.condition_failed_at(2) => Err(LinkError::IdentityTaken),
            Err(f) if f.condition_failed_at(1) => Err(LinkError::EmailTaken),
            Err(f) => Err(f.into_store_error("create_google_user").into()),
        }
    }

    async fn link_google(&self, user: &UserId, sub: &str) -> Result<(), LinkError> {
        let exists = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), PROFILE_SK)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(build_error)?;
        let (guard, pointer) = link_items(user, sub);
        let items = vec![
            TransactWriteItem::builder().condition_check(exists).build(),
            put_new(&self.table, guard)?,
            put_new(&self.table, pointer)?,
        ];
        match self.transact(items).await {
            Ok(()) => Ok(()),
            Err(f) if f.condition_failed_at(0) => Err(LinkError::UserGone),
            Err(f) if f.condition_failed_at(1) || f.condition_failed_at(2) => {
                Err(LinkError::IdentityTaken)
            }
            Err(f) => Err(f.into_store_error("link_google").into()),
        }
    }

    async fn unlink_google(&self, user: &UserId) -> Result<bool, StoreError> {
        let pointer_key = key(user_pk(user), GOOGLE_LINK_SK);
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(pointer_key.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &e))?;
        let Some(pointer) = out.item else {
            return Ok(false);
        };
        let sub = get_s(&pointer, "sub")?;
        // Both go together, the pointer only if it still names this subject, the guard only
        // if it still names this user.
        let drop_pointer = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(pointer_key))
            .condition_expression("#sub = :sub")
            .expression_attribute_names("#sub", "sub")
            .expression_attribute_values(":sub", s(sub))
            .build()
            .map_err(build_error)?;
        let drop_guard = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(google_key(sub)))
            .condition_expression("user_id = :id")
            .expression_attribute_values(":id", s(user.as_str()))
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().delete(drop_pointer).build(),
            TransactWriteItem::builder().delete(drop_guard).build(),
        ];
        match self.transact(items).await {
            Ok(()) => Ok(true),
            // Unlinked (or relinked) concurrently.
            Err(f) if f.condition_failed_at(0) => Ok(false),
            Err(f) => Err(f.into_store_error("unlink_google")),
        }
    }

    async fn set_roles(&self, user: &UserId, roles: &[Role]) -> Result<bool, StoreError> {
        self.update_profile(user, "roles", roles_value(roles)).await
    }

    async fn set_disabled(&self, user: &UserId, disabled: bool) -> Result<bool, StoreError> {
        self.update_profile(
            user,
            "disabled",
            aws_sdk_dynamodb::types::AttributeValue::Bool(disabled),
        )
        .await
    }
}

#[async_trait]
impl AuditDayStore for DynamoStore {
    async fn list_for_day(
        &self,
        day: Timestamp,
        cursor: Option<&str>,
        limit: usize,
        now: Timestamp,
    ) -> Result<Option<Page<AuditEvent>>, StoreError> {
        // The index is eventually consistent; a cursor is a sort-key bound, not a table key,
        // because the table key of the last event (its subject) is not in the cursor.
        let before = match cursor {
            Some(raw) => match decode_audit_cursor(raw) {
                Some((at, id)) => Some(audit_sort_key(at, &id)),
                None => return Ok(None),
            },
            None => None,
        };
        let mut items = Vec::new();
        let wanted = limit.saturating_add(1);
        let mut start = None;
        while limit > 0 && items.len() < wanted {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .filter_expression("#ttl > :now")
                .expression_attribute_names("#ttl", TTL)
                .expression_attribute_values(":pk", s(format!("AUDITDAY#{}", day.day())))
                .expression_attribute_values(":now", n(now.secs()))
                .scan_index_forward(false)
                .limit(i32::try_from(wanted - items.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start);
            q = match &before {
                Some(bound) => q
                    .key_condition_expression("gsi1pk = :pk AND gsi1sk < :before")
                    .expression_attribute_values(":before", s(bound)),
                None => q.key_condition_expression("gsi1pk = :pk"),
            };
            let out = q.send().await.map_err(|e| sdk_error("Query", &e))?;
            for item in out.items.unwrap_or_default() {
                // Checked again here so a stale index entry never surfaces an expired event.
                if get_n(&item, TTL)? > now.secs() {
                    items.push(parse_event(&item)?);
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|e| encode_audit_cursor(e.at, &e.id))
        } else {
            None
        };
        Ok(Some(Page { items, next_cursor }))
    }
}
