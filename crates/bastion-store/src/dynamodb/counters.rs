//! DynamoDB `CounterStore`: `RL#<key>`/`W#<window>` items incremented with `ADD`.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use bastion_core::Timestamp;

use super::item::{TTL, corrupt, get_n, key, n};
use super::{DynamoStore, sdk_error};
use crate::{CounterStore, StoreError, WindowCounts};

fn counter_key(counter: &str, window: i64) -> super::item::Item {
    key(format!("RL#{counter}"), format!("W#{window}"))
}

#[async_trait]
impl CounterStore for DynamoStore {
    async fn hit(
        &self,
        key: &str,
        window: i64,
        expires_at: Timestamp,
    ) -> Result<WindowCounts, StoreError> {
        // `ADD` is applied atomically by DynamoDB, so concurrent hits each see their own count.
        let increment = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(counter_key(key, window)))
            .update_expression("ADD n :one SET #ttl = :ttl")
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", n(expires_at.secs()))
            .return_values(ReturnValue::UpdatedNew)
            .send();
        let previous = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(counter_key(key, window.saturating_sub(1))))
            .projection_expression("n")
            .consistent_read(true)
            .send();
        let (increment, previous) = tokio::join!(increment, previous);

        let attributes = increment
            .map_err(|e| sdk_error("UpdateItem", &e))?
            .attributes
            .unwrap_or_default();
        let current = get_n(&attributes, "n")?;
        let previous = match previous.map_err(|e| sdk_error("GetItem", &e))?.item {
            Some(item) => get_n(&item, "n")?,
            None => 0,
        };
        Ok(WindowCounts {
            current: u64::try_from(current).map_err(|_| corrupt("counter", current))?,
            previous: u64::try_from(previous).map_err(|_| corrupt("counter", previous))?,
        })
    }
}
