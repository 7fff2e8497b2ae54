//! DynamoDB `RecoveryStore`: `USER#<id>`/`RESET` holds the one live reset token's hash.

use async_trait::async_trait;
use bastion_core::crypto::TokenHash;
use bastion_core::{Timestamp, UserId};

use super::item::{TTL, key, n, s};
use super::users::user_pk;
use super::{DynamoStore, applied, sdk_error};
use crate::{RecoveryStore, StoreError};

const RESET_SK: &str = "RESET";

#[async_trait]
impl RecoveryStore for DynamoStore {
    async fn put_reset(
        &self,
        user: &UserId,
        hash: &TokenHash,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut item = key(user_pk(user), RESET_SK);
        item.insert("hash".into(), s(hash.as_str()));
        item.insert("expires_at".into(), n(expires_at.secs()));
        item.insert(TTL.into(), n(expires_at.secs()));
        // Unconditional: a newer request replaces (voids) the older token.
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error("PutItem", &e))?;
        Ok(())
    }

    async fn take_reset(
        &self,
        user: &UserId,
        hash: &TokenHash,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(user_pk(user), RESET_SK)))
            .condition_expression("#h = :h AND expires_at > :now")
            .expression_attribute_names("#h", "hash")
            .expression_attribute_values(":h", s(hash.as_str()))
            .expression_attribute_values(":now", n(now.secs()))
            .send()
            .await;
        Ok(applied("DeleteItem", result)?.is_some())
    }
}
