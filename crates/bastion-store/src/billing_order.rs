//! The order of Stripe subscription statuses stamped with the same second, shared by both
//! adapters so they resolve a same-second race identically.

use bastion_core::billing::SubscriptionStatus;

/// How far along a subscription's life a status is, to order events stamped with the same
/// second (Stripe's `created` has one-second resolution and delivery order is not
/// guaranteed): a same-second event applies only if it is at least as far along, so a late
/// `incomplete` from checkout cannot undo the `active` that followed it. Both adapters use
/// this one ranking.
pub(crate) fn same_second_rank(status: Option<SubscriptionStatus>) -> u8 {
    match status {
        None | Some(SubscriptionStatus::Incomplete) => 0,
        Some(SubscriptionStatus::Trialing) => 1,
        Some(SubscriptionStatus::Active) => 2,
        Some(SubscriptionStatus::PastDue | SubscriptionStatus::Paused) => 3,
        Some(SubscriptionStatus::Unpaid) => 4,
        Some(SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired) => 5,
    }
}

/// Every status a same-second event of rank `rank` may overwrite.
pub(crate) fn overwritable_same_second(rank: u8) -> Vec<SubscriptionStatus> {
    use SubscriptionStatus as S;
    // `same_second_rank`'s exhaustive match names every status; this list must too.
    [
        S::Incomplete,
        S::Trialing,
        S::Active,
        S::PastDue,
        S::Paused,
        S::Unpaid,
        S::Canceled,
        S::IncompleteExpired,
    ]
    .into_iter()
    .filter(|s| same_second_rank(Some(*s)) <= rank)
    .collect()
}
