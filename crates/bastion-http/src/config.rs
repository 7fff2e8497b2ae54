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
    /// Swapped by a secret refresh: read it once per request with `load()`.
    pub jwt: Live<JwtKeys>,
    pub rate_limits: LimitTable,
}

impl EdgeConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            allowed_origins: parse_origins(env.get("ALLOWED_ORIGINS").as_deref().unwrap_or(""))?,
            jwt: Live::new(parse_jwt(env)?),
            rate_limits: LimitTable::from_env(env)?,
        })
    }

    /// Re-reads the secret part (the JWT keys) after a secret refresh and swaps it in.
    /// Origins and rate limits are plain configuration and change only with a redeploy.
    pub fn rotate(&self, env: &dyn Env) -> Result<(), ConfigError> {
        self.jwt.store(parse_jwt(env)?);
        Ok(())
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

/// `JWT_ISSUER`, `JWT_AUDIENCE` and the `JWT_KEYS` list (current first, then verify-only keys).
pub fn parse_jwt(env: &dyn Env) -> Result<JwtKeys, ConfigError> {
    let issuer = env
        .non_empty("JWT_ISSUER")
        .unwrap_or_else(|| "bastion".to_owned());
    let audience = env
        .non_empty("JWT_AUDIENCE")
        .unwrap_or_else(|| "bastion-api".to_owned());
    let keys = keyed_secrets(env, "JWT_KEYS")?;
    JwtKeys::new(issuer, audience, keys).map_err(|e| ConfigError::new("JWT_KEYS", e.to_string()))
}

#[cfg(test)]
mod tests {
    use bastion_core::rate_limit::Policy;

    use super::map_env as env;
    use super::*;
    use crate::limits::Limit;

    const KEY: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn defaults_apply_when_only_keys_are_set() {
        let c = EdgeConfig::from_env(&env(&[("JWT_KEYS", KEY)])).unwrap();
        assert!(c.allowed_origins.is_empty());
        assert_eq!(c.rate_limits, LimitTable::default());
    }

    #[test]
    fn missing_or_short_jwt_keys_name_the_variable() {
        assert_eq!(EdgeConfig::from_env(&env(&[])).unwrap_err().var, "JWT_KEYS");
        let e = EdgeConfig::from_env(&env(&[("JWT_KEYS", "k1:AAEC")])).unwrap_err();
        assert_eq!(e.var, "JWT_KEYS");
        assert_eq!(e.reason, "JWT key \"k1\" is shorter than 256 bits");
    }

    #[test]
    fn unknown_or_malformed_rate_limits_stop_start_up() {
        let e = EdgeConfig::from_env(&env(&[("JWT_KEYS", KEY), ("RATE_LIMIT_LOGIN", "5/60")]))
            .unwrap_err();
        assert_eq!(e.var, "RATE_LIMIT_LOGIN");
        let e = EdgeConfig::from_env(&env(&[("JWT_KEYS", KEY), ("RATE_LIMIT_LOGIN_IP", "lots")]))
            .unwrap_err();
        assert_eq!(e.var, "RATE_LIMIT_LOGIN_IP");
        let c = EdgeConfig::from_env(&env(&[("JWT_KEYS", KEY), ("RATE_LIMIT_LOGIN_IP", "7/30")]))
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
        let c = EdgeConfig::from_env(&env(&[("JWT_KEYS", KEY)])).unwrap();
        assert_eq!(
            ip_policy_for(&c, "/webhooks/stripe"),
            ("webhooks-ip", Policy::per_minute(600))
        );
        assert_eq!(
            ip_policy_for(&c, "/auth/login"),
            ("ip", Policy::per_minute(100))
        );
        let c = EdgeConfig::from_env(&env(&[
            ("JWT_KEYS", KEY),
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
            let e = EdgeConfig::from_env(&env(&[("JWT_KEYS", KEY), ("ALLOWED_ORIGINS", bad)]))
                .unwrap_err();
            assert_eq!(e.var, "ALLOWED_ORIGINS", "{bad}");
        }
        let c = EdgeConfig::from_env(&env(&[
            ("JWT_KEYS", KEY),
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
