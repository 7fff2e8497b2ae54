//! Time as an injected dependency, so expiry, windows and lifetimes are testable without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds since the Unix epoch (UTC).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn secs(self) -> i64 {
        self.0
    }

    pub fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs))
    }

    /// RFC 3339 in UTC, e.g. `2026-11-24T10:52:51Z`; the epoch if the value is out of range.
    pub fn to_rfc3339(self) -> String {
        let dt = time::OffsetDateTime::from_unix_timestamp(self.0)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        dt.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
    }

    /// The UTC calendar day, `YYYY-MM-DD`, used to shard audit queries by day.
    pub fn day(self) -> String {
        let dt = time::OffsetDateTime::from_unix_timestamp(self.0)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        format!(
            "{:04}-{:02}-{:02}",
            dt.year(),
            u8::from(dt.month()),
            dt.day()
        )
    }
}

/// The source of "now" for every rule that depends on time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;

    /// Nanoseconds since the epoch, for ordering ids within a second; clocks that only know
    /// seconds answer the start of the current second.
    fn now_nanos(&self) -> u64 {
        u64::try_from(self.now().0)
            .unwrap_or(0)
            .saturating_mul(1_000_000_000)
    }
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    // The one place the system's wall clock is read (clippy.toml bans it everywhere else).
    #[allow(clippy::disallowed_methods)]
    fn since_epoch() -> std::time::Duration {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp(i64::try_from(Self::since_epoch().as_secs()).unwrap_or(i64::MAX))
    }

    fn now_nanos(&self) -> u64 {
        u64::try_from(Self::since_epoch().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A clock that moves only when told to; shared between a test and the code under test.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(start.0)))
    }

    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_and_day_render_utc() {
        let t = Timestamp(1_764_000_000);
        assert_eq!(t.to_rfc3339(), "2025-11-24T16:00:00Z");
        assert_eq!(t.day(), "2025-11-24");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Timestamp(100));
        assert_eq!(c.now(), Timestamp(100));
        c.advance(5);
        assert_eq!(c.now(), Timestamp(105));
        c.set(Timestamp(7));
        assert_eq!(c.now(), Timestamp(7));
    }
}
