//! The `mfa_token` of a sign-in whose first factor passed and whose second is still due: an
//! EdDSA token auth alone signs and verifies, naming the account, the password and the session
//! epoch it was issued under (a password change or a revocation of every session kills it) and
//! a random id under which its attempts are counted.

use super::device::{check_signed_claims, password_version};
use super::{JwtError, JwtKeys};
use crate::clock::Timestamp;
use crate::ids::UserId;

/// An `mfa_token` lives 5 minutes.
pub const MFA_TOKEN_TTL_SECS: i64 = 300;
/// Never taken as an access or device token, nor they as this.
pub const MFA_TOKEN_TYP: &str = "mfa+jwt";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MfaClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    /// Random id: the key its attempts are counted under.
    pub jti: String,
    /// Digest of the password hash it was issued under.
    pub pwv: String,
    /// The account's session epoch at issue.
    pub rev: u64,
    pub iat: i64,
    pub exp: i64,
}

impl JwtKeys {
    /// Mints the `mfa_token` of a sign-in by `user` that still needs its second factor.
    pub fn issue_mfa(
        &self,
        user: &UserId,
        password_hash: &str,
        session_epoch: u64,
        now: Timestamp,
    ) -> Result<(String, MfaClaims), JwtError> {
        let key = self.current()?;
        let claims = MfaClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user.to_string(),
            jti: hex::encode(super::super::random_bytes::<16>()),
            pwv: password_version(password_hash),
            rev: session_epoch,
            iat: now.secs(),
            exp: now.secs() + MFA_TOKEN_TTL_SECS,
        };
        let token = self.sign(key, MFA_TOKEN_TYP, &claims)?;
        Ok((token, claims))
    }

    /// Verifies signature, header, issuer, audience and lifetime of an `mfa_token`.
    pub fn verify_mfa(&self, token: &str, now: Timestamp) -> Result<MfaClaims, JwtError> {
        let c: MfaClaims = self.decode(token, MFA_TOKEN_TYP, 2048)?;
        self.check_party(&c.iss, &c.aud)?;
        check_signed_claims(c.iat, c.exp, MFA_TOKEN_TTL_SECS, now, &c.sub, &c.jti)?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SessionId;

    fn keys() -> JwtKeys {
        super::super::tests::signer_of("bastion", "bastion-api", &[("k1", 1)])
    }

    #[test]
    fn an_mfa_token_verifies_for_five_minutes_and_names_what_it_was_issued_under() {
        let k = keys();
        let user = UserId::generate();
        let (t, issued) = k
            .issue_mfa(&user, "$argon2id$x", 4, Timestamp(1_000))
            .unwrap();
        let c = k.verify_mfa(&t, Timestamp(1_299)).unwrap();
        assert_eq!(c, issued);
        assert_eq!(c.sub, user.to_string());
        assert_eq!(c.pwv, password_version("$argon2id$x"));
        assert_eq!(c.rev, 4);
        assert_eq!(k.verify_mfa(&t, Timestamp(1_300)), Err(JwtError::Expired));
    }

    #[test]
    fn mfa_access_and_device_tokens_are_never_taken_for_one_another() {
        let k = keys();
        let user = UserId::generate();
        let now = Timestamp(1_000);
        let (mfa, _) = k.issue_mfa(&user, "h", 0, now).unwrap();
        let (access, _) = k.issue(&user, &SessionId::generate(), &[], now).unwrap();
        let device = k.issue_device(&user, "a@b.co", "h", 0, now).unwrap();
        assert_eq!(k.verify(&mfa, now), Err(JwtError::BadHeader));
        assert_eq!(k.verify_device(&mfa, now), Err(JwtError::BadHeader));
        assert_eq!(k.verify_mfa(&access, now), Err(JwtError::BadHeader));
        assert_eq!(k.verify_mfa(&device, now), Err(JwtError::BadHeader));
    }

    #[test]
    fn an_mfa_token_signed_by_another_key_is_refused() {
        let other = super::super::tests::signer_of("bastion", "bastion-api", &[("k1", 9)]);
        let (t, _) = other
            .issue_mfa(&UserId::generate(), "h", 0, Timestamp(1_000))
            .unwrap();
        assert_eq!(
            keys().verify_mfa(&t, Timestamp(1_000)),
            Err(JwtError::BadSignature)
        );
    }
}
