//! Server-generated identifiers: 128 random bits, lowercase hex, parsed back strictly.

use crate::clock::Clock;
use crate::error::ValidationError;
use crate::random::random_bytes;

macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh id from the OS CSPRNG.
            pub fn generate() -> Self {
                Self(hex::encode(random_bytes::<16>()))
            }

            /// Accepts exactly 32 lowercase hex characters.
            pub fn parse(s: &str) -> Result<Self, ValidationError> {
                if s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(ValidationError::new("invalid_id", concat!("not a valid ", stringify!($name))))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

random_id!(
    /// A user account.
    UserId
);
random_id!(
    /// A login session (one refresh-token family).
    SessionId
);
random_id!(
    /// One audit event.
    AuditId
);
random_id!(
    /// One HTTP request, echoed in `X-Request-Id` and every error body.
    RequestId
);
random_id!(
    /// An API key (its public id; the secret is never stored).
    ApiKeyId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_and_differ() {
        let a = UserId::generate();
        let b = UserId::generate();
        assert_ne!(a, b);
        assert_eq!(UserId::parse(a.as_str()), Ok(a));
    }

    #[test]
    fn ids_reject_anything_but_32_lowercase_hex() {
        for bad in [
            "",
            "ABCDEF0123456789ABCDEF0123456789",
            "0123",
            "g0000000000000000000000000000000",
            "../../etc/passwd",
        ] {
            assert!(SessionId::parse(bad).is_err(), "{bad}");
        }
    }
}

impl AuditId {
    /// An id that sorts by creation time (nanoseconds, then random bits), so events written in
    /// the same second still list newest first in the order they happened.
    pub fn generate_ordered(clock: &dyn Clock) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        // Strictly increasing within the process even if the wall clock repeats or steps back.
        static LAST: AtomicU64 = AtomicU64::new(0);
        let wall = clock.now_nanos();
        let prev = LAST
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(wall.max(last.saturating_add(1)))
            })
            .unwrap_or(wall);
        let nanos = wall.max(prev.saturating_add(1));
        let tail = random_bytes::<8>();
        Self(format!("{nanos:016x}{}", hex::encode(tail)))
    }
}

#[cfg(test)]
mod ordered_tests {
    use super::*;

    #[test]
    fn ordered_audit_ids_sort_by_creation() {
        let clock = crate::ManualClock::new(crate::Timestamp(1_700_000_000));
        let ids: Vec<AuditId> = (0..50).map(|_| AuditId::generate_ordered(&clock)).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert!(AuditId::parse(ids[0].as_str()).is_ok());
    }
}
