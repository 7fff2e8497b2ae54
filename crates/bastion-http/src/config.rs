//! Configuration every function's edge reads at start-up. A missing, unknown or malformed value
//! stops start-up with an error naming the variable (fail closed, never a silent default for a
//! secret).

use std::collections::HashMap;
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine;
use bastion_core::crypto::JwtKeys;
use bastion_core::rate_limit::Policy;

/// A start-up configuration problem, naming the variable at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration {var}: {reason}")]
pub struct ConfigError {
    pub var: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(var: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            var: var.into(),
            reason: reason.into(),
        }
    }
}

/// Where configuration comes from: the process environment, or a map in tests.
pub trait Env {
    fn get(&self, key: &str) -> Option<String>;
    fn keys(&self) -> Vec<String>;

    /// The value if set and not blank.
    fn non_empty(&self, key: &str) -> Option<String> {
        self.get(key).filter(|v| !v.trim().is_empty())
    }

    fn required(&self, key: &str) -> Result<String, ConfigError> {
        self.non_empty(key)
            .ok_or_else(|| ConfigError::new(key, "is required"))
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }

    fn keys(&self) -> Vec<String> {
        std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .collect()
    }
}

impl Env for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).cloned()
    }

    fn keys(&self) -> Vec<String> {
        HashMap::keys(self).cloned().collect()
    }
}

/// A whole number within `range`; the error names `var` and the range, never the value.
pub fn parse_bounded<T>(var: &str, raw: &str, range: RangeInclusive<T>) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + Display,
{
    raw.trim()
        .parse::<T>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            ConfigError::new(
                var,
                format!("must be a whole number {}..={}", range.start(), range.end()),
            )
        })
}

/// The number in `var`, or `default` when it is unset or blank; see [`parse_bounded`].
pub fn bounded<T>(
    env: &dyn Env,
    var: &str,
    default: T,
    range: RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + Display,
{
    match env.non_empty(var) {
        None => Ok(default),
        Some(raw) => parse_bounded(var, &raw, range),
    }
}

/// An in-memory [`Env`] holding `pairs`, for tests and tools that configure without the process
/// environment.
pub fn map_env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

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
    pub jwt: Arc<JwtKeys>,
    pub rate_limits: RateLimits,
}

impl EdgeConfig {
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            allowed_origins: parse_origins(env.get("ALLOWED_ORIGINS").as_deref().unwrap_or(""))?,
            jwt: Arc::new(parse_jwt(env)?),
            rate_limits: RateLimits::from_env(env)?,
        })
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

/// Base64 (standard or URL-safe) to bytes, with an error naming `var` but never the value.
pub fn decode_base64(var: &str, what: &str, raw: &str) -> Result<Vec<u8>, ConfigError> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    STANDARD
        .decode(raw.trim())
        .or_else(|_| URL_SAFE_NO_PAD.decode(raw.trim()))
        .map_err(|_| ConfigError::new(var, format!("{what} is not valid base64")))
}

/// A required `id:base64,id:base64…` list (current first), as used for rotating secrets.
pub fn keyed_secrets(env: &dyn Env, var: &str) -> Result<Vec<(String, Vec<u8>)>, ConfigError> {
    let raw = env.required(var)?;
    let mut out = Vec::new();
    for pair in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, b64) = pair.split_once(':').ok_or_else(|| {
            ConfigError::new(
                var,
                "each entry must be id:base64 (comma-separated, current first)",
            )
        })?;
        let id = id.trim();
        out.push((
            id.to_owned(),
            decode_base64(var, &format!("key {id:?}"), b64)?,
        ));
    }
    if out.is_empty() {
        return Err(ConfigError::new(var, "is required"));
    }
    Ok(out)
}

fn parse_jwt(env: &dyn Env) -> Result<JwtKeys, ConfigError> {
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
    fn bounded_numbers_default_when_unset_and_name_the_variable_and_range_when_wrong() {
        let e = env(&[("N", " 7 "), ("BLANK", " "), ("LOW", "0"), ("WORD", "ten")]);
        assert_eq!(bounded(&e, "N", 3u64, 1..=10), Ok(7));
        assert_eq!(bounded(&e, "UNSET", 3u64, 1..=10), Ok(3));
        assert_eq!(bounded(&e, "BLANK", -3i64, -5..=10), Ok(-3));
        for var in ["LOW", "WORD"] {
            assert_eq!(
                bounded(&e, var, 3u64, 1..=10),
                Err(ConfigError::new(var, "must be a whole number 1..=10"))
            );
        }
        assert_eq!(
            parse_bounded("LOW", "", 1u64..=10).unwrap_err().to_string(),
            "configuration LOW: must be a whole number 1..=10"
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
