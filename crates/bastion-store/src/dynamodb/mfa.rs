//! DynamoDB `MfaStore`: `USER#<id>`/`MFA` holds the TOTP secret (sealed by the decorator), its
//! state, the last accepted time step and the unused recovery codes' hashes as a string set.
//! Every change is one conditional write, so of concurrent callers at most one succeeds.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use bastion_core::crypto::TokenHash;
use bastion_core::{Timestamp, UserId};

use super::item::{Item, corrupt, get_bool, get_n, get_s, key, n, s};
use super::users::user_pk;
use super::{DynamoStore, applied, sdk_error};
use crate::{MfaStore, StoreError, TotpRecord};

const MFA_SK: &str = "MFA";
const CODES: &str = "codes";

fn mfa_key(user: &UserId) -> Item {
    key(user_pk(user), MFA_SK)
}

fn step_value(step: u64) -> AttributeValue {
    n(i64::try_from(step).unwrap_or(i64::MAX))
}

fn parse(item: &Item) -> Result<TotpRecord, StoreError> {
    let codes = match item.get(CODES) {
        None => Vec::new(),
        Some(AttributeValue::Ss(set)) => set.iter().cloned().map(TokenHash::from_stored).collect(),
        Some(_) => return Err(corrupt("mfa codes", "not a string set")),
    };
    let mut codes = codes;
    codes.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    Ok(TotpRecord {
        id: get_s(item, "id")?.to_owned(),
        secret: get_s(item, "secret")?.to_owned(),
        confirmed: get_bool(item, "confirmed")?,
        last_step: u64::try_from(get_n(item, "last_step")?)
            .map_err(|e| corrupt("mfa last step", e))?,
        recovery_codes: codes,
        created_at: Timestamp(get_n(item, "created_at")?),
    })
}

#[async_trait]
impl MfaStore for DynamoStore {
    async fn get_totp(&self, user: &UserId) -> Result<Option<TotpRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(mfa_key(user)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &e))?;
        out.item.as_ref().map(parse).transpose()
    }

    async fn put_pending_totp(
        &self,
        user: &UserId,
        record: &TotpRecord,
    ) -> Result<bool, StoreError> {
        let mut item = mfa_key(user);
        item.insert("id".into(), s(&record.id));
        item.insert("secret".into(), s(&record.secret));
        item.insert("confirmed".into(), AttributeValue::Bool(false));
        item.insert("last_step".into(), n(0));
        item.insert("created_at".into(), n(record.created_at.secs()));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR confirmed = :no")
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .send()
            .await;
        Ok(applied("PutItem", result)?.is_some())
    }

    async fn confirm_totp(
        &self,
        user: &UserId,
        id: &str,
        step: u64,
        codes: &[TokenHash],
    ) -> Result<bool, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(mfa_key(user)))
            .condition_expression("id = :id AND confirmed = :no")
            .expression_attribute_values(":id", s(id))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":step", step_value(step));
        // A string set cannot be empty: no codes means no attribute.
        update = if codes.is_empty() {
            update.update_expression("SET confirmed = :yes, last_step = :step REMOVE codes")
        } else {
            let set = codes.iter().map(|c| c.as_str().to_owned()).collect();
            update
                .update_expression("SET confirmed = :yes, last_step = :step, codes = :codes")
                .expression_attribute_values(":codes", AttributeValue::Ss(set))
        };
        Ok(applied("UpdateItem", update.send().await)?.is_some())
    }

    async fn accept_totp_step(
        &self,
        user: &UserId,
        id: &str,
        step: u64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(mfa_key(user)))
            .update_expression("SET last_step = :step")
            .condition_expression("id = :id AND confirmed = :yes AND last_step < :step")
            .expression_attribute_values(":id", s(id))
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":step", step_value(step))
            .send()
            .await;
        Ok(applied("UpdateItem", result)?.is_some())
    }

    async fn use_recovery_code(&self, user: &UserId, code: &TokenHash) -> Result<bool, StoreError> {
        // DELETE of the last element removes the attribute, which is how DynamoDB keeps a set
        // from ever being empty.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(mfa_key(user)))
            .update_expression("DELETE codes :c")
            .condition_expression("confirmed = :yes AND contains(codes, :h)")
            .expression_attribute_values(":c", AttributeValue::Ss(vec![code.as_str().to_owned()]))
            .expression_attribute_values(":h", s(code.as_str()))
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await;
        Ok(applied("UpdateItem", result)?.is_some())
    }

    async fn delete_totp(&self, user: &UserId) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(mfa_key(user)))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        Ok(applied("DeleteItem", result)?.is_some())
    }
}
