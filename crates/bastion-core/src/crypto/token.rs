//! Opaque bearer secrets (refresh tokens, one-time codes): 256 random bits, base64url, stored
//! only as their SHA-256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};

use super::{ct_eq, random_bytes, sha256};

/// A freshly minted token. The plaintext leaves the server once, in the response body.
pub struct OpaqueToken(SecretString);

impl std::fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpaqueToken([REDACTED])")
    }
}

impl OpaqueToken {
    pub fn generate() -> Self {
        Self(SecretString::from(
            URL_SAFE_NO_PAD.encode(random_bytes::<32>()),
        ))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(self.expose())
    }
}

/// Lowercase hex SHA-256 of a token's text: the only form a token is stored in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        Self(hex::encode(sha256(token.as_bytes())))
    }

    /// Rebuilds a hash read back from the store.
    pub fn from_stored(hex_digest: String) -> Self {
        Self(hex_digest)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn ct_eq(&self, other: &TokenHash) -> bool {
        ct_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

/// Whether `raw` has the shape of a token we minted (43 base64url chars), checked before any
/// store lookup so junk never costs a database request.
pub fn looks_like_token(raw: &str) -> bool {
    raw.len() == 43
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_base64url_and_hash_stably() {
        let t = OpaqueToken::generate();
        assert!(looks_like_token(t.expose()));
        assert_eq!(t.hash(), TokenHash::of(t.expose()));
        assert_eq!(t.hash().as_str().len(), 64);
        assert_ne!(t.expose(), OpaqueToken::generate().expose());
    }

    #[test]
    fn token_debug_is_redacted() {
        assert_eq!(
            format!("{:?}", OpaqueToken::generate()),
            "OpaqueToken([REDACTED])"
        );
    }
}
