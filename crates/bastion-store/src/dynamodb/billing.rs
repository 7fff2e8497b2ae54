//! DynamoDB `BillingStore`: the user's `USER#<id>`/`BILLING` item (so `plan_of` is one GetItem)
//! and the `STRIPECUS#<customer>`/`USER` lookup Stripe events are resolved through.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, ReturnValue, TransactWriteItem, Update};
use bastion_core::billing::{BillingRecord, BillingUpdate, StripeCustomerId, SubscriptionStatus};
use bastion_core::{Timestamp, UserId};

use super::item::{Item, TWIN_PK, TWIN_SK, corrupt, get_n, get_opt_s, get_s, key, n, s};
use super::users::user_pk;
use super::{DynamoStore, applied, build_error, sdk_error};
use crate::billing_order::{overwritable_same_second, same_second_rank};
use crate::{ApplyOutcome, BillingStore, LinkOutcome, StoreError};

fn billing_key(user: &UserId) -> Item {
    key(user_pk(user), "BILLING")
}

const CUSTOMER_SK: &str = "USER";

fn customer_pk(customer: &StripeCustomerId) -> String {
    format!("STRIPECUS#{customer}")
}

fn customer_key(customer: &StripeCustomerId) -> Item {
    key(customer_pk(customer), CUSTOMER_SK)
}

fn get_opt_n(item: &Item, name: &str) -> Result<Option<i64>, StoreError> {
    if item.contains_key(name) {
        get_n(item, name).map(Some)
    } else {
        Ok(None)
    }
}

fn parse_billing(item: &Item) -> Result<BillingRecord, StoreError> {
    Ok(BillingRecord {
        customer: get_opt_s(item, "customer")?
            .map(StripeCustomerId::parse)
            .transpose()
            .map_err(|e| corrupt("billing customer", e.message))?,
        status: get_opt_s(item, "status")?
            .map(SubscriptionStatus::parse)
            .transpose()
            .map_err(|e| corrupt("billing status", e.message))?,
        paid_through: get_opt_n(item, "paid_through")?.map(Timestamp),
        event_created: get_opt_n(item, "event_created")?.map(Timestamp),
    })
}

#[async_trait]
impl BillingStore for DynamoStore {
    async fn link_customer(
        &self,
        user: &UserId,
        customer: &StripeCustomerId,
    ) -> Result<LinkOutcome, StoreError> {
        let mut lookup = customer_key(customer);
        lookup.insert("user_id".into(), s(user.as_str()));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(lookup))
            .condition_expression("attribute_not_exists(pk) OR user_id = :user")
            .expression_attribute_values(":user", s(user.as_str()))
            .build()
            .map_err(build_error)?;
        // The billing item names the lookup as its twin, so deleting the user deletes both.
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(billing_key(user)))
            .update_expression("SET customer = :customer, #tpk = :tpk, #tsk = :tsk")
            .expression_attribute_names("#tpk", TWIN_PK)
            .expression_attribute_names("#tsk", TWIN_SK)
            .expression_attribute_values(":customer", s(customer.as_str()))
            .expression_attribute_values(":tpk", s(customer_pk(customer)))
            .expression_attribute_values(":tsk", s(CUSTOMER_SK))
            .build()
            .map_err(build_error)?;
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder().update(update).build(),
        ];
        match self.transact(items).await {
            Ok(()) => Ok(LinkOutcome::Linked),
            Err(f) if f.condition_failed_at(0) => Ok(LinkOutcome::CustomerTaken),
            Err(f) => Err(f.into_store_error("link_customer")),
        }
    }

    async fn user_for_customer(
        &self,
        customer: &StripeCustomerId,
    ) -> Result<Option<UserId>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(customer_key(customer)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &e))?;
        out.item
            .map(|item| {
                UserId::parse(get_s(&item, "user_id")?)
                    .map_err(|e| corrupt("customer user id", e.message))
            })
            .transpose()
    }

    async fn apply_billing(
        &self,
        user: &UserId,
        update: &BillingUpdate,
    ) -> Result<ApplyOutcome, StoreError> {
        let mut set = vec!["event_created = :created"];
        // Newer wins; a same-second event wins only over statuses no further along (the
        // ranking in `billing_order`, shared by both adapters).
        let overwritable = overwritable_same_second(same_second_rank(update.status));
        let names: Vec<String> = (0..overwritable.len()).map(|i| format!(":o{i}")).collect();
        let same_second = if names.is_empty() {
            "attribute_not_exists(#status)".to_owned()
        } else {
            format!(
                "(attribute_not_exists(#status) OR #status IN ({}))",
                names.join(", ")
            )
        };
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(billing_key(user)))
            .condition_expression(format!(
                "attribute_not_exists(event_created) OR event_created < :created \
                 OR (event_created = :created AND {same_second})"
            ))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":created", n(update.event_created.secs()))
            .return_values(ReturnValue::AllOld);
        for (name, status) in names.iter().zip(&overwritable) {
            request = request.expression_attribute_values(name, s(status.as_str()));
        }
        if let Some(status) = update.status {
            set.push("#status = :status");
            request = request.expression_attribute_values(":status", s(status.as_str()));
        }
        if let Some(paid) = update.paid_through {
            set.push("paid_through = :paid");
            request = request.expression_attribute_values(":paid", n(paid.secs()));
        }
        let result = request
            .update_expression(format!("SET {}", set.join(", ")))
            .send()
            .await;
        let Some(out) = applied("UpdateItem", result)? else {
            return Ok(ApplyOutcome::Stale);
        };
        let old = out.attributes.unwrap_or_default();
        let before = if old.is_empty() {
            None
        } else {
            Some(parse_billing(&old)?)
        };
        let after = BillingRecord {
            customer: before.as_ref().and_then(|b| b.customer.clone()),
            status: update
                .status
                .or_else(|| before.as_ref().and_then(|b| b.status)),
            paid_through: update
                .paid_through
                .or_else(|| before.as_ref().and_then(|b| b.paid_through)),
            event_created: Some(update.event_created),
        };
        Ok(ApplyOutcome::Applied { before, after })
    }

    async fn billing_of(&self, user: &UserId) -> Result<Option<BillingRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(billing_key(user)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &e))?;
        out.item.as_ref().map(parse_billing).transpose()
    }
}
