//! Stripe billing state as Bastion keeps it: the customer a user is linked to, the latest
//! subscription status, how far the allowance is paid, and the plan that follows at a moment.

use crate::clock::Timestamp;
use crate::error::ValidationError;
use crate::owner::Plan;

/// A paid period stays `Pro` this long past its end, so a renewal invoice that lands a little
/// late never drops a paying user to `Free` in between.
pub const RENEWAL_GRACE_SECS: i64 = 2 * 24 * 3600;

/// A Stripe customer id: `cus_` followed by 1..=64 ASCII letters or digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StripeCustomerId(String);

impl StripeCustomerId {
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let ok = s.strip_prefix("cus_").is_some_and(|rest| {
            !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ValidationError::new(
                "invalid_customer",
                "not a Stripe customer id",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for StripeCustomerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Stripe subscription status. Only `active` and `trialing` grant the paid plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriptionStatus {
    Active,
    Trialing,
    PastDue,
    Unpaid,
    Canceled,
    Incomplete,
    IncompleteExpired,
    Paused,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Trialing => "trialing",
            SubscriptionStatus::PastDue => "past_due",
            SubscriptionStatus::Unpaid => "unpaid",
            SubscriptionStatus::Canceled => "canceled",
            SubscriptionStatus::Incomplete => "incomplete",
            SubscriptionStatus::IncompleteExpired => "incomplete_expired",
            SubscriptionStatus::Paused => "paused",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        Ok(match s {
            "active" => SubscriptionStatus::Active,
            "trialing" => SubscriptionStatus::Trialing,
            "past_due" => SubscriptionStatus::PastDue,
            "unpaid" => SubscriptionStatus::Unpaid,
            "canceled" => SubscriptionStatus::Canceled,
            "incomplete" => SubscriptionStatus::Incomplete,
            "incomplete_expired" => SubscriptionStatus::IncompleteExpired,
            "paused" => SubscriptionStatus::Paused,
            _ => {
                return Err(ValidationError::new(
                    "invalid_status",
                    "not a Stripe subscription status",
                ));
            }
        })
    }

    pub fn grants_pro(self) -> bool {
        matches!(
            self,
            SubscriptionStatus::Active | SubscriptionStatus::Trialing
        )
    }
}

/// A change to one user's billing state carried by one Stripe event, applied only when the
/// event is at least as new as the one that last wrote the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingUpdate {
    /// The event's `created` second: the version this update writes.
    pub event_created: Timestamp,
    /// The new status, when the event says one.
    pub status: Option<SubscriptionStatus>,
    /// The new end of the paid period, when the event says one.
    pub paid_through: Option<Timestamp>,
}

/// One user's billing state as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingRecord {
    pub customer: Option<StripeCustomerId>,
    pub status: Option<SubscriptionStatus>,
    pub paid_through: Option<Timestamp>,
    /// `created` of the newest event applied; older events are ignored.
    pub event_created: Option<Timestamp>,
}

impl BillingRecord {
    /// `Pro` while the subscription is active or trialing and its paid period (plus a grace)
    /// has not run out at `now`; `Free` otherwise.
    pub fn plan_at(&self, now: Timestamp) -> Plan {
        let status_ok = self.status.is_some_and(SubscriptionStatus::grants_pro);
        let paid = self
            .paid_through
            .is_none_or(|end| now < end.plus_secs(RENEWAL_GRACE_SECS));
        if status_ok && paid {
            Plan::Pro
        } else {
            Plan::Free
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: Option<SubscriptionStatus>, paid_through: Option<i64>) -> BillingRecord {
        BillingRecord {
            customer: None,
            status,
            paid_through: paid_through.map(Timestamp),
            event_created: None,
        }
    }

    #[test]
    fn customer_ids_must_look_like_stripes() {
        assert_eq!(
            StripeCustomerId::parse("cus_NffrFeUfNV2Hib")
                .unwrap()
                .as_str(),
            "cus_NffrFeUfNV2Hib"
        );
        for bad in ["", "cus_", "sub_123", "cus_a#b", "cus_ x"] {
            assert_eq!(
                StripeCustomerId::parse(bad).unwrap_err().code,
                "invalid_customer",
                "{bad}"
            );
        }
    }

    #[test]
    fn statuses_round_trip_and_only_active_or_trialing_grant_pro() {
        for s in [
            "active",
            "trialing",
            "past_due",
            "unpaid",
            "canceled",
            "incomplete",
            "incomplete_expired",
            "paused",
        ] {
            let status = SubscriptionStatus::parse(s).unwrap();
            assert_eq!(status.as_str(), s);
            assert_eq!(status.grants_pro(), s == "active" || s == "trialing");
        }
        assert!(SubscriptionStatus::parse("gold").is_err());
    }

    #[test]
    fn the_plan_follows_status_and_the_paid_period_with_a_grace() {
        let now = Timestamp(1_000_000);
        assert_eq!(record(None, None).plan_at(now), Plan::Free);
        assert_eq!(
            record(Some(SubscriptionStatus::Active), None).plan_at(now),
            Plan::Pro
        );
        assert_eq!(
            record(Some(SubscriptionStatus::PastDue), Some(2_000_000)).plan_at(now),
            Plan::Free
        );
        let end = 1_000_000 - RENEWAL_GRACE_SECS;
        assert_eq!(
            record(Some(SubscriptionStatus::Active), Some(end + 1)).plan_at(now),
            Plan::Pro
        );
        assert_eq!(
            record(Some(SubscriptionStatus::Active), Some(end)).plan_at(now),
            Plan::Free
        );
    }
}
