//! DynamoDB: the per-user count of API keys (`USER#<id>`/`APIKEYCOUNT`), which makes the
//! keys-per-user limit one conditional write.
//!
//! The count is the number of the user's key items still stored. A mint increments it in the
//! transaction that writes the key, on the condition `count < max`; a revocation decrements it
//! in the transaction that deletes the key. Expired keys stay counted until swept: when the
//! condition fails (full, or no count yet because the keys predate it), `recount` deletes the
//! expired keys, sets the count to what is left on the condition that nobody changed it
//! meanwhile, and the mint is tried again. Over-counting is therefore always corrected by the
//! next refused mint, and the count is never lowered below what a consistent read saw.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use bastion_core::{Timestamp, UserId};

use super::item::{Item, PK, SK, TWIN_PK, TWIN_SK, get_n, get_s, is_live, key, n};
use super::users::user_pk;
use super::{DynamoStore, build_error, sdk_error};
use crate::StoreError;

const COUNT_SK: &str = "APIKEYCOUNT";
const COUNT: &str = "keys";
/// Recount attempts per call; each lost attempt means another writer changed the count.
const RECOUNT_ATTEMPTS: u32 = 5;

fn count_key(user: &UserId) -> Item {
    key(user_pk(user), COUNT_SK)
}

/// What a recount found.
pub(super) enum Recount {
    /// The count now says exactly this many keys.
    Exact(u64),
    /// Another writer changed the count while this one read: read it again.
    Raced,
}

impl DynamoStore {
    /// The transaction action that takes one place under the limit.
    pub(super) fn take_key_place(
        &self,
        user: &UserId,
        max_live: u32,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(count_key(user)))
            .update_expression("ADD #c :one")
            .condition_expression("#c < :max")
            .expression_attribute_names("#c", COUNT)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(i64::from(max_live)))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The transaction action that gives one place back. It requires a positive count, so a
    /// key revoked before any count existed leaves the count to the next recount.
    pub(super) fn give_key_place(&self, user: &UserId) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(count_key(user)))
            .update_expression("ADD #c :minus")
            .condition_expression("#c > :zero")
            .expression_attribute_names("#c", COUNT)
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":zero", n(0))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Sweeps the user's keys expired at `now` and sets the count to the keys left, unless the
    /// count changed since it was read. `Timestamp(i64::MIN)` sweeps nothing.
    pub(super) async fn recount_api_keys(
        &self,
        user: &UserId,
        now: Timestamp,
    ) -> Result<Recount, StoreError> {
        // The count is read before the keys: a mint or revocation landing after this read
        // changes it, so the conditional write below fails rather than losing that change.
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(count_key(user)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &e))?;
        let seen = match &out.item {
            Some(item) => Some(get_n(item, COUNT)?),
            None => None,
        };
        let mut expired = Vec::new();
        let mut live = 0_u64;
        for item in self.owner_items(user).await? {
            if is_live(&item, now)? {
                live += 1;
            } else {
                expired.push(key(get_s(&item, PK)?, get_s(&item, SK)?));
                expired.push(key(get_s(&item, TWIN_PK)?, get_s(&item, TWIN_SK)?));
            }
        }
        self.batch_delete(expired).await?;
        let mut item = count_key(user);
        item.insert(COUNT.into(), n(i64::try_from(live).unwrap_or(i64::MAX)));
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        put = match seen {
            Some(c) => put
                .condition_expression("#c = :seen")
                .expression_attribute_names("#c", COUNT)
                .expression_attribute_values(":seen", n(c)),
            None => put.condition_expression("attribute_not_exists(pk)"),
        };
        let put = put.build().map_err(build_error)?;
        let sent = self
            .transact(vec![TransactWriteItem::builder().put(put).build()])
            .await;
        match sent {
            Ok(()) => Ok(Recount::Exact(live)),
            Err(f) if f.condition_failed_at(0) => Ok(Recount::Raced),
            Err(f) => Err(f.into_store_error("recount_api_keys")),
        }
    }

    /// `recount_api_keys` until it wins; `None` when it kept losing to other writers (the
    /// count then only errs high, which the next refused mint corrects).
    pub(super) async fn settle_api_key_count(
        &self,
        user: &UserId,
        now: Timestamp,
    ) -> Result<Option<u64>, StoreError> {
        for _ in 0..RECOUNT_ATTEMPTS {
            if let Recount::Exact(live) = self.recount_api_keys(user, now).await? {
                return Ok(Some(live));
            }
        }
        Ok(None)
    }
}
