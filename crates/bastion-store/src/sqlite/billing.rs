//! SQLite `BillingStore`: a `billing` row per user and a `stripe_customers` lookup, with the
//! event-version check and the write in one `IMMEDIATE` transaction.

use async_trait::async_trait;
use bastion_core::billing::{BillingRecord, BillingUpdate, StripeCustomerId, SubscriptionStatus};
use bastion_core::{Timestamp, UserId};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{SqliteStore, corrupt, db_error};
use crate::billing_order::same_second_rank;
use crate::{ApplyOutcome, BillingStore, LinkOutcome, StoreError};

type Row = (Option<String>, Option<String>, Option<i64>, Option<i64>);

fn read(conn: &Connection, user: &str) -> Result<Option<BillingRecord>, StoreError> {
    let row: Option<Row> = conn
        .query_row(
            "SELECT customer, status, paid_through, event_created FROM billing WHERE user_id = ?1",
            params![user],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()
        .map_err(db_error)?;
    row.map(|(customer, status, paid_through, event_created)| {
        Ok(BillingRecord {
            customer: customer
                .map(|c| StripeCustomerId::parse(&c))
                .transpose()
                .map_err(|e| corrupt("billing customer", e.message))?,
            status: status
                .map(|s| SubscriptionStatus::parse(&s))
                .transpose()
                .map_err(|e| corrupt("billing status", e.message))?,
            paid_through: paid_through.map(Timestamp),
            event_created: event_created.map(Timestamp),
        })
    })
    .transpose()
}

#[async_trait]
impl BillingStore for SqliteStore {
    async fn link_customer(
        &self,
        user: &UserId,
        customer: &StripeCustomerId,
    ) -> Result<LinkOutcome, StoreError> {
        let (user, customer) = (user.as_str().to_owned(), customer.as_str().to_owned());
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            let owner: Option<String> = tx
                .query_row(
                    "SELECT user_id FROM stripe_customers WHERE customer = ?1",
                    params![customer],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_error)?;
            if owner.as_ref().is_some_and(|o| o != &user) {
                return Ok(LinkOutcome::CustomerTaken);
            }
            tx.execute(
                "INSERT INTO stripe_customers (customer, user_id) VALUES (?1, ?2)
                 ON CONFLICT (customer) DO NOTHING",
                params![customer, user],
            )
            .map_err(db_error)?;
            tx.execute(
                "INSERT INTO billing (user_id, customer) VALUES (?1, ?2)
                 ON CONFLICT (user_id) DO UPDATE SET customer = excluded.customer",
                params![user, customer],
            )
            .map_err(db_error)?;
            tx.commit().map_err(db_error)?;
            Ok(LinkOutcome::Linked)
        })
        .await
    }

    async fn user_for_customer(
        &self,
        customer: &StripeCustomerId,
    ) -> Result<Option<UserId>, StoreError> {
        let customer = customer.as_str().to_owned();
        self.run(move |conn| {
            let user: Option<String> = conn
                .query_row(
                    "SELECT user_id FROM stripe_customers WHERE customer = ?1",
                    params![customer],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_error)?;
            user.map(|u| UserId::parse(&u).map_err(|e| corrupt("customer user id", e.message)))
                .transpose()
        })
        .await
    }

    async fn apply_billing(
        &self,
        user: &UserId,
        update: &BillingUpdate,
    ) -> Result<ApplyOutcome, StoreError> {
        let (user, update) = (user.as_str().to_owned(), update.clone());
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_error)?;
            let before = read(&tx, &user)?;
            let newer_applied = before.as_ref().is_some_and(|b| {
                b.event_created.is_some_and(|c| {
                    c > update.event_created
                        || (c == update.event_created
                            && same_second_rank(update.status) < same_second_rank(b.status))
                })
            });
            if newer_applied {
                return Ok(ApplyOutcome::Stale);
            }
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
            tx.execute(
                "INSERT INTO billing (user_id, customer, status, paid_through, event_created)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (user_id) DO UPDATE SET status = excluded.status,
                     paid_through = excluded.paid_through,
                     event_created = excluded.event_created",
                params![
                    user,
                    after.customer.as_ref().map(|c| c.as_str().to_owned()),
                    after.status.map(SubscriptionStatus::as_str),
                    after.paid_through.map(Timestamp::secs),
                    update.event_created.secs()
                ],
            )
            .map_err(db_error)?;
            tx.commit().map_err(db_error)?;
            Ok(ApplyOutcome::Applied { before, after })
        })
        .await
    }

    async fn billing_of(&self, user: &UserId) -> Result<Option<BillingRecord>, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |conn| read(conn, &user)).await
    }
}
