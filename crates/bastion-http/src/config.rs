//! Configuration every function's edge reads at start-up. A missing, unknown or malformed value
//! stops start-up with an error naming the variable (fail closed, never a silent default for a
//! secret).

use bastion_core::crypto::JwtKeys;

use crate::limits::LimitTable;

// The configuration source and its parsers live in bastion-core so every crate can read them;
// these re-exports keep `bastion_http::config::…` imports working.
pub use bastion_core::config::{
    ConfigError, Env, Live, ProcessEnv, SECRET_NAMES, bounded, decode_base64, is_secret_name,
    keyed_secrets, map_env, parse_bounded,
};

/// The edge's configuration, shared by every function.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub allowed_origins: Vec<String>,
    /// Verify-only (public) keys, swapped by a secret refresh: read it once per request with
    /// `load()`. The edge never holds a signing key; auth keeps its own (see [`parse_jwt_signer`]).
    pub jwt: Live<JwtKeys>,
    pub rate_limits: LimitTable,
    /// `REQUIRE_VERIFIED_EMAIL`: chat and exec answer 403 `email_unverified` to an account whose
    /// address is not verified (one profile read per such request).
    pub require_verified_email: bool,
}

impl EdgeConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            allowed_origins: parse_origins(env.get("ALLOWED_ORIGINS").as_deref().unwrap_or(""))?,
            jwt: Live::new(parse_jwt(env)?),
            rate_limits: LimitTable::from_env(env)?,
            require_verified_email: parse_flag(env, "REQUIRE_VERIFIED_EMAIL")?,
        })
    }

    /// Re-reads the secret part (the JWT keys) after a secret refresh and swaps it in.
    /// Origins and rate limits are plain configuration and change only with a redeploy.
    pub fn rotate(&self, env: &dyn Env) -> Result<(), ConfigError> {
        self.jwt.store(parse_jwt(env)?);
        Ok(())
    }
}

/// `true` or `false` (default false); anything else stops start-up naming the variable, so a
/// typo cannot leave a control off unnoticed.
pub fn parse_flag(env: &dyn Env, name: &str) -> Result<bool, ConfigError> {
    match env.get(name).as_deref().map(str::trim) {
        None | Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ConfigError::new(
            name,
            format!("must be true or false, not {other:?}"),
        )),
    }
}

fn parse_origins(raw: &str) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for origin in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let rest = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        let valid = rest.is_some_and(|host| {
            !host.is_empty()
                && !host.contains('/')
                && !host.contains('*')
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        });
        if !valid {
            return Err(ConfigError::new(
                "ALLOWED_ORIGINS",
                format!(
                    "{origin:?} is not an exact origin like https://app.example.com (no path, no wildcard)"
                ),
            ));
        }
        out.push(origin.to_owned());
    }
    Ok(out)
}

/// Verify keys: `JWT_VERIFY_KEYS` is `kid:base64` of 32-byte Ed25519 public keys.
pub const VERIFY_KEYS_VAR: &str = "JWT_VERIFY_KEYS";
/// Auth's signing keys: `kid:base64` of 32-byte Ed25519 private key seeds, current first.
pub const SIGNING_KEYS_VAR: &str = "JWT_SIGNING_KEYS";

fn jwt_party(env: &dyn Env) -> (String, String) {
    let issuer = env
        .non_empty("JWT_ISSUER")
        .unwrap_or_else(|| "bastion".to_owned());
    let audience = env
        .non_empty("JWT_AUDIENCE")
        .unwrap_or_else(|| "bastion-api".to_owned());
    (issuer, audience)
}

/// `JWT_ISSUER`, `JWT_AUDIENCE` and the `JWT_VERIFY_KEYS` list: keys that verify and cannot
/// sign. `JWT_SIGNING_KEYS` is never read here, even when the document holds it.
pub fn parse_jwt(env: &dyn Env) -> Result<JwtKeys, ConfigError> {
    let (issuer, audience) = jwt_party(env);
    let public = keyed_secrets(env, VERIFY_KEYS_VAR)?;
    JwtKeys::verifier(issuer, audience, public)
        .map_err(|e| ConfigError::new(VERIFY_KEYS_VAR, e.to_string()))
}

/// Auth's keys: `JWT_SIGNING_KEYS` (the first signs, later ones wait for `--promote`) over the
/// `JWT_VERIFY_KEYS` list, which must hold each signing key's public half under its kid.
pub fn parse_jwt_signer(env: &dyn Env) -> Result<JwtKeys, ConfigError> {
    let (issuer, audience) = jwt_party(env);
    let public = keyed_secrets(env, VERIFY_KEYS_VAR)?;
    let signing = keyed_secrets(env, SIGNING_KEYS_VAR)?;
    // Which list is at fault: the verify list alone is checked first.
    JwtKeys::verifier(issuer.clone(), audience.clone(), public.clone())
        .map_err(|e| ConfigError::new(VERIFY_KEYS_VAR, e.to_string()))?;
    JwtKeys::signer(issuer, audience, signing, public)
        .map_err(|e| ConfigError::new(SIGNING_KEYS_VAR, e.to_string()))
}

#[cfg(test)]
mod tests {
    use bastion_core::rate_limit::Policy;

    use super::map_env as env;
    use super::*;
    use crate::limits::Limit;

    /// The public key of the seed 00 01 … 1f (the signing key `SIGNING` of the tests).
    const KEY: &str = "k1:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
    const SIGNING: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn defaults_apply_when_only_keys_are_set() {
        let c = EdgeConfig::from_env(&env(&[("JWT_VERIFY_KEYS", KEY)])).unwrap();
        assert!(c.allowed_origins.is_empty());
        assert_eq!(c.rate_limits, LimitTable::default());
    }

    #[test]
    fn missing_or_short_jwt_keys_name_the_variable() {
        assert_eq!(
            EdgeConfig::from_env(&env(&[])).unwrap_err().var,
            "JWT_VERIFY_KEYS"
        );
        let e = EdgeConfig::from_env(&env(&[("JWT_VERIFY_KEYS", "k1:AAEC")])).unwrap_err();
        assert_eq!(e.var, "JWT_VERIFY_KEYS");
        assert_eq!(
            e.reason,
            "JWT key \"k1\" must be 32 bytes (an Ed25519 private key seed or public key)"
        );
    }

    #[test]
    fn the_edge_never_reads_signing_keys_and_its_keys_cannot_sign() {
        let c = EdgeConfig::from_env(&env(&[
            ("JWT_VERIFY_KEYS", KEY),
            ("JWT_SIGNING_KEYS", SIGNING),
        ]))
        .unwrap();
        assert!(!c.jwt.load().can_sign());
        // Signing material alone configures no edge.
        let e = EdgeConfig::from_env(&env(&[("JWT_SIGNING_KEYS", SIGNING)])).unwrap_err();
        assert_eq!(e.var, "JWT_VERIFY_KEYS");
    }

    #[test]
    fn auths_signing_keys_must_match_a_listed_public_key() {
        let signer = parse_jwt_signer(&env(&[
            ("JWT_VERIFY_KEYS", KEY),
            ("JWT_SIGNING_KEYS", SIGNING),
        ]))
        .unwrap();
        assert!(signer.can_sign());
        let other = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
        let e = parse_jwt_signer(&env(&[
            ("JWT_VERIFY_KEYS", KEY),
            ("JWT_SIGNING_KEYS", other),
        ]))
        .unwrap_err();
        assert_eq!(
            e,
            ConfigError::new(
                "JWT_SIGNING_KEYS",
                "JWT signing key \"k1\" has no matching public key of that kid in the verify keys"
            )
        );
        let e = parse_jwt_signer(&env(&[("JWT_VERIFY_KEYS", KEY)])).unwrap_err();
        assert_eq!(e.var, "JWT_SIGNING_KEYS");
    }

    #[test]
    fn unknown_or_malformed_rate_limits_stop_start_up() {
        let e = EdgeConfig::from_env(&env(&[
            ("JWT_VERIFY_KEYS", KEY),
            ("RATE_LIMIT_LOGIN", "5/60"),
        ]))
        .unwrap_err();
        assert_eq!(e.var, "RATE_LIMIT_LOGIN");
        let e = EdgeConfig::from_env(&env(&[
            ("JWT_VERIFY_KEYS", KEY),
            ("RATE_LIMIT_LOGIN_IP", "lots"),
        ]))
        .unwrap_err();
        assert_eq!(e.var, "RATE_LIMIT_LOGIN_IP");
        let c = EdgeConfig::from_env(&env(&[
            ("JWT_VERIFY_KEYS", KEY),
            ("RATE_LIMIT_LOGIN_IP", "7/30"),
        ]))
        .unwrap();
        assert_eq!(
            c.rate_limits.get(Limit::LoginIp),
            Policy {
                limit: 7,
                window_secs: 30
            }
        );
    }

    fn ip_policy_for(c: &EdgeConfig, path: &str) -> (&'static str, Policy) {
        let limit = LimitTable::ip_limit_for(path);
        (limit.spec().scope, c.rate_limits.get(limit))
    }

    #[test]
    fn webhook_paths_get_their_own_configurable_per_ip_limit() {
        let c = EdgeConfig::from_env(&env(&[("JWT_VERIFY_KEYS", KEY)])).unwrap();
        assert_eq!(
            ip_policy_for(&c, "/webhooks/stripe"),
            ("webhooks-ip", Policy::per_minute(600))
        );
        assert_eq!(
            ip_policy_for(&c, "/auth/login"),
            ("ip", Policy::per_minute(100))
        );
        let c = EdgeConfig::from_env(&env(&[
            ("JWT_VERIFY_KEYS", KEY),
            ("RATE_LIMIT_WEBHOOKS_IP", "1200/60"),
        ]))
        .unwrap();
        assert_eq!(
            c.rate_limits.get(Limit::WebhooksIp),
            Policy::per_minute(1200)
        );
    }

    #[test]
    fn origins_must_be_exact() {
        for bad in [
            "*",
            "https://*.example.com",
            "https://a.com/path",
            "ftp://a.com",
            "a.com",
        ] {
            let e =
                EdgeConfig::from_env(&env(&[("JWT_VERIFY_KEYS", KEY), ("ALLOWED_ORIGINS", bad)]))
                    .unwrap_err();
            assert_eq!(e.var, "ALLOWED_ORIGINS", "{bad}");
        }
        let c = EdgeConfig::from_env(&env(&[
            ("JWT_VERIFY_KEYS", KEY),
            (
                "ALLOWED_ORIGINS",
                "https://app.example.com, http://localhost:5173",
            ),
        ]))
        .unwrap();
        assert_eq!(
            c.allowed_origins,
            vec!["https://app.example.com", "http://localhost:5173"]
        );
    }
}
