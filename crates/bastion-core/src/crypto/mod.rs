//! Crypto primitives: randomness, constant-time comparison, opaque tokens, password hashing, JWT,
//! TOTP and recovery codes.

pub mod jwt;
pub mod password;
pub mod recovery;
pub mod token;
pub mod totp;

pub use jwt::{AccessClaims, JwtError, JwtKeys};
pub use password::{PasswordHasher, PasswordHasherError, Pepper, Verification};
pub use token::{OpaqueToken, TokenHash};

pub use crate::random::random_bytes;

use subtle::ConstantTimeEq;

/// Constant-time equality for secrets, MACs and token hashes. Unequal lengths return false
/// without comparing contents (the length of a MAC or hash is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    use hmac::Mac;
    // HMAC accepts keys of any length, so construction cannot fail; the fallback is unreachable.
    match hmac::Hmac::<sha2::Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0u8; 32],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_compares_contents_and_lengths() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
