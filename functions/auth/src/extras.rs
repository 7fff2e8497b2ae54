//! Optional auth configuration: Google sign-in (`GOOGLE_*`, `OAUTH_RETURN_TO`) and admin keys
//! (`ADMIN_KEYS`). Unset Google config turns the Google routes off (503); unset or empty admin
//! keys admit no key. Anything set but malformed stops start-up naming the variable.

use std::sync::Arc;

use bastion_core::crypto::ct_eq;
use bastion_http::{ConfigError, Env};
use secrecy::SecretString;

use crate::google::oidc::GoogleClient;

pub const DEFAULT_GOOGLE_AUTH_URL: &str = "https://accounts.google.com/o/oauth2/v2/auth";
pub const DEFAULT_GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
pub const DEFAULT_GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

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

/// Google OIDC client settings.
#[derive(Debug, Clone)]
pub struct GoogleConfig {
    pub client_id: String,
    pub client_secret: SecretString,
    pub redirect_uri: String,
    /// Frontend URLs a sign-in may return to, compared exactly.
    pub return_to: Vec<String>,
    pub auth_url: String,
    pub token_url: String,
    pub jwks_url: String,
}

impl GoogleConfig {
    /// `None` when `GOOGLE_CLIENT_ID` is unset: Google sign-in is off.
    pub fn from_env(env: &dyn Env) -> Result<Option<Self>, ConfigError> {
        let Some(client_id) = env.non_empty("GOOGLE_CLIENT_ID") else {
            return Ok(None);
        };
        let client_secret = SecretString::from(env.required("GOOGLE_CLIENT_SECRET")?);
        let redirect_uri = url_var(env, "GOOGLE_REDIRECT_URI", None)?;
        let raw = env.required("OAUTH_RETURN_TO")?;
        let mut return_to = Vec::new();
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            check_url("OAUTH_RETURN_TO", item)?;
            if item.contains('#') {
                return Err(ConfigError::new(
                    "OAUTH_RETURN_TO",
                    "URLs must not carry a fragment (the login code goes there)",
                ));
            }
            return_to.push(item.to_owned());
        }
        Ok(Some(Self {
            client_id: client_id.trim().to_owned(),
            client_secret,
            redirect_uri,
            return_to,
            auth_url: url_var(env, "GOOGLE_AUTH_URL", Some(DEFAULT_GOOGLE_AUTH_URL))?,
            token_url: url_var(env, "GOOGLE_TOKEN_URL", Some(DEFAULT_GOOGLE_TOKEN_URL))?,
            jwks_url: url_var(env, "GOOGLE_JWKS_URL", Some(DEFAULT_GOOGLE_JWKS_URL))?,
        }))
    }
}

impl GoogleConfig {
    fn same_as(&self, other: &Self) -> bool {
        use secrecy::ExposeSecret;
        self.client_id == other.client_id
            && ct_eq(
                self.client_secret.expose_secret().as_bytes(),
                other.client_secret.expose_secret().as_bytes(),
            )
            && self.redirect_uri == other.redirect_uri
            && self.return_to == other.return_to
            && self.auth_url == other.auth_url
            && self.token_url == other.token_url
            && self.jwks_url == other.jwks_url
    }
}

fn url_var(env: &dyn Env, var: &str, default: Option<&str>) -> Result<String, ConfigError> {
    let value = match (env.non_empty(var), default) {
        (Some(v), _) => v.trim().to_owned(),
        (None, Some(d)) => d.to_owned(),
        (None, None) => return Err(ConfigError::new(var, "is required")),
    };
    check_url(var, &value)?;
    Ok(value)
}

/// `https://…`, or plain `http://` only to a loopback host (local development and tests).
fn check_url(var: &str, value: &str) -> Result<(), ConfigError> {
    let parsed = reqwest::Url::parse(value)
        .map_err(|_| ConfigError::new(var, format!("{value:?} is not an absolute URL")))?;
    let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    let ok = match parsed.scheme() {
        "https" => parsed.host_str().is_some(),
        "http" => loopback,
        _ => false,
    };
    if ok && parsed.username().is_empty() && parsed.password().is_none() {
        Ok(())
    } else {
        Err(ConfigError::new(
            var,
            format!("{value:?} must be an https URL (http only for a loopback host)"),
        ))
    }
}

/// Configured admin keys: names and SHA-256 hashes of `adm_…` keys, never the keys.
#[derive(Debug, Clone, Default)]
pub struct AdminKeys {
    keys: Vec<(String, [u8; 32])>,
}

pub const ADMIN_KEY_PREFIX: &str = "adm_";
/// The secret after the prefix: at least 256 bits as base64url (43 characters) or hex (64).
const ADMIN_KEY_MIN_CHARS: usize = 43;
const ADMIN_KEY_MAX_CHARS: usize = 256;

impl AdminKeys {
    /// `ADMIN_KEYS` is `name:sha256hex` pairs, comma-separated; unset or empty admits nobody.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        const VAR: &str = "ADMIN_KEYS";
        let mut keys: Vec<(String, [u8; 32])> = Vec::new();
        for entry in env
            .get(VAR)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (name, hash) = entry
                .split_once(':')
                .ok_or_else(|| ConfigError::new(VAR, "entries must be name:sha256hex"))?;
            let name_ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !keys.iter().any(|(n, _)| n == name);
            if !name_ok {
                return Err(ConfigError::new(
                    VAR,
                    format!("key name {name:?} is empty, repeated or not [A-Za-z0-9_-]{{1,64}}"),
                ));
            }
            let digest: [u8; 32] = hex::decode(hash)
                .ok()
                .and_then(|d| d.try_into().ok())
                .ok_or_else(|| {
                    ConfigError::new(
                        VAR,
                        format!("hash of key {name:?} must be 64 hex characters (SHA-256)"),
                    )
                })?;
            keys.push((name.to_owned(), digest));
        }
        Ok(Self { keys })
    }

    /// The name of the configured key `presented` is, compared in constant time against every
    /// configured hash (no early exit, so timing does not tell how many keys exist or match).
    ///
    /// A presented key shorter than 256 bits is refused before any comparison, so a hash of a
    /// weak key configured by mistake (`adm_`, `adm_admin`) never opens the admin routes.
    pub fn identify(&self, presented: &str) -> Option<&str> {
        let secret = presented.strip_prefix(ADMIN_KEY_PREFIX)?;
        let strong = (ADMIN_KEY_MIN_CHARS..=ADMIN_KEY_MAX_CHARS).contains(&secret.len())
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !strong {
            return None;
        }
        let digest = bastion_core::crypto::sha256(presented.as_bytes());
        let mut found = None;
        for (name, hash) in &self.keys {
            if ct_eq(&digest, hash) {
                found = Some(name.as_str());
            }
        }
        found
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use bastion_http::config::map_env as env;

    use super::*;

    #[test]
    fn missing_or_empty_admin_keys_admit_nobody() {
        for e in [
            env(&[]),
            env(&[("ADMIN_KEYS", "")]),
            env(&[("ADMIN_KEYS", " , ")]),
        ] {
            let keys = AdminKeys::from_env(&e).unwrap();
            assert!(keys.is_empty());
            assert_eq!(keys.identify("adm_"), None);
            assert_eq!(keys.identify(""), None);
        }
    }

    #[test]
    fn admin_keys_identify_by_hash_and_refuse_malformed_entries() {
        let key = "adm_0123456789abcdef0123456789abcdef0123456789a";
        let hash = hex::encode(bastion_core::crypto::sha256(key.as_bytes()));
        let keys = AdminKeys::from_env(&env(&[("ADMIN_KEYS", &format!("ops:{hash}"))])).unwrap();
        assert_eq!(keys.identify(key), Some("ops"));
        assert_eq!(keys.identify(&format!("{key}x")), None);
        for bad in [
            "ops",
            "ops:abc",
            &format!("o p:{hash}"),
            &format!("a:{hash},a:{hash}"),
        ] {
            let e = AdminKeys::from_env(&env(&[("ADMIN_KEYS", bad)])).unwrap_err();
            assert_eq!(e.var, "ADMIN_KEYS", "{bad}");
        }
    }

    #[test]
    fn google_is_off_without_a_client_id_and_needs_https_urls() {
        assert!(GoogleConfig::from_env(&env(&[])).unwrap().is_none());
        let base = [
            ("GOOGLE_CLIENT_ID", "cid"),
            ("GOOGLE_CLIENT_SECRET", "secret"),
            (
                "GOOGLE_REDIRECT_URI",
                "https://api.example.com/auth/google/callback",
            ),
            ("OAUTH_RETURN_TO", "https://app.example.com/done"),
        ];
        let c = GoogleConfig::from_env(&env(&base)).unwrap().unwrap();
        assert_eq!(c.token_url, DEFAULT_GOOGLE_TOKEN_URL);
        assert_eq!(c.return_to, vec!["https://app.example.com/done".to_owned()]);
        let mut insecure = base.to_vec();
        insecure[2] = ("GOOGLE_REDIRECT_URI", "http://api.example.com/cb");
        let e = GoogleConfig::from_env(&env(&insecure)).unwrap_err();
        assert_eq!(e.var, "GOOGLE_REDIRECT_URI");
        let e = GoogleConfig::from_env(&env(&base[..2])).unwrap_err();
        assert_eq!(e.var, "GOOGLE_REDIRECT_URI");
    }

    #[test]
    fn a_configured_hash_of_a_weak_key_admits_nobody() {
        for weak in [
            "adm_",
            "adm_admin",
            "adm_0123456789abcdef0123456789abcdef012345",
        ] {
            let hash = hex::encode(bastion_core::crypto::sha256(weak.as_bytes()));
            let keys =
                AdminKeys::from_env(&env(&[("ADMIN_KEYS", &format!("ops:{hash}"))])).unwrap();
            assert_eq!(keys.identify(weak), None, "{weak}");
        }
        let spaced = "adm_0123456789abcdef 0123456789abcdef0123456789a";
        let hash = hex::encode(bastion_core::crypto::sha256(spaced.as_bytes()));
        let keys = AdminKeys::from_env(&env(&[("ADMIN_KEYS", &format!("ops:{hash}"))])).unwrap();
        assert_eq!(keys.identify(spaced), None);
        let hex_key = format!("adm_{}", "ab".repeat(32));
        let hash = hex::encode(bastion_core::crypto::sha256(hex_key.as_bytes()));
        let keys = AdminKeys::from_env(&env(&[("ADMIN_KEYS", &format!("ops:{hash}"))])).unwrap();
        assert_eq!(keys.identify(&hex_key), Some("ops"));
    }
}
