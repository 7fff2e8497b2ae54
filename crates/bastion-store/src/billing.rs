//! Stripe billing state per user: customer links and ordered updates.

use async_trait::async_trait;
use bastion_core::billing::{BillingRecord, BillingUpdate, StripeCustomerId};
use bastion_core::{Plan, Timestamp, UserId};

use crate::StoreError;

/// What linking a Stripe customer to a user did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkOutcome {
    /// The customer now points at the user (also when it already did).
    Linked,
    /// The customer belongs to another user; nothing changed.
    CustomerTaken,
}

/// What applying a billing update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Written; the state before (if any) and after.
    Applied {
        before: Option<BillingRecord>,
        after: BillingRecord,
    },
    /// A newer event already wrote the state; nothing changed.
    Stale,
}

#[async_trait]
pub trait BillingStore: Send + Sync {
    /// Points `customer` at `user` and records it on the user's billing state, atomically.
    async fn link_customer(
        &self,
        user: &UserId,
        customer: &StripeCustomerId,
    ) -> Result<LinkOutcome, StoreError>;
    /// The user a customer was linked to.
    async fn user_for_customer(
        &self,
        customer: &StripeCustomerId,
    ) -> Result<Option<UserId>, StoreError>;
    /// Applies `update` in one conditional write unless the stored state was written by an
    /// event with a later `created`; equal `created` applies.
    async fn apply_billing(
        &self,
        user: &UserId,
        update: &BillingUpdate,
    ) -> Result<ApplyOutcome, StoreError>;
    /// The user's billing state; one read.
    async fn billing_of(&self, user: &UserId) -> Result<Option<BillingRecord>, StoreError>;
    /// The user's plan at `now`: `Free` when nothing is recorded. One read.
    async fn plan_of(&self, user: &UserId, now: Timestamp) -> Result<Plan, StoreError> {
        Ok(self
            .billing_of(user)
            .await?
            .map_or(Plan::Free, |r| r.plan_at(now)))
    }
}
