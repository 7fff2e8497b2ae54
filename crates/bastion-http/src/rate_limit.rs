//! Enforcing rate limits on the store's counters, and reporting them in `RateLimit-*` headers.

use std::sync::{Arc, Mutex};

use bastion_core::rate_limit::Decision;
use bastion_core::{Clock, ValidationError};
use bastion_store::CounterStore;

use crate::error::ApiError;
use crate::limits::{Limit, LimitTable};

/// The tightest decision taken while serving one request; the pipeline turns it into headers.
#[derive(Debug, Clone, Default)]
pub struct RateLimitSlot(Arc<Mutex<Option<Decision>>>);

impl RateLimitSlot {
    fn record(&self, d: Decision) {
        if let Ok(mut slot) = self.0.lock() {
            let tighter = slot.is_none_or(|cur| d.remaining < cur.remaining || !d.allowed);
            if tighter {
                *slot = Some(d);
            }
        }
    }

    pub fn get(&self) -> Option<Decision> {
        self.0.lock().ok().and_then(|s| *s)
    }
}

/// Counts hits on the store's counters against the configured [`LimitTable`].
#[derive(Clone)]
pub struct RateLimiter {
    counters: Arc<dyn CounterStore>,
    clock: Arc<dyn Clock>,
    table: LimitTable,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RateLimiter")
    }
}

impl RateLimiter {
    pub fn new(counters: Arc<dyn CounterStore>, clock: Arc<dyn Clock>, table: LimitTable) -> Self {
        Self {
            counters,
            clock,
            table,
        }
    }

    /// Counts one hit on `limit` for `subject` and refuses it when over the limit's policy. An
    /// unreachable counter store refuses too (503): limits never fail open.
    pub async fn enforce(
        &self,
        slot: &RateLimitSlot,
        limit: Limit,
        subject: &str,
    ) -> Result<Decision, ApiError> {
        let d = self.check(limit, subject).await?;
        slot.record(d);
        if d.allowed {
            Ok(d)
        } else {
            Err(ApiError::rate_limited(d))
        }
    }

    /// Counts one hit and returns the decision without turning a refusal into an error.
    pub async fn check(&self, limit: Limit, subject: &str) -> Result<Decision, ApiError> {
        let policy = self.table.get(limit);
        let now = self.clock.now();
        let window = policy.window_index(now);
        // Keep a counter through the next window, where it is still read as "previous".
        let expires_at =
            bastion_core::Timestamp((window + 2).saturating_mul(i64::from(policy.window_secs)));
        let key = format!(
            "{}#{}",
            limit.spec().scope,
            rate_subject(counter_subject(subject)?)
        );
        let counts = self.counters.hit(&key, window, expires_at).await?;
        Ok(policy.decide(now, counts.current, counts.previous))
    }
}

/// The rate limits a handler applies, bound to its request: a handler names a [`Limit`] and a
/// subject, and the tightest decision reaches the response's `RateLimit-*` headers.
#[derive(Debug, Clone)]
pub struct Limits {
    limiter: RateLimiter,
    slot: RateLimitSlot,
}

impl Limits {
    pub fn new(limiter: RateLimiter, slot: RateLimitSlot) -> Self {
        Self { limiter, slot }
    }

    /// Counts one hit on `limit` for `subject`; 429 when over it, 503 when the store is down.
    pub async fn enforce(&self, limit: Limit, subject: &str) -> Result<Decision, ApiError> {
        self.limiter.enforce(&self.slot, limit, subject).await
    }
}

/// Subjects are ids, IPs or normalized emails; anything else is refused rather than stored.
fn counter_subject(subject: &str) -> Result<&str, ApiError> {
    let ok = !subject.is_empty()
        && subject.len() <= 320
        && subject
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace());
    if ok {
        Ok(subject)
    } else {
        Err(ValidationError::new("invalid_request", "invalid rate-limit subject").into())
    }
}

/// The subject a counter is kept for: an IPv6 client is counted by its /64, the smallest block
/// a subscriber is usually given, so rotating addresses inside it buys nothing; an IPv4-mapped
/// IPv6 address counts as the IPv4 address it maps. Other subjects (ids, emails) are unchanged.
pub fn rate_subject(subject: &str) -> std::borrow::Cow<'_, str> {
    match subject.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string().into(),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{a:x}:{b:x}:{c:x}:{d:x}::/64").into()
            }
        },
        _ => subject.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::rate_subject;

    #[test]
    fn ipv6_subjects_are_their_64_prefix_and_ipv4_mapped_ones_their_ipv4() {
        assert_eq!(rate_subject("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(rate_subject("2001:db8:1:2:ffff:1:2:3"), "2001:db8:1:2::/64");
        assert_eq!(rate_subject("2001:db8:1:3::1"), "2001:db8:1:3::/64");
        assert_eq!(rate_subject("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(rate_subject("192.0.2.7"), "192.0.2.7");
        assert_eq!(rate_subject("ada@example.com"), "ada@example.com");
    }
}
