//! Device tokens (OWASP's device-cookie lockout scheme): a long-lived EdDSA token a successful
//! login hands back, naming the account, one device, the password and the session epoch it was
//! issued under. A login that presents one is limited per (account, device), so strangers'
//! failures cannot lock the owner out of a device they have used; a password change or a
//! revocation of all the account's sessions (which advances the epoch) revokes it.

use super::{JwtError, JwtKeys, SKEW_SECS};
use crate::clock::Timestamp;
use crate::ids::UserId;

/// Device tokens live 180 days.
pub const DEVICE_TOKEN_TTL_SECS: i64 = 180 * 86_400;
/// Never taken as an access token (`at+jwt`), nor an access token as this.
pub const DEVICE_TOKEN_TYP: &str = "device+jwt";

/// The claims of a device token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    /// Random device id: the rate-limit subject of logins presenting this token.
    pub did: String,
    /// SHA-256 (hex) of the normalized email, so the token is checked before the lookup.
    pub eml: String,
    /// Digest of the password hash it was issued under: a password change revokes it.
    pub pwv: String,
    /// The account's session epoch at issue: revoking all its sessions advances the epoch and
    /// so revokes every device token issued before (absent in older tokens: epoch 0).
    #[serde(default)]
    pub rev: u64,
    pub iat: i64,
    pub exp: i64,
}

/// What a device token is bound to: the account and the password hash of the moment.
pub fn password_version(password_hash: &str) -> String {
    // The hash is salted and peppered, so this digest is no offline oracle for the password.
    hex::encode(&super::super::sha256(password_hash.as_bytes())[..16])
}

pub fn email_digest(normalized_email: &str) -> String {
    hex::encode(super::super::sha256(normalized_email.as_bytes()))
}

impl JwtKeys {
    /// Mints a device token for `user` (a fresh device id each time).
    pub fn issue_device(
        &self,
        user: &UserId,
        normalized_email: &str,
        password_hash: &str,
        session_epoch: u64,
        now: Timestamp,
    ) -> Result<String, JwtError> {
        let key = self.current()?;
        let claims = DeviceClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user.to_string(),
            did: hex::encode(super::super::random_bytes::<16>()),
            eml: email_digest(normalized_email),
            pwv: password_version(password_hash),
            rev: session_epoch,
            iat: now.secs(),
            exp: now.secs() + DEVICE_TOKEN_TTL_SECS,
        };
        self.sign(key, DEVICE_TOKEN_TYP, &claims)
    }

    /// Verifies signature, header, issuer, audience and lifetime of a device token.
    pub fn verify_device(&self, token: &str, now: Timestamp) -> Result<DeviceClaims, JwtError> {
        let c: DeviceClaims = self.decode(token, DEVICE_TOKEN_TYP, 2048)?;
        self.check_party(&c.iss, &c.aud)?;
        check_signed_claims(c.iat, c.exp, DEVICE_TOKEN_TTL_SECS, now, &c.sub, &c.did)?;
        Ok(c)
    }
}

/// What a device or `mfa_token` must hold besides its signature and parties: unexpired, issued
/// no later than now (with skew), no longer-lived than its kind, for a valid user id, and with a
/// 128-bit hex id (`did`, `jti`).
pub(super) fn check_signed_claims(
    iat: i64,
    exp: i64,
    ttl: i64,
    now: Timestamp,
    sub: &str,
    id: &str,
) -> Result<(), JwtError> {
    let t = now.secs();
    if exp <= t {
        return Err(JwtError::Expired);
    }
    // Checked: a signed `iat` far in the past must not wrap the lifetime into range.
    let lifetime = exp.checked_sub(iat);
    if iat > t + SKEW_SECS || lifetime.is_none_or(|life| life > ttl) {
        return Err(JwtError::BadClaims);
    }
    UserId::parse(sub).map_err(|_| JwtError::BadClaims)?;
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(JwtError::BadClaims);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SessionId;

    fn keys() -> JwtKeys {
        super::super::tests::signer_of("bastion", "bastion-api", &[("k1", 1)])
    }

    #[test]
    fn a_device_token_verifies_until_it_expires_and_is_never_an_access_token() {
        let k = keys();
        let user = UserId::generate();
        let t = k
            .issue_device(&user, "ada@example.com", "$argon2id$x", 3, Timestamp(1_000))
            .unwrap();
        let c = k.verify_device(&t, Timestamp(1_000)).unwrap();
        assert_eq!(c.sub, user.to_string());
        assert_eq!(c.eml, email_digest("ada@example.com"));
        assert_eq!(c.pwv, password_version("$argon2id$x"));
        assert_eq!(c.rev, 3);
        assert_eq!(
            k.verify_device(&t, Timestamp(1_000 + DEVICE_TOKEN_TTL_SECS)),
            Err(JwtError::Expired)
        );
        assert_eq!(k.verify(&t, Timestamp(1_000)), Err(JwtError::BadHeader));
        let (access, _) = k
            .issue(&user, &SessionId::generate(), &[], Timestamp(1_000))
            .unwrap();
        assert_eq!(
            k.verify_device(&access, Timestamp(1_000)),
            Err(JwtError::BadHeader)
        );
    }

    /// Found by fuzzing (`fuzz/fuzz_targets/jwt.rs`): `exp - iat` overflowed.
    #[test]
    fn a_signed_device_token_whose_lifetime_overflows_is_refused_not_wrapped() {
        let k = keys();
        for (iat, exp) in [(-1_000, i64::MAX), (i64::MIN, 2_000)] {
            let claims = DeviceClaims {
                iss: "bastion".into(),
                aud: "bastion-api".into(),
                sub: UserId::generate().to_string(),
                did: "0123456789abcdef0123456789abcdef".into(),
                eml: email_digest("a@b.co"),
                pwv: password_version("h"),
                rev: 0,
                iat,
                exp,
            };
            let token = k
                .sign(k.current().unwrap(), DEVICE_TOKEN_TYP, &claims)
                .unwrap();
            assert_eq!(
                k.verify_device(&token, Timestamp(1_000)),
                Err(JwtError::BadClaims),
                "{iat} {exp}"
            );
        }
    }

    #[test]
    fn a_device_token_signed_by_another_key_is_refused() {
        let other = super::super::tests::signer_of("bastion", "bastion-api", &[("k1", 9)]);
        let t = other
            .issue_device(&UserId::generate(), "a@b.co", "h", 0, Timestamp(1_000))
            .unwrap();
        assert_eq!(
            keys().verify_device(&t, Timestamp(1_000)),
            Err(JwtError::BadSignature)
        );
    }
}
