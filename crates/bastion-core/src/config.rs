//! The one configuration source every crate reads (`Env`), the helpers that parse its values
//! with errors naming the variable (never the value), the names that are secrets, and `Live`,
//! the swappable handle through which rotated secrets reach request handlers.

use std::collections::HashMap;
use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};

use base64::Engine;

/// Every configuration name that holds a secret. In Lambda these come only from the Secrets
/// Manager document; one of them in the plain environment stops start-up. `JWT_VERIFY_KEYS`
/// holds public keys, but it is here too: a token is only as trustworthy as the list it is
/// checked against, so the list comes from the same access-controlled place as every key and
/// rotates the same way (a refresh, no redeploy).
pub const SECRET_NAMES: [&str; 15] = [
    "JWT_SIGNING_KEYS",
    "JWT_VERIFY_KEYS",
    "PASSWORD_PEPPER",
    "LEGACY_PASSWORD_HMAC_KEY",
    "EXEC_SANDBOX_KEY",
    "ADMIN_KEYS",
    "GOOGLE_CLIENT_SECRET",
    "LLM_API_KEY",
    "LLM_FALLBACK_API_KEY",
    "TELEGRAM_WEBHOOK_SECRET",
    "TELEGRAM_BOT_TOKEN",
    "FACEBOOK_APP_SECRET",
    "FACEBOOK_VERIFY_TOKEN",
    "FACEBOOK_PAGE_ACCESS_TOKEN",
    "STRIPE_WEBHOOK_SECRETS",
];

/// Secret names no longer read, with what replaced them: refused wherever they appear so a
/// deployment that still holds one fails closed with the migration to do, never half-configured.
pub const RETIRED_SECRET_NAMES: [(&str, &str); 1] = [(
    "JWT_KEYS",
    "held HS256 keys, which are no longer read: store JWT_SIGNING_KEYS (auth) and JWT_VERIFY_KEYS instead (infra/put-secret, docs/DEPLOY.md)",
)];

/// Why `name` is refused if it is a retired secret name.
pub fn retired_secret(name: &str) -> Option<&'static str> {
    RETIRED_SECRET_NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, why)| *why)
}

/// Whether `name` is one of [`SECRET_NAMES`].
pub fn is_secret_name(name: &str) -> bool {
    SECRET_NAMES.contains(&name)
}

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

/// Where configuration comes from: the process environment, a secret overlay, or a map in tests.
pub trait Env: Send + Sync {
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

/// The process environment. The only place outside binaries that reads it.
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

/// An in-memory [`Env`] holding `pairs`, for tests and tools that configure without the process
/// environment.
pub fn map_env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
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

/// A value that a secret refresh may replace while requests run: handlers call [`Live::load`]
/// once per request and keep that snapshot, so one request never mixes two configurations.
pub struct Live<T>(Arc<RwLock<Arc<T>>>);

impl<T> Live<T> {
    pub fn new(value: T) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(value))))
    }

    /// The current value. A writer never holds the lock while parsing, so this never waits on
    /// a refresh; a poisoned lock still holds a whole value (a swap is one assignment).
    pub fn load(&self) -> Arc<T> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the value for every later [`Live::load`].
    pub fn store(&self, value: T) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(value);
    }
}

impl<T> Clone for Live<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Live<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.load().fmt(f)
    }
}

impl<T: Default> Default for Live<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> From<T> for Live<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_numbers_default_when_unset_and_name_the_variable_and_range_when_wrong() {
        let e = map_env(&[("N", " 7 "), ("BLANK", " "), ("LOW", "0"), ("WORD", "ten")]);
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
    fn keyed_secrets_keep_the_order_and_name_the_variable_never_the_value() {
        let e = map_env(&[("K", "a:AAEC, b:AwQF"), ("BAD", "a:not*base64")]);
        assert_eq!(
            keyed_secrets(&e, "K").unwrap(),
            vec![
                ("a".to_owned(), vec![0, 1, 2]),
                ("b".to_owned(), vec![3, 4, 5])
            ]
        );
        let err = keyed_secrets(&e, "BAD").unwrap_err();
        assert_eq!(
            err,
            ConfigError::new("BAD", "key \"a\" is not valid base64")
        );
        assert!(!err.to_string().contains("not*base64"));
    }

    #[test]
    fn a_live_value_swapped_is_seen_by_later_loads_but_not_by_a_held_snapshot() {
        let live = Live::new(1);
        let clone = live.clone();
        let held = live.load();
        clone.store(2);
        assert_eq!((*held, *live.load()), (1, 2));
    }

    #[test]
    fn every_secret_name_is_recognised_and_plain_names_are_not() {
        assert!(SECRET_NAMES.iter().all(|n| is_secret_name(n)));
        assert!(!is_secret_name("TABLE_NAME"));
        assert!(!is_secret_name("jwt_verify_keys"));
        assert!(!is_secret_name("JWT_KEYS"));
        assert!(retired_secret("JWT_KEYS").is_some());
    }

    #[test]
    fn both_provider_keys_are_secrets_so_lambda_refuses_them_in_the_plain_environment() {
        assert!(is_secret_name("LLM_API_KEY"));
        assert!(is_secret_name("LLM_FALLBACK_API_KEY"));
        assert!(!is_secret_name("LLM_FALLBACK_BASE_URL"));
        assert!(!is_secret_name("LLM_FALLBACK_MODEL"));
    }
}
