//! EdDSA (Ed25519) access tokens: auth signs with a private key, every function verifies with
//! public keys only, so a function that can read its configuration still cannot mint a token.
//! Keys are chosen by `kid` (the current one signs, older ones only verify), the algorithm is
//! pinned, and every registered claim is checked against the injected Clock.
//!
//! Ed25519 rather than ES256: aws-lc-rs (already linked through jsonwebtoken and rustls) does
//! both, but Ed25519 signatures are deterministic (no per-signature nonce to get wrong), its keys
//! are 32 raw bytes on both sides (no DER or curve parameters to parse), and verifying is cheap.

pub mod device;
pub mod mfa;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

use crate::clock::Timestamp;
use crate::ids::{SessionId, UserId};

/// Access tokens live 15 minutes.
pub const ACCESS_TOKEN_TTL_SECS: i64 = 15 * 60;
/// RFC 9068 media type, so a token minted for another purpose is never taken as an access token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// The one algorithm tokens are signed and verified with.
pub const ALGORITHM: Algorithm = Algorithm::EdDSA;
/// An Ed25519 private key seed and an Ed25519 public key are both 32 bytes.
pub const KEY_BYTES: usize = 32;
/// Tolerated clock skew for `nbf`/`iat` in the future; `exp` has none.
const SKEW_SECS: i64 = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("JWT key {0:?} must be 32 bytes (an Ed25519 private key seed or public key)")]
    KeyLength(String),
    #[error(
        "JWT key id {0:?} is empty, too long, repeated or has characters outside [A-Za-z0-9_-]"
    )]
    BadKid(String),
    #[error("no JWT key configured")]
    NoKeys,
    #[error("JWT signing key {0:?} is not valid Ed25519 key material")]
    BadSigningKey(String),
    #[error("JWT signing key {0:?} has no matching public key of that kid in the verify keys")]
    UnlistedSigningKey(String),
    #[error("these JWT keys only verify: nothing here can sign")]
    VerifyOnly,
    #[error("token is malformed")]
    Malformed,
    #[error("token header is not EdDSA with the expected typ and a known kid")]
    BadHeader,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token is expired")]
    Expired,
    #[error("token is not yet valid")]
    NotYetValid,
    #[error("token issuer or audience is wrong")]
    WrongParty,
    #[error("token claims are invalid")]
    BadClaims,
    #[error("signing failed: {0}")]
    Signing(String),
}

/// The claims of a Bastion access token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub sid: String,
    pub roles: Vec<String>,
    pub jti: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
}

impl AccessClaims {
    pub fn user_id(&self) -> Result<UserId, JwtError> {
        UserId::parse(&self.sub).map_err(|_| JwtError::BadClaims)
    }

    pub fn session_id(&self) -> Result<SessionId, JwtError> {
        SessionId::parse(&self.sid).map_err(|_| JwtError::BadClaims)
    }
}

/// A public key tokens may be verified with.
struct VerifyKey {
    kid: String,
    public: [u8; KEY_BYTES],
    decoding: DecodingKey,
}

/// The private key new tokens are signed with.
struct SigningKey {
    kid: String,
    encoding: EncodingKey,
}

/// The Ed25519 public key of a 32-byte private key seed.
pub fn public_key_of(kid: &str, seed: &[u8]) -> Result<[u8; KEY_BYTES], JwtError> {
    if seed.len() != KEY_BYTES {
        return Err(JwtError::KeyLength(kid.to_owned()));
    }
    let pair = Ed25519KeyPair::from_seed_unchecked(seed)
        .map_err(|_| JwtError::BadSigningKey(kid.to_owned()))?;
    <[u8; KEY_BYTES]>::try_from(pair.public_key().as_ref())
        .map_err(|_| JwtError::BadSigningKey(kid.to_owned()))
}

fn check_kid(kid: &str, seen: &[&str]) -> Result<(), JwtError> {
    let ok = !kid.is_empty()
        && kid.len() <= 64
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !seen.contains(&kid);
    if ok {
        Ok(())
    } else {
        Err(JwtError::BadKid(kid.to_owned()))
    }
}

/// The configured keys, issuer and audience: public keys to verify with, and in auth only the
/// private key to sign with.
pub struct JwtKeys {
    issuer: String,
    audience: String,
    /// Every key a token may name; the signing key's public half is among them.
    verify: Vec<VerifyKey>,
    signing: Option<SigningKey>,
    validation: Validation,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.verify.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("JwtKeys")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("kids", &kids)
            .field("signs_with", &self.signing.as_ref().map(|k| k.kid.as_str()))
            .finish()
    }
}

impl JwtKeys {
    /// Verify-only keys: `public` are `(kid, 32-byte Ed25519 public key)`.
    pub fn verifier(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        public: Vec<(String, Vec<u8>)>,
    ) -> Result<Self, JwtError> {
        if public.is_empty() {
            return Err(JwtError::NoKeys);
        }
        let mut verify: Vec<VerifyKey> = Vec::with_capacity(public.len());
        for (kid, key) in public {
            let seen: Vec<&str> = verify.iter().map(|k| k.kid.as_str()).collect();
            check_kid(&kid, &seen)?;
            let public = <[u8; KEY_BYTES]>::try_from(key.as_slice())
                .map_err(|_| JwtError::KeyLength(kid.clone()))?;
            verify.push(VerifyKey {
                kid,
                public,
                decoding: DecodingKey::from_ed_der(&public),
            });
        }
        // Time-based claims are checked below against our Clock, not the library's wall clock.
        let mut validation = Validation::new(ALGORITHM);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        Ok(Self {
            issuer: issuer.into(),
            audience: audience.into(),
            verify,
            signing: None,
            validation,
        })
    }

    /// Signing keys: `signing` are `(kid, 32-byte Ed25519 private key seed)`, current first; the
    /// first signs and the others wait (rotation). Each must have its public half in `public`
    /// under the same kid, so auth never mints a token the verifiers would refuse.
    pub fn signer(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        signing: Vec<(String, Vec<u8>)>,
        public: Vec<(String, Vec<u8>)>,
    ) -> Result<Self, JwtError> {
        let mut keys = Self::verifier(issuer, audience, public)?;
        let mut seen: Vec<String> = Vec::with_capacity(signing.len());
        let mut current = None;
        for (kid, seed) in signing {
            let refs: Vec<&str> = seen.iter().map(String::as_str).collect();
            check_kid(&kid, &refs)?;
            let derived = public_key_of(&kid, &seed)?;
            let listed = keys
                .verify
                .iter()
                .any(|k| k.kid == kid && super::ct_eq(&k.public, &derived));
            if !listed {
                return Err(JwtError::UnlistedSigningKey(kid));
            }
            if current.is_none() {
                let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
                    .map_err(|_| JwtError::BadSigningKey(kid.clone()))?;
                let pkcs8 = pair
                    .to_pkcs8v1()
                    .map_err(|_| JwtError::BadSigningKey(kid.clone()))?;
                current = Some(SigningKey {
                    kid: kid.clone(),
                    encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
                });
            }
            seen.push(kid);
        }
        keys.signing = Some(current.ok_or(JwtError::NoKeys)?);
        Ok(keys)
    }

    /// Whether these keys can mint tokens (auth's) or only verify them.
    pub fn can_sign(&self) -> bool {
        self.signing.is_some()
    }

    /// `(kid, public key)` of every key a token may name, in configured order.
    pub fn public_keys(&self) -> Vec<(String, [u8; KEY_BYTES])> {
        self.verify
            .iter()
            .map(|k| (k.kid.clone(), k.public))
            .collect()
    }

    /// Mints an access token for a session; returns it with its claims.
    pub fn issue(
        &self,
        user: &UserId,
        session: &SessionId,
        roles: &[String],
        now: Timestamp,
    ) -> Result<(String, AccessClaims), JwtError> {
        let key = self.current()?;
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user.to_string(),
            sid: session.to_string(),
            roles: roles.to_vec(),
            jti: hex::encode(super::random_bytes::<16>()),
            iat: now.secs(),
            nbf: now.secs(),
            exp: now.secs() + ACCESS_TOKEN_TTL_SECS,
        };
        let token = self.sign(key, ACCESS_TOKEN_TYP, &claims)?;
        Ok((token, claims))
    }

    /// Verifies signature, header and every claim at `now`.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<AccessClaims, JwtError> {
        let c: AccessClaims = self.decode(token, ACCESS_TOKEN_TYP, 4096)?;
        self.check_party(&c.iss, &c.aud)?;
        let t = now.secs();
        if c.exp <= t {
            return Err(JwtError::Expired);
        }
        if c.nbf > t + SKEW_SECS || c.iat > t + SKEW_SECS {
            return Err(JwtError::NotYetValid);
        }
        // Checked: a signed `iat` far in the past must not wrap the lifetime into range.
        if c.exp
            .checked_sub(c.iat)
            .is_none_or(|life| life > ACCESS_TOKEN_TTL_SECS)
        {
            return Err(JwtError::BadClaims);
        }
        c.user_id()?;
        c.session_id()?;
        Ok(c)
    }

    /// The key new tokens are signed with; verify-only keys have none.
    fn current(&self) -> Result<&SigningKey, JwtError> {
        self.signing.as_ref().ok_or(JwtError::VerifyOnly)
    }

    /// Signs `claims` with `key` as an EdDSA token of type `typ`, naming the key id.
    fn sign<C: serde::Serialize>(
        &self,
        key: &SigningKey,
        typ: &str,
        claims: &C,
    ) -> Result<String, JwtError> {
        let mut header = Header::new(ALGORITHM);
        header.typ = Some(typ.to_owned());
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|e| JwtError::Signing(e.to_string()))
    }

    /// The claims of a token of type `typ` at most `max_len` bytes long, signed EdDSA by one of
    /// our keys; times and party are the caller's to check (they differ per token kind). The
    /// header's `alg` must be EdDSA before any key is touched: an HS256 token (even one whose
    /// HMAC key is a public key) or `alg: none` never reaches a verifier.
    fn decode<C: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
        max_len: usize,
    ) -> Result<C, JwtError> {
        if token.len() > max_len {
            return Err(JwtError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        if header.alg != ALGORITHM || header.typ.as_deref() != Some(typ) {
            return Err(JwtError::BadHeader);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.verify.iter().find(|k| k.kid == kid))
            .ok_or(JwtError::BadHeader)?;
        jsonwebtoken::decode::<C>(token, &key.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => JwtError::BadSignature,
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => JwtError::BadHeader,
                _ => JwtError::Malformed,
            })
    }

    /// Issuer and audience must be ours, compared in constant time.
    fn check_party(&self, iss: &str, aud: &str) -> Result<(), JwtError> {
        if super::ct_eq(iss.as_bytes(), self.issuer.as_bytes())
            && super::ct_eq(aud.as_bytes(), self.audience.as_bytes())
        {
            Ok(())
        } else {
            Err(JwtError::WrongParty)
        }
    }
}

#[cfg(test)]
mod tests;
