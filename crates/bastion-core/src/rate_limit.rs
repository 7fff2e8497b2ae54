//! Rate-limit policy: a sliding-window approximation over fixed-window counters.
//!
//! The estimate is `current + previous × (unelapsed share of the current window)`, which needs
//! only two counters per subject and never lets a burst straddling a window boundary double
//! the limit.

use crate::clock::Timestamp;

/// `limit` requests per `window_secs` for one subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub limit: u32,
    pub window_secs: u32,
}

impl Policy {
    pub const fn per_minute(limit: u32) -> Self {
        Self {
            limit,
            window_secs: 60,
        }
    }

    /// Index of the fixed window containing `now`.
    pub fn window_index(&self, now: Timestamp) -> i64 {
        now.secs().div_euclid(i64::from(self.window_secs.max(1)))
    }

    /// Weighs the counters for one request that has already been counted in `current`.
    pub fn decide(&self, now: Timestamp, current: u64, previous: u64) -> Decision {
        let window = i64::from(self.window_secs.max(1));
        let elapsed = now.secs().rem_euclid(window);
        let weight_num = u64::try_from(window - elapsed).unwrap_or(0);
        let window_u = u64::try_from(window).unwrap_or(1);
        // Integer arithmetic, rounded up, so the estimate never undercounts.
        let weighted_prev = (previous.saturating_mul(weight_num)).div_ceil(window_u);
        let estimate = current.saturating_add(weighted_prev);
        let limit = u64::from(self.limit);
        let reset_in = u32::try_from(window - elapsed).unwrap_or(self.window_secs);
        if estimate <= limit {
            Decision {
                allowed: true,
                limit: self.limit,
                remaining: u32::try_from(limit - estimate).unwrap_or(0),
                reset_secs: reset_in,
                retry_after_secs: 0,
            }
        } else {
            Decision {
                allowed: false,
                limit: self.limit,
                remaining: 0,
                reset_secs: reset_in,
                retry_after_secs: self.retry_after(elapsed, current, previous),
            }
        }
    }

    /// Seconds until the estimate, without this request, drops back under the limit.
    fn retry_after(&self, elapsed: i64, current: u64, previous: u64) -> u32 {
        let window = i64::from(self.window_secs.max(1));
        let limit = u64::from(self.limit);
        let window_u = u64::try_from(window).unwrap_or(1);
        if current > limit {
            // Even with the previous window gone, this window alone is over: wait for the next,
            // and then for its own previous weight (our `current`) to decay.
            let mut t = window - elapsed;
            while t < 3 * window {
                let e2 = (elapsed + t) - window;
                let w = u64::try_from(window - e2).unwrap_or(0);
                if current.saturating_mul(w).div_ceil(window_u) < limit {
                    break;
                }
                t += 1;
            }
            return u32::try_from(t.max(1)).unwrap_or(self.window_secs);
        }
        let mut t: i64 = 1;
        while elapsed + t < window {
            let w = u64::try_from(window - elapsed - t).unwrap_or(0);
            if current + previous.saturating_mul(w).div_ceil(window_u) < limit + 1 {
                return u32::try_from(t).unwrap_or(self.window_secs);
            }
            t += 1;
        }
        u32::try_from((window - elapsed).max(1)).unwrap_or(self.window_secs)
    }
}

/// What the limiter concluded, with the numbers the `RateLimit-*` headers carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    pub reset_secs: u32,
    pub retry_after_secs: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = Policy::per_minute(5);

    #[test]
    fn allows_up_to_the_limit_in_a_fresh_window() {
        for n in 1..=5 {
            let d = P.decide(Timestamp(600), n, 0);
            assert!(d.allowed);
            assert_eq!(d.remaining, 5 - u32::try_from(n).unwrap());
        }
        let d = P.decide(Timestamp(600), 6, 0);
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        // Refused hits count too, so the 6 of this window must decay to 4 in the next one
        // before a new request fits: 6·(60-e)/60 ≤ 4 ⇒ e ≥ 20 s into the next window.
        assert_eq!(d.retry_after_secs, 80);
        assert!(P.decide(Timestamp(680), 1, 6).allowed);
        assert!(!P.decide(Timestamp(679), 1, 6).allowed);
    }

    #[test]
    fn previous_window_weighs_in_proportionally() {
        // 30 s into the window, 5 last window count as 3 (2.5 rounded up).
        assert!(P.decide(Timestamp(630), 2, 5).allowed);
        assert!(!P.decide(Timestamp(630), 3, 5).allowed);
        // At the very end of the window the previous one is almost gone.
        assert!(P.decide(Timestamp(659), 4, 5).allowed);
    }

    #[test]
    fn retry_after_points_at_when_the_request_would_pass() {
        let d = P.decide(Timestamp(630), 3, 5);
        assert!(!d.allowed);
        // The previous weight must fall to 2 (≤ 5 - 3): 5·(30-t)/60 ≤ 2 ⇒ t ≥ 6.
        assert_eq!(d.retry_after_secs, 6);
        assert!(P.decide(Timestamp(636), 3, 5).allowed);
    }

    #[test]
    fn reset_counts_down_to_the_window_boundary() {
        assert_eq!(P.decide(Timestamp(645), 1, 0).reset_secs, 15);
    }
}
