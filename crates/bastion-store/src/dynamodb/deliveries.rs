//! DynamoDB `DeliveryStore`: `IDEMP#<key>`/`DELIVERY` items claimed with one conditional
//! PutItem, finished with one conditional UpdateItem or DeleteItem.

use async_trait::async_trait;
use bastion_core::{RequestId, Timestamp};

use super::item::{Item, TTL, get_s, is_live, key, n, s};
use super::{DynamoStore, applied, sdk_error};
use crate::{ClaimOutcome, DELIVERY_RETENTION_SECS, DeliveryStore, StoreError};

const IN_PROGRESS: &str = "in_progress";
const DONE: &str = "done";

fn delivery_key(k: &str) -> Item {
    key(format!("IDEMP#{k}"), "DELIVERY")
}

#[async_trait]
impl DeliveryStore for DynamoStore {
    async fn claim_delivery(
        &self,
        k: &str,
        holder: &RequestId,
        now: Timestamp,
        lease_secs: i64,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut item = delivery_key(k);
        item.insert("state".into(), s(IN_PROGRESS));
        item.insert("holder".into(), s(holder.as_str()));
        item.insert("lease_until".into(), n(now.plus_secs(lease_secs).secs()));
        item.insert(TTL.into(), n(now.plus_secs(DELIVERY_RETENTION_SECS).secs()));
        // Expired records may still be stored (TTL deletion is late), so the condition, not
        // DynamoDB, decides that they no longer count.
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR #ttl <= :now \
                 OR (#state = :in_progress AND lease_until <= :now)",
            )
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":now", n(now.secs()))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .send()
            .await;
        if applied("PutItem", put)?.is_some() {
            return Ok(ClaimOutcome::Claimed);
        }
        let existing = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(delivery_key(k)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &e))?
            .item;
        match existing {
            Some(item) if is_live(&item, now)? && get_s(&item, "state")? == DONE => {
                Ok(ClaimOutcome::Done)
            }
            // Held by someone else, or released between our write and read: either way the
            // caller must not process now and the platform retries later.
            _ => Ok(ClaimOutcome::InProgress),
        }
    }

    async fn complete_delivery(
        &self,
        k: &str,
        holder: &RequestId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(delivery_key(k)))
            .update_expression("SET #state = :done, #ttl = :ttl")
            .condition_expression("holder = :holder")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":done", s(DONE))
            .expression_attribute_values(":holder", s(holder.as_str()))
            .expression_attribute_values(":ttl", n(now.plus_secs(DELIVERY_RETENTION_SECS).secs()))
            .send()
            .await;
        Ok(applied("UpdateItem", result)?.is_some())
    }

    async fn release_delivery(&self, k: &str, holder: &RequestId) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(delivery_key(k)))
            .condition_expression("holder = :holder AND #state = :in_progress")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":holder", s(holder.as_str()))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .send()
            .await;
        Ok(applied("DeleteItem", result)?.is_some())
    }
}
