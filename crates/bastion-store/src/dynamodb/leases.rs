//! DynamoDB `LeaseStore`: `LEASE#<key>`/`LEASE` items taken with one conditional PutItem and
//! dropped with one conditional DeleteItem.

use async_trait::async_trait;
use bastion_core::{RequestId, Timestamp};

use super::item::{Item, TTL, key, n, s};
use super::{DynamoStore, sdk_error};
use crate::{LeaseStore, StoreError};

fn lease_key(k: &str) -> Item {
    key(format!("LEASE#{k}"), "LEASE")
}

#[async_trait]
impl LeaseStore for DynamoStore {
    async fn acquire_lease(
        &self,
        k: &str,
        holder: &RequestId,
        now: Timestamp,
        ttl_secs: i64,
    ) -> Result<bool, StoreError> {
        let mut item = lease_key(k);
        item.insert("holder".into(), s(holder.as_str()));
        item.insert(TTL.into(), n(now.plus_secs(ttl_secs).secs()));
        // An expired lease may still be stored (TTL deletion is lazy): the condition, not
        // DynamoDB's deletion, decides that it no longer holds.
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #ttl <= :now")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":now", n(now.secs()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error("PutItem", &e)),
        }
    }

    async fn release_lease(&self, k: &str, holder: &RequestId) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(lease_key(k)))
            .condition_expression("holder = :holder")
            .expression_attribute_values(":holder", s(holder.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error("DeleteItem", &e)),
        }
    }
}
