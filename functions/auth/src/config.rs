//! Auth configuration: the token signing keys (only auth holds them), the password pepper(s), the
//! legacy HMAC key, the session policy, and the optional parts (Google sign-in, admin keys)
//! re-read on a secret refresh.

use bastion_core::crypto::jwt::ACCESS_TOKEN_TTL_SECS;
use bastion_core::crypto::{JwtKeys, PasswordHasher, password::Pepper};
use bastion_http::config::{
    decode_base64, keyed_secrets, parse_bounded, parse_jwt, parse_jwt_signer,
};
use bastion_http::{ConfigError, Env};

use std::sync::Arc;

use crate::AuthState;
use crate::admin_keys::AdminKeys;
use crate::google::config::GoogleConfig;
use crate::google::oidc::GoogleClient;

/// How long a session may live, in seconds, checked in code on every refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session unused (not refreshed) for this long is dead.
    pub idle_secs: i64,
    /// A session older than this is dead however active.
    pub absolute_secs: i64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_secs: 7 * 24 * 3600,
            absolute_secs: 30 * 24 * 3600,
        }
    }
}

#[derive(Debug)]
pub struct AuthConfig {
    pub hasher: PasswordHasher,
    pub sessions: SessionPolicy,
    /// Signs access and device tokens (and verifies device tokens).
    pub signer: JwtKeys,
}

impl AuthConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            hasher: parse_hasher(env)?,
            sessions: parse_sessions(env)?,
            signer: parse_jwt_signer(env)?,
        })
    }
}

/// What a secret refresh re-reads for the auth function: the JWT keys (the edge's verify keys and
/// auth's signing keys), the pepper versions and
/// legacy key, the admin keys and Google's client secret. Everything is parsed first and swapped
/// only when all of it parsed, so a bad document changes nothing. Session bounds are plain
/// configuration and do not change without a redeploy.
pub fn rotate(state: &AuthState, env: &dyn Env) -> Result<(), ConfigError> {
    let jwt = parse_jwt(env)?;
    let signer = parse_jwt_signer(env)?;
    let hasher = parse_hasher(env)?;
    let extras = state.extras.load().refreshed(env)?;
    state.edge.config.jwt.store(jwt);
    state.signer.store(signer);
    state.hasher.store(hasher);
    state.extras.store(extras);
    Ok(())
}

/// `PASSWORD_PEPPER` is `version:base64` pairs, comma-separated, current first; the optional
/// `LEGACY_PASSWORD_HMAC_KEY` is the old system's key as base64 (refused when empty).
fn parse_hasher(env: &dyn Env) -> Result<PasswordHasher, ConfigError> {
    const VAR: &str = "PASSWORD_PEPPER";
    let mut peppers = Vec::new();
    for (version, key) in keyed_secrets(env, VAR)? {
        let version: u16 = version
            .parse()
            .map_err(|_| ConfigError::new(VAR, "version must be a number 1..=255"))?;
        peppers.push(Pepper::new(version, key).map_err(|e| ConfigError::new(VAR, e.to_string()))?);
    }
    let mut peppers = peppers.into_iter();
    let current = peppers
        .next()
        .ok_or_else(|| ConfigError::new(VAR, "is required"))?;
    let legacy = match env.get("LEGACY_PASSWORD_HMAC_KEY") {
        None => None,
        Some(v) if v.trim().is_empty() => {
            return Err(ConfigError::new(
                "LEGACY_PASSWORD_HMAC_KEY",
                "is set but empty; unset it to disable legacy logins",
            ));
        }
        Some(v) => Some(decode_base64("LEGACY_PASSWORD_HMAC_KEY", "key", &v)?),
    };
    PasswordHasher::new(current, peppers.collect(), legacy)
        .map_err(|e| ConfigError::new(VAR, e.to_string()))
}

fn parse_sessions(env: &dyn Env) -> Result<SessionPolicy, ConfigError> {
    let mut policy = SessionPolicy::default();
    for (var, slot) in [
        ("SESSION_IDLE_TIMEOUT_SECS", &mut policy.idle_secs),
        ("SESSION_MAX_LIFETIME_SECS", &mut policy.absolute_secs),
    ] {
        if let Some(v) = env.get(var) {
            // Set but blank is malformed here, not unset: a session bound is stated or absent.
            // At least one access-token lifetime: access tokens are minted only at login and
            // refresh, so a shorter idle bound would not hold for a token already issued.
            *slot = parse_bounded(var, &v, ACCESS_TOKEN_TTL_SECS..=365 * 24 * 3600)?;
        }
    }
    if policy.idle_secs > policy.absolute_secs {
        return Err(ConfigError::new(
            "SESSION_IDLE_TIMEOUT_SECS",
            "must not exceed SESSION_MAX_LIFETIME_SECS",
        ));
    }
    Ok(policy)
}

/// The optional parts of the auth function.
#[derive(Default)]
pub struct AuthExtras {
    pub google: Option<Arc<GoogleClient>>,
    pub admin_keys: AdminKeys,
}

impl AuthExtras {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let google = match GoogleConfig::from_env(env)? {
            Some(config) => Some(Arc::new(GoogleClient::new(config)?)),
            None => None,
        };
        Ok(Self {
            google,
            admin_keys: AdminKeys::from_env(env)?,
        })
    }

    /// The extras re-read after a secret refresh. The Google client (its HTTP connections and
    /// JWKS cache) is kept when its configuration, secret included, is unchanged.
    pub fn refreshed(&self, env: &dyn Env) -> Result<Self, ConfigError> {
        let google = match GoogleConfig::from_env(env)? {
            None => None,
            Some(config) => match &self.google {
                Some(current) if current.config.same_as(&config) => Some(current.clone()),
                _ => Some(Arc::new(GoogleClient::new(config)?)),
            },
        };
        Ok(Self {
            google,
            admin_keys: AdminKeys::from_env(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use bastion_http::config::map_env as env;

    use super::*;

    const PEPPER: &str = "1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const SIGNING: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const VERIFY: &str = "k1:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";

    #[test]
    fn pepper_is_required_and_must_be_long_enough() {
        assert_eq!(
            AuthConfig::from_env(&env(&[])).unwrap_err().var,
            "PASSWORD_PEPPER"
        );
        let e = AuthConfig::from_env(&env(&[("PASSWORD_PEPPER", "1:AAEC")])).unwrap_err();
        assert_eq!(e.reason, "pepper must be at least 32 bytes");
    }

    #[test]
    fn empty_legacy_key_is_refused() {
        let e = AuthConfig::from_env(&env(&[
            ("PASSWORD_PEPPER", PEPPER),
            ("LEGACY_PASSWORD_HMAC_KEY", " "),
        ]))
        .unwrap_err();
        assert_eq!(e.var, "LEGACY_PASSWORD_HMAC_KEY");
    }

    #[test]
    fn session_policy_defaults_and_bounds() {
        let c = AuthConfig::from_env(&env(&[
            ("PASSWORD_PEPPER", PEPPER),
            ("JWT_SIGNING_KEYS", SIGNING),
            ("JWT_VERIFY_KEYS", VERIFY),
        ]))
        .unwrap();
        assert_eq!(c.sessions, SessionPolicy::default());
        let e = AuthConfig::from_env(&env(&[
            ("PASSWORD_PEPPER", PEPPER),
            ("SESSION_IDLE_TIMEOUT_SECS", "899"),
        ]))
        .unwrap_err();
        assert_eq!(e.var, "SESSION_IDLE_TIMEOUT_SECS");
        let e = AuthConfig::from_env(&env(&[
            ("PASSWORD_PEPPER", PEPPER),
            ("SESSION_MAX_LIFETIME_SECS", " "),
        ]))
        .unwrap_err();
        assert_eq!(
            e,
            ConfigError::new(
                "SESSION_MAX_LIFETIME_SECS",
                "must be a whole number 900..=31536000"
            )
        );
    }
}
