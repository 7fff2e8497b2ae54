//! Configuration every function's edge reads at start-up. A missing, unknown or malformed value
//! stops start-up with an error naming the variable (fail closed, never a silent default for a
//! secret).

use bastion_core::crypto::JwtKeys;
use bastion_core::rate_limit::Policy;

// The configuration source and its parsers live in bastion-core so every crate can read them;
// these re-exports keep `bastion_http::config::…` imports working.
pub use bastion_core::config::{
    ConfigError, Env, Live, ProcessEnv, SECRET_NAMES, bounded, decode_base64, is_secret_name,
    keyed_secrets, map_env, parse_bounded,
};

/// The named limits. Names map to `RATE_LIMIT_<NAME>` variables holding `<limit>/<seconds>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub login_account: Policy,
    pub login_ip: Policy,
    pub register_ip: Policy,
    pub refresh_session: Policy,
    pub default_ip: Policy,
    pub default_account: Policy,
    /// Per-IP limit on `/webhooks/*` instead of `default_ip`: platforms deliver in bursts
    /// from a few addresses.
    pub webhooks_ip: Policy,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            login_account: Policy::per_minute(5),
            login_ip: Policy::per_minute(20),
            register_ip: Policy::per_minute(3),
            refresh_session: Policy::per_minute(10),
            default_ip: Policy::per_minute(100),
            default_account: Policy::per_minute(100),
            webhooks_ip: Policy::per_minute(600),
        }
    }
}

const RATE_LIMIT_PREFIX: &str = "RATE_LIMIT_";

impl RateLimits {
    /// Every variable name with its default, for docs and `--help`-style listings.
    pub fn variables() -> [(&'static str, &'static str); 7] {
        [
            ("RATE_LIMIT_LOGIN_ACCOUNT", "5/60"),
            ("RATE_LIMIT_LOGIN_IP", "20/60"),
            ("RATE_LIMIT_REGISTER_IP", "3/60"),
            ("RATE_LIMIT_REFRESH_SESSION", "10/60"),
            ("RATE_LIMIT_DEFAULT_IP", "100/60"),
            ("RATE_LIMIT_DEFAULT_ACCOUNT", "100/60"),
            ("RATE_LIMIT_WEBHOOKS_IP", "600/60"),
        ]
    }

    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let known: Vec<&str> = Self::variables().iter().map(|(k, _)| *k).collect();
        if let Some(unknown) = env
            .keys()
            .into_iter()
            .find(|k| k.starts_with(RATE_LIMIT_PREFIX) && !known.contains(&k.as_str()))
        {
            return Err(ConfigError::new(
                unknown,
                format!("unknown rate-limit variable; known: {}", known.join(", ")),
            ));
        }
        let mut limits = Self::default();
        let slots: [(&str, &mut Policy); 7] = [
            ("RATE_LIMIT_LOGIN_ACCOUNT", &mut limits.login_account),
            ("RATE_LIMIT_LOGIN_IP", &mut limits.login_ip),
            ("RATE_LIMIT_REGISTER_IP", &mut limits.register_ip),
            ("RATE_LIMIT_REFRESH_SESSION", &mut limits.refresh_session),
            ("RATE_LIMIT_DEFAULT_IP", &mut limits.default_ip),
            ("RATE_LIMIT_DEFAULT_ACCOUNT", &mut limits.default_account),
            ("RATE_LIMIT_WEBHOOKS_IP", &mut limits.webhooks_ip),
        ];
        for (var, slot) in slots {
            if let Some(v) = env.get(var) {
                *slot = parse_policy(var, &v)?;
            }
        }
        Ok(limits)
    }
}

impl RateLimits {
    /// The per-IP counter scope and policy the pipeline applies to a request path.
    pub fn ip_policy_for(&self, path: &str) -> (&'static str, Policy) {
        if path.starts_with("/webhooks/") {
            ("webhooks-ip", self.webhooks_ip)
        } else {
            ("ip", self.default_ip)
        }
    }
}

fn parse_policy(var: &str, raw: &str) -> Result<Policy, ConfigError> {
    let bad = || {
        ConfigError::new(
            var,
            "must be <limit>/<seconds>, e.g. 5/60, both 1..=1000000",
        )
    };
    let (limit, window) = raw.trim().split_once('/').ok_or_else(bad)?;
    let limit: u32 = limit.trim().parse().map_err(|_| bad())?;
    let window_secs: u32 = window.trim().parse().map_err(|_| bad())?;
    if !(1..=1_000_000).contains(&limit) || !(1..=1_000_000).contains(&window_secs) {
        return Err(bad());
    }
    Ok(Policy { limit, window_secs })
}

/// The edge's configuration, shared by every function.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub allowed_origins: Vec<String>,
    /// Swapped by a secret refresh: read it once per request with `load()`.
    pub jwt: Live<JwtKeys>,
    pub rate_limits: RateLimits,
}

impl EdgeConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            allowed_origins: parse_origins(env.get("ALLOWED_ORIGINS").as_deref().unwrap_or(""))?,
            jwt: Live::new(parse_jwt(env)?),
            rate_limits: RateLimits::from_env(env)?,
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
    use super::map_env as env;
    use super::*;

    const KEY: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn defaults_apply_when_only_keys_are_set() {
        let c = EdgeConfig::from_env(&env(&[("JWT_KEYS", KEY)])).unwrap();
        assert!(c.allowed_origins.is_empty());
        assert_eq!(c.rate_limits, RateLimits::default());
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
            c.rate_limits.login_ip,
            Policy {
                limit: 7,
                window_secs: 30
            }
        );
    }

    #[test]
    fn webhook_paths_get_their_own_configurable_per_ip_limit() {
        let c = EdgeConfig::from_env(&env(&[("JWT_KEYS", KEY)])).unwrap();
        assert_eq!(
            c.rate_limits.ip_policy_for("/webhooks/stripe"),
            ("webhooks-ip", Policy::per_minute(600))
        );
        assert_eq!(
            c.rate_limits.ip_policy_for("/auth/login"),
            ("ip", Policy::per_minute(100))
        );
        let c = EdgeConfig::from_env(&env(&[
            ("JWT_KEYS", KEY),
            ("RATE_LIMIT_WEBHOOKS_IP", "1200/60"),
        ]))
        .unwrap();
        assert_eq!(c.rate_limits.webhooks_ip, Policy::per_minute(1200));
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
