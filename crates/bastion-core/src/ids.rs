//! Server-generated identifiers: 128 random bits, lowercase hex, parsed back strictly.

use crate::crypto::random_bytes;
use crate::error::ValidationError;

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
        for bad in ["", "ABCDEF0123456789ABCDEF0123456789", "0123", "g0000000000000000000000000000000", "../../etc/passwd"] {
            assert!(SessionId::parse(bad).is_err(), "{bad}");
        }
    }
}
