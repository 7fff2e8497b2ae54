//! Conformance: linking Stripe customers, versioned billing updates and the plan they imply.

use bastion_core::billing::{BillingRecord, BillingUpdate, StripeCustomerId, SubscriptionStatus};
use bastion_core::{Plan, UserId};

use super::{T0, created, user};
use crate::{ApplyOutcome, LinkOutcome, Stores};

fn customer(id: &str) -> StripeCustomerId {
    StripeCustomerId::parse(id).unwrap()
}

fn update(created: i64, status: Option<SubscriptionStatus>, paid: Option<i64>) -> BillingUpdate {
    BillingUpdate {
        event_created: T0.plus_secs(created),
        status,
        paid_through: paid.map(|p| T0.plus_secs(p)),
    }
}

pub async fn a_user_with_nothing_recorded_is_on_the_free_plan(stores: Stores) {
    let id = UserId::generate();
    assert_eq!(stores.billing.billing_of(&id).await.unwrap(), None);
    assert_eq!(stores.billing.plan_of(&id, T0).await.unwrap(), Plan::Free);
}

pub async fn a_linked_customer_resolves_to_its_user_and_cannot_be_taken_by_another(stores: Stores) {
    let alice = created(&stores, user("alice-billing@example.com")).await;
    let bob = created(&stores, user("bob-billing@example.com")).await;
    let cus = customer("cus_Alice123");
    assert_eq!(
        stores.billing.link_customer(&alice.id, &cus).await.unwrap(),
        LinkOutcome::Linked
    );
    assert_eq!(
        stores.billing.link_customer(&alice.id, &cus).await.unwrap(),
        LinkOutcome::Linked
    );
    assert_eq!(
        stores.billing.link_customer(&bob.id, &cus).await.unwrap(),
        LinkOutcome::CustomerTaken
    );
    assert_eq!(
        stores.billing.user_for_customer(&cus).await.unwrap(),
        Some(alice.id.clone())
    );
    assert_eq!(
        stores
            .billing
            .user_for_customer(&customer("cus_Nobody"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        stores.billing.billing_of(&alice.id).await.unwrap(),
        Some(BillingRecord {
            customer: Some(cus),
            status: None,
            paid_through: None,
            event_created: None,
        })
    );
    assert_eq!(stores.billing.billing_of(&bob.id).await.unwrap(), None);
}

pub async fn billing_updates_apply_in_created_order_and_older_ones_are_stale(stores: Stores) {
    let alice = created(&stores, user("carol-billing@example.com")).await;
    let cus = customer("cus_Carol");
    stores.billing.link_customer(&alice.id, &cus).await.unwrap();
    let active = first_update_applies_over_the_linked_customer(&stores, &alice.id, &cus).await;
    an_older_cancellation_arriving_late_changes_nothing(&stores, &alice.id, &active).await;
    a_same_second_update_applies_and_keeps_the_fields_it_does_not_carry(&stores, &alice.id, active)
        .await;
}

/// The first update (active, paid through T0+1000, created T0+10) lands on the record that
/// holds only the customer, and makes the plan Pro; returns the record it leaves.
async fn first_update_applies_over_the_linked_customer(
    stores: &Stores,
    id: &UserId,
    cus: &StripeCustomerId,
) -> BillingRecord {
    let first = stores
        .billing
        .apply_billing(
            id,
            &update(10, Some(SubscriptionStatus::Active), Some(1000)),
        )
        .await
        .unwrap();
    let active = BillingRecord {
        customer: Some(cus.clone()),
        status: Some(SubscriptionStatus::Active),
        paid_through: Some(T0.plus_secs(1000)),
        event_created: Some(T0.plus_secs(10)),
    };
    assert_eq!(
        first,
        ApplyOutcome::Applied {
            before: Some(BillingRecord {
                customer: Some(cus.clone()),
                status: None,
                paid_through: None,
                event_created: None,
            }),
            after: active.clone(),
        }
    );
    assert_eq!(stores.billing.plan_of(id, T0).await.unwrap(), Plan::Pro);
    active
}

async fn an_older_cancellation_arriving_late_changes_nothing(
    stores: &Stores,
    id: &UserId,
    active: &BillingRecord,
) {
    assert_eq!(
        stores
            .billing
            .apply_billing(id, &update(9, Some(SubscriptionStatus::Canceled), None))
            .await
            .unwrap(),
        ApplyOutcome::Stale
    );
    assert_eq!(
        stores.billing.billing_of(id).await.unwrap(),
        Some(active.clone())
    );
}

async fn a_same_second_update_applies_and_keeps_the_fields_it_does_not_carry(
    stores: &Stores,
    id: &UserId,
    active: BillingRecord,
) {
    let past_due = stores
        .billing
        .apply_billing(id, &update(10, Some(SubscriptionStatus::PastDue), None))
        .await
        .unwrap();
    let after = BillingRecord {
        status: Some(SubscriptionStatus::PastDue),
        ..active.clone()
    };
    assert_eq!(
        past_due,
        ApplyOutcome::Applied {
            before: Some(active),
            after: after.clone(),
        }
    );
    assert_eq!(stores.billing.billing_of(id).await.unwrap(), Some(after));
    assert_eq!(stores.billing.plan_of(id, T0).await.unwrap(), Plan::Free);
}

pub async fn the_plan_lapses_when_the_paid_period_and_its_grace_run_out(stores: Stores) {
    let id = UserId::generate();
    let applied = stores
        .billing
        .apply_billing(
            &id,
            &update(5, Some(SubscriptionStatus::Trialing), Some(100)),
        )
        .await
        .unwrap();
    assert!(matches!(
        applied,
        ApplyOutcome::Applied { before: None, .. }
    ));
    let grace = bastion_core::billing::RENEWAL_GRACE_SECS;
    assert_eq!(
        stores
            .billing
            .plan_of(&id, T0.plus_secs(100 + grace - 1))
            .await
            .unwrap(),
        Plan::Pro
    );
    assert_eq!(
        stores
            .billing
            .plan_of(&id, T0.plus_secs(100 + grace))
            .await
            .unwrap(),
        Plan::Free
    );
}

pub async fn deleting_a_user_removes_their_billing_state_and_customer_link(stores: Stores) {
    let leaving = created(&stores, user("leaving-billing@example.com")).await;
    let staying = created(&stores, user("staying-billing@example.com")).await;
    let (gone, kept) = (customer("cus_Leaving1"), customer("cus_Staying1"));
    stores
        .billing
        .link_customer(&leaving.id, &gone)
        .await
        .unwrap();
    stores
        .billing
        .link_customer(&staying.id, &kept)
        .await
        .unwrap();

    stores.users.delete_user(&leaving.id).await.unwrap();

    assert_eq!(stores.billing.user_for_customer(&gone).await.unwrap(), None);
    assert_eq!(stores.billing.billing_of(&leaving.id).await.unwrap(), None);
    assert_eq!(
        stores.billing.user_for_customer(&kept).await.unwrap(),
        Some(staying.id.clone())
    );
    assert_eq!(
        stores
            .billing
            .billing_of(&staying.id)
            .await
            .unwrap()
            .unwrap()
            .customer,
        Some(kept)
    );
}

pub async fn a_same_second_event_never_moves_a_subscription_back_along_its_life(stores: Stores) {
    let dora = created(&stores, user("dora-billing@example.com")).await;
    stores
        .billing
        .link_customer(&dora.id, &customer("cus_Dora"))
        .await
        .unwrap();
    let apply = |created: i64, status: SubscriptionStatus, paid: Option<i64>| {
        let stores = stores.clone();
        let id = dora.id.clone();
        async move {
            stores
                .billing
                .apply_billing(&id, &update(created, Some(status), paid))
                .await
                .unwrap()
        }
    };
    let status = || async {
        stores
            .billing
            .billing_of(&dora.id)
            .await
            .unwrap()
            .and_then(|b| b.status)
    };

    // Checkout: `customer.subscription.updated` (active) overtook `.created` (incomplete),
    // both stamped the same second. The late `incomplete` must not undo the payment.
    assert!(matches!(
        apply(20, SubscriptionStatus::Active, Some(5000)).await,
        ApplyOutcome::Applied { .. }
    ));
    assert_eq!(
        apply(20, SubscriptionStatus::Incomplete, None).await,
        ApplyOutcome::Stale
    );
    assert_eq!(status().await, Some(SubscriptionStatus::Active));
    assert_eq!(
        stores.billing.plan_of(&dora.id, T0).await.unwrap(),
        Plan::Pro
    );
    // An equally-far-along or later status in the same second still applies.
    assert!(matches!(
        apply(20, SubscriptionStatus::Active, Some(6000)).await,
        ApplyOutcome::Applied { .. }
    ));
    assert!(matches!(
        apply(20, SubscriptionStatus::Canceled, None).await,
        ApplyOutcome::Applied { .. }
    ));
    assert_eq!(
        apply(20, SubscriptionStatus::Active, None).await,
        ApplyOutcome::Stale
    );
    assert_eq!(status().await, Some(SubscriptionStatus::Canceled));
    // A newer second always applies, whatever the status.
    assert!(matches!(
        apply(21, SubscriptionStatus::Incomplete, None).await,
        ApplyOutcome::Applied { .. }
    ));
    assert_eq!(status().await, Some(SubscriptionStatus::Incomplete));
}
