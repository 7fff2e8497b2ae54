//! DynamoDB `CounterStore`: one `RL#<key>`/`W` item per counter holding a count attribute per
//! fixed window (`c<window>`), so one `UpdateItem … ADD` counts a hit and returns both the
//! current and the previous window's count: one request per hit.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use bastion_core::Timestamp;

use super::item::{Item, TTL, corrupt, get_n, key, n};
use super::{DynamoStore, sdk_error};
use crate::{CounterStore, StoreError, WindowCounts};

/// Windows older than the previous one that a hit removes by name. An item left alone for
/// longer keeps at most two stale counts per gap, pruned in bulk once there are this many.
const STALE_PRUNE_AT: usize = 16;

fn counter_key(counter: &str) -> Item {
    key(format!("RL#{counter}"), "W")
}

fn count_name(window: i64) -> String {
    format!("c{window}")
}

/// Stale window counts on the item: everything but `window` and `window - 1`.
fn stale_counts(item: &Item, window: i64) -> Vec<String> {
    let keep = [count_name(window), count_name(window.saturating_sub(1))];
    item.keys()
        .filter(|name| {
            name.strip_prefix('c')
                .is_some_and(|w| w.parse::<i64>().is_ok())
                && !keep.contains(name)
        })
        .cloned()
        .collect()
}

fn count(item: &Item, name: &str) -> Result<u64, StoreError> {
    if !item.contains_key(name) {
        return Ok(0);
    }
    let v = get_n(item, name)?;
    u64::try_from(v).map_err(|_| corrupt("counter", v))
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
        // The two windows before the previous one are dropped in the same write, which keeps
        // an item in steady use at two counts.
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(counter_key(key)))
            .update_expression("ADD #cur :one SET #ttl = :ttl REMOVE #old2, #old3")
            .expression_attribute_names("#cur", count_name(window))
            .expression_attribute_names("#old2", count_name(window.saturating_sub(2)))
            .expression_attribute_names("#old3", count_name(window.saturating_sub(3)))
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", n(expires_at.secs()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| sdk_error("UpdateItem", &e))?;
        let item = out.attributes.unwrap_or_default();
        let counts = WindowCounts {
            current: count(&item, &count_name(window))?,
            previous: count(&item, &count_name(window.saturating_sub(1)))?,
        };
        let stale = stale_counts(&item, window);
        if stale.len() >= STALE_PRUNE_AT {
            self.prune_counts(key, &stale).await?;
        }
        Ok(counts)
    }
}

impl DynamoStore {
    /// Removes counts of past windows left by hits after long pauses (rare: one request per
    /// `STALE_PRUNE_AT / 2` such pauses at most), so no counter item grows without bound.
    async fn prune_counts(&self, key: &str, stale: &[String]) -> Result<(), StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(counter_key(key)));
        let mut names = Vec::with_capacity(stale.len());
        for (i, name) in stale.iter().enumerate() {
            let placeholder = format!("#s{i}");
            request = request.expression_attribute_names(&placeholder, name);
            names.push(placeholder);
        }
        request
            .update_expression(format!("REMOVE {}", names.join(", ")))
            .send()
            .await
            .map_err(|e| sdk_error("UpdateItem", &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_windows_before_the_previous_one_are_stale() {
        let mut item = counter_key("x");
        for w in [3, 7, 8, 9, 10] {
            item.insert(count_name(w), n(1));
        }
        item.insert(TTL.into(), n(5));
        let mut stale = stale_counts(&item, 10);
        stale.sort();
        assert_eq!(
            stale,
            vec!["c3".to_owned(), "c7".to_owned(), "c8".to_owned()]
        );
    }
}
