//! Google sign-in's configuration (`GOOGLE_*`, `OAUTH_RETURN_TO`): unset `GOOGLE_CLIENT_ID`
//! turns the Google routes off (503); anything set but malformed stops start-up naming the
//! variable.

use bastion_core::crypto::ct_eq;
use bastion_http::{ConfigError, Env};
use secrecy::SecretString;

pub const DEFAULT_GOOGLE_AUTH_URL: &str = "https://accounts.google.com/o/oauth2/v2/auth";
pub const DEFAULT_GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
pub const DEFAULT_GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

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
    pub(crate) fn same_as(&self, other: &Self) -> bool {
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

#[cfg(test)]
mod tests {
    use bastion_http::config::map_env as env;

    use super::*;

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
}
