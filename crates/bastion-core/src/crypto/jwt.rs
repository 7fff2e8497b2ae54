//! HS256 access tokens: keys chosen by `kid` (current signs, previous still verify), the
//! algorithm pinned, and every registered claim checked against the injected Clock.

pub mod device;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

use crate::clock::Timestamp;
use crate::ids::{SessionId, UserId};

/// Access tokens live 15 minutes.
pub const ACCESS_TOKEN_TTL_SECS: i64 = 15 * 60;
/// RFC 9068 media type, so a token minted for another purpose is never taken as an access token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
const MIN_KEY_BYTES: usize = 32;
/// Tolerated clock skew for `nbf`/`iat` in the future; `exp` has none.
const SKEW_SECS: i64 = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("JWT key {0:?} is shorter than 256 bits")]
    ShortKey(String),
    #[error(
        "JWT key id {0:?} is empty, too long, repeated or has characters outside [A-Za-z0-9_-]"
    )]
    BadKid(String),
    #[error("no JWT signing key configured")]
    NoKeys,
    #[error("token is malformed")]
    Malformed,
    #[error("token header is not HS256 at+jwt with a known kid")]
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

struct Key {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// The configured signing keys, issuer and audience.
pub struct JwtKeys {
    issuer: String,
    audience: String,
    /// Current key first.
    keys: Vec<Key>,
    validation: Validation,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|k| k.kid.as_str()).collect();
        f.debug_struct("JwtKeys")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("kids", &kids)
            .finish()
    }
}

impl JwtKeys {
    /// `keys` are `(kid, secret)` with the current key first.
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        keys: Vec<(String, Vec<u8>)>,
    ) -> Result<Self, JwtError> {
        if keys.is_empty() {
            return Err(JwtError::NoKeys);
        }
        let mut out: Vec<Key> = Vec::with_capacity(keys.len());
        for (kid, secret) in keys {
            let kid_ok = !kid.is_empty()
                && kid.len() <= 64
                && kid
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !out.iter().any(|k| k.kid == kid);
            if !kid_ok {
                return Err(JwtError::BadKid(kid));
            }
            if secret.len() < MIN_KEY_BYTES {
                return Err(JwtError::ShortKey(kid));
            }
            out.push(Key {
                kid,
                encoding: EncodingKey::from_secret(&secret),
                decoding: DecodingKey::from_secret(&secret),
            });
        }
        // Time-based claims are checked below against our Clock, not the library's wall clock.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        Ok(Self {
            issuer: issuer.into(),
            audience: audience.into(),
            keys: out,
            validation,
        })
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

    /// The key new tokens are signed with: the first listed.
    fn current(&self) -> Result<&Key, JwtError> {
        self.keys.first().ok_or(JwtError::NoKeys)
    }

    /// Signs `claims` with `key` as an HS256 token of type `typ`, naming the key id.
    fn sign<C: serde::Serialize>(
        &self,
        key: &Key,
        typ: &str,
        claims: &C,
    ) -> Result<String, JwtError> {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(typ.to_owned());
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|e| JwtError::Signing(e.to_string()))
    }

    /// The claims of a token of type `typ` at most `max_len` bytes long, signed HS256 by one of
    /// our keys; times and party are the caller's to check (they differ per token kind).
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
        if header.alg != Algorithm::HS256 || header.typ.as_deref() != Some(typ) {
            return Err(JwtError::BadHeader);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.iter().find(|k| k.kid == kid))
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
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(
            "bastion",
            "bastion-api",
            vec![("k2".into(), vec![2; 32]), ("k1".into(), vec![1; 32])],
        )
        .unwrap()
    }

    fn mint(k: &JwtKeys, now: i64) -> (String, AccessClaims) {
        k.issue(
            &UserId::generate(),
            &SessionId::generate(),
            &["user".into()],
            Timestamp(now),
        )
        .unwrap()
    }

    #[test]
    fn issued_token_verifies_with_all_claims() {
        let k = keys();
        let (t, c) = mint(&k, 1_000);
        assert_eq!(k.verify(&t, Timestamp(1_000)), Ok(c.clone()));
        assert_eq!(c.exp - c.iat, 900);
        assert_eq!(c.roles, vec!["user".to_owned()]);
    }

    #[test]
    fn expiry_is_exact_and_follows_the_clock() {
        let k = keys();
        let (t, _) = mint(&k, 1_000);
        assert!(k.verify(&t, Timestamp(1_899)).is_ok());
        assert_eq!(k.verify(&t, Timestamp(1_900)), Err(JwtError::Expired));
        assert_eq!(k.verify(&t, Timestamp(990)), Err(JwtError::NotYetValid));
    }

    #[test]
    fn previous_key_still_verifies_and_unknown_kid_fails() {
        let old = JwtKeys::new("bastion", "bastion-api", vec![("k1".into(), vec![1; 32])]).unwrap();
        let (t, _) = mint(&old, 1_000);
        assert!(keys().verify(&t, Timestamp(1_000)).is_ok());
        let rotated_out =
            JwtKeys::new("bastion", "bastion-api", vec![("k3".into(), vec![3; 32])]).unwrap();
        assert_eq!(
            rotated_out.verify(&t, Timestamp(1_000)),
            Err(JwtError::BadHeader)
        );
    }

    #[test]
    fn same_kid_with_other_secret_is_a_bad_signature() {
        let forger =
            JwtKeys::new("bastion", "bastion-api", vec![("k2".into(), vec![9; 32])]).unwrap();
        let (t, _) = mint(&forger, 1_000);
        assert_eq!(
            keys().verify(&t, Timestamp(1_000)),
            Err(JwtError::BadSignature)
        );
    }

    /// Found by fuzzing (`fuzz/fuzz_targets/jwt.rs`): `exp - iat` overflowed (a panic with
    /// overflow checks, a wrapped and accepted lifetime without them).
    #[test]
    fn a_signed_token_whose_lifetime_overflows_is_refused_not_wrapped() {
        let k = keys();
        let user = UserId::generate().to_string();
        let session = SessionId::generate().to_string();
        for (iat, exp) in [(-1_000, i64::MAX), (i64::MIN, 2_000), (i64::MIN, i64::MAX)] {
            let claims = AccessClaims {
                iss: "bastion".into(),
                aud: "bastion-api".into(),
                sub: user.clone(),
                sid: session.clone(),
                roles: vec![],
                jti: "j".into(),
                iat,
                nbf: 0,
                exp,
            };
            let token = k
                .sign(k.current().unwrap(), ACCESS_TOKEN_TYP, &claims)
                .unwrap();
            assert_eq!(
                k.verify(&token, Timestamp(1_000)),
                Err(JwtError::BadClaims),
                "{iat} {exp}"
            );
        }
    }

    #[test]
    fn wrong_audience_or_issuer_is_refused() {
        let other = JwtKeys::new("bastion", "other-api", vec![("k2".into(), vec![2; 32])]).unwrap();
        let (t, _) = mint(&other, 1_000);
        assert_eq!(
            keys().verify(&t, Timestamp(1_000)),
            Err(JwtError::WrongParty)
        );
        let other = JwtKeys::new("evil", "bastion-api", vec![("k2".into(), vec![2; 32])]).unwrap();
        let (t, _) = mint(&other, 1_000);
        assert_eq!(
            keys().verify(&t, Timestamp(1_000)),
            Err(JwtError::WrongParty)
        );
    }

    #[test]
    fn alg_none_and_wrong_typ_are_refused() {
        let k = keys();
        let (t, _) = mint(&k, 1_000);
        let payload = t.split('.').nth(1).unwrap();
        let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt","kid":"k2"}"#);
        assert!(
            k.verify(&format!("{none}.{payload}."), Timestamp(1_000))
                .is_err()
        );
        let hs512 = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512","typ":"at+jwt","kid":"k2"}"#);
        assert_eq!(
            k.verify(&format!("{hs512}.{payload}.AAAA"), Timestamp(1_000)),
            Err(JwtError::BadHeader)
        );
        let jwt_typ = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT","kid":"k2"}"#);
        assert_eq!(
            k.verify(&format!("{jwt_typ}.{payload}.AAAA"), Timestamp(1_000)),
            Err(JwtError::BadHeader)
        );
        assert_eq!(
            k.verify("not.a.jwt", Timestamp(1_000)),
            Err(JwtError::Malformed)
        );
    }

    #[test]
    fn short_keys_and_bad_kids_are_refused_at_start() {
        assert!(matches!(
            JwtKeys::new("i", "a", vec![("k".into(), vec![1; 31])]),
            Err(JwtError::ShortKey(_))
        ));
        assert!(matches!(
            JwtKeys::new("i", "a", vec![("k k".into(), vec![1; 32])]),
            Err(JwtError::BadKid(_))
        ));
        assert!(matches!(
            JwtKeys::new(
                "i",
                "a",
                vec![("k".into(), vec![1; 32]), ("k".into(), vec![2; 32])]
            ),
            Err(JwtError::BadKid(_))
        ));
        assert!(matches!(
            JwtKeys::new("i", "a", vec![]),
            Err(JwtError::NoKeys)
        ));
    }
}
