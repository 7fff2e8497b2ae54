//! Talking to Google: exchanging an authorization code (with the PKCE verifier) at the token
//! endpoint, and verifying the ID token against Google's JWKS (RS256 only, keys cached and
//! refreshed on an unknown `kid`, at most once per [`JWKS_MIN_REFRESH_SECS`]).

use std::collections::HashMap;
use std::time::Duration;

use bastion_core::Timestamp;
use bastion_core::crypto::ct_eq;
use bastion_http::ConfigError;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::google::config::GoogleConfig;

/// The issuers Google signs ID tokens as.
const ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];
/// An unknown `kid` refetches the JWKS, but never more often than this (a flood of forged
/// tokens must not turn into a flood of requests to Google).
pub const JWKS_MIN_REFRESH_SECS: i64 = 60;
/// Known keys are trusted this long before a routine refetch.
const JWKS_MAX_AGE_SECS: i64 = 3600;
/// Bodies from Google larger than this are refused.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Tolerated clock skew for `iat` and `auth_time`.
pub(super) const SKEW_SECS: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("request to Google failed: {0}")]
    Upstream(String),
    #[error("token endpoint refused the code: status {0}")]
    CodeRejected(u16),
    #[error("ID token is malformed")]
    Malformed,
    #[error("ID token is not signed with RS256")]
    BadAlgorithm,
    #[error("ID token is signed with a key not in Google's JWKS")]
    UnknownKey,
    #[error("ID token signature is invalid")]
    BadSignature,
    #[error("ID token issuer is wrong")]
    WrongIssuer,
    #[error("ID token audience is not our client id")]
    WrongAudience,
    #[error("ID token is expired")]
    Expired,
    #[error("ID token nonce does not match")]
    NonceMismatch,
    #[error("Google says the email is not verified")]
    EmailUnverified,
}

impl OidcError {
    /// The short reason written to the audit log.
    pub fn reason(&self) -> &'static str {
        match self {
            OidcError::Upstream(_) => "upstream_error",
            OidcError::CodeRejected(_) => "code_rejected",
            OidcError::Malformed => "malformed_id_token",
            OidcError::BadAlgorithm => "bad_algorithm",
            OidcError::UnknownKey => "unknown_kid",
            OidcError::BadSignature => "bad_signature",
            OidcError::WrongIssuer => "wrong_issuer",
            OidcError::WrongAudience => "wrong_audience",
            OidcError::Expired => "expired_id_token",
            OidcError::NonceMismatch => "nonce_mismatch",
            OidcError::EmailUnverified => "email_unverified",
        }
    }
}

/// The ID-token claims we use.
#[derive(Debug, Clone, Deserialize)]
pub struct GoogleClaims {
    pub sub: String,
    pub email: String,
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub nonce: Option<String>,
    pub exp: i64,
    #[serde(default)]
    pub iat: Option<i64>,
    /// When the user last authenticated to Google: what a re-authentication is judged by.
    #[serde(default)]
    pub auth_time: Option<i64>,
    pub aud: Audience,
    #[serde(default)]
    pub azp: Option<String>,
}

/// `aud` is one client id or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Default)]
struct JwksCache {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Option<Timestamp>,
}

/// The Google client: configuration, one HTTP client and the JWKS cache; built once.
pub struct GoogleClient {
    pub config: GoogleConfig,
    http: reqwest::Client,
    jwks: Mutex<JwksCache>,
}

impl std::fmt::Debug for GoogleClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleClient")
            .field("client_id", &self.config.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: String,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    #[serde(default)]
    kid: Option<String>,
    kty: String,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

impl GoogleClient {
    pub fn new(config: GoogleConfig) -> Result<Self, ConfigError> {
        // The process's one trust store and TLS stack (aws-lc): no root certificate is read again.
        let tls = bastion_http::tls::roots()
            .client_config()
            .map_err(|e| ConfigError::new("GOOGLE_CLIENT_ID", format!("TLS: {e}")))?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(HTTP_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::new("GOOGLE_CLIENT_ID", format!("HTTP client: {e}")))?;
        Ok(Self {
            config,
            http,
            jwks: Mutex::new(JwksCache::default()),
        })
    }

    /// Exchanges the authorization code (with the PKCE verifier) for an ID token.
    pub async fn exchange_code(&self, code: &str, verifier: &str) -> Result<String, OidcError> {
        let c = &self.config;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.expose_secret()),
            ("code_verifier", verifier),
        ];
        let body = encode_form(&form);
        let res = self
            .http
            .post(&c.token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| OidcError::Upstream(e.without_url().to_string()))?;
        let status = res.status();
        let bytes = read_limited(res).await?;
        if !status.is_success() {
            return Err(OidcError::CodeRejected(status.as_u16()));
        }
        let parsed: TokenResponse = serde_json::from_slice(&bytes)
            .map_err(|e| OidcError::Upstream(format!("token response: {e}")))?;
        Ok(parsed.id_token)
    }

    /// Verifies signature, algorithm, issuer, audience, expiry, nonce and `email_verified`.
    pub async fn verify_id_token(
        &self,
        token: &str,
        nonce: &str,
        now: Timestamp,
    ) -> Result<GoogleClaims, OidcError> {
        if token.len() > 8192 {
            return Err(OidcError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| OidcError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(OidcError::BadAlgorithm);
        }
        let kid = header.kid.ok_or(OidcError::UnknownKey)?;
        let key = self.key_for(&kid, now).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[self.config.client_id.as_str()]);
        validation.set_issuer(&ISSUERS);
        // Time is checked below against our Clock, not the library's wall clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<GoogleClaims>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature => OidcError::BadSignature,
                K::InvalidAlgorithm => OidcError::BadAlgorithm,
                K::InvalidIssuer => OidcError::WrongIssuer,
                K::InvalidAudience => OidcError::WrongAudience,
                _ => OidcError::Malformed,
            }
        })?;
        let claims = data.claims;
        // OIDC Core 3.1.3.7: a token for several audiences must name us as its authorized
        // party, and any `azp` must be us; otherwise a token issued to another client that
        // merely lists ours would sign in here.
        let several = matches!(&claims.aud, Audience::Many(list) if list.len() > 1);
        let azp_ok = match claims.azp.as_deref() {
            Some(azp) => azp == self.config.client_id,
            None => !several,
        };
        if !azp_ok {
            return Err(OidcError::WrongAudience);
        }
        if claims.exp <= now.secs() {
            return Err(OidcError::Expired);
        }
        if claims.iat.is_some_and(|iat| iat > now.secs() + SKEW_SECS) {
            return Err(OidcError::Expired);
        }
        let nonce_ok = claims
            .nonce
            .as_deref()
            .is_some_and(|n| ct_eq(n.as_bytes(), nonce.as_bytes()));
        if !nonce_ok {
            return Err(OidcError::NonceMismatch);
        }
        if !claims.email_verified {
            return Err(OidcError::EmailUnverified);
        }
        Ok(claims)
    }

    /// The key for `kid`, refetching the JWKS when it is unknown (rate-floored) or stale.
    async fn key_for(&self, kid: &str, now: Timestamp) -> Result<DecodingKey, OidcError> {
        let mut cache = self.jwks.lock().await;
        let age = cache.fetched_at.map(|t| now.secs() - t.secs());
        let stale = age.is_none_or(|a| a >= JWKS_MAX_AGE_SECS);
        let may_refresh = age.is_none_or(|a| a >= JWKS_MIN_REFRESH_SECS);
        if stale || (!cache.keys.contains_key(kid) && may_refresh) {
            let keys = self.fetch_jwks().await?;
            cache.keys = keys;
            cache.fetched_at = Some(now);
        }
        cache.keys.get(kid).cloned().ok_or(OidcError::UnknownKey)
    }

    async fn fetch_jwks(&self) -> Result<HashMap<String, DecodingKey>, OidcError> {
        let res = self
            .http
            .get(&self.config.jwks_url)
            .send()
            .await
            .map_err(|e| OidcError::Upstream(e.without_url().to_string()))?;
        if !res.status().is_success() {
            return Err(OidcError::Upstream(format!("JWKS status {}", res.status())));
        }
        let bytes = read_limited(res).await?;
        let jwks: Jwks = serde_json::from_slice(&bytes)
            .map_err(|e| OidcError::Upstream(format!("JWKS: {e}")))?;
        let mut keys = HashMap::new();
        for k in jwks.keys {
            // Only RSA keys meant for RS256 (or unlabelled) are kept.
            let usable = k.kty == "RSA" && k.alg.as_deref().is_none_or(|a| a == "RS256");
            if let (true, Some(kid), Some(n), Some(e)) = (usable, k.kid, k.n, k.e)
                && let Ok(key) = DecodingKey::from_rsa_components(&n, &e)
            {
                keys.insert(kid, key);
            }
        }
        Ok(keys)
    }
}

async fn read_limited(res: reqwest::Response) -> Result<Vec<u8>, OidcError> {
    if res
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(OidcError::Upstream("response too large".to_owned()));
    }
    let bytes = res
        .bytes()
        .await
        .map_err(|e| OidcError::Upstream(e.without_url().to_string()))?;
    if bytes.len() > MAX_RESPONSE_BYTES {
        return Err(OidcError::Upstream("response too large".to_owned()));
    }
    Ok(bytes.to_vec())
}

/// `application/x-www-form-urlencoded` of `pairs`.
pub fn encode_form(pairs: &[(&str, &str)]) -> String {
    let mut url = reqwest::Url::parse("http://form.invalid/").ok();
    if let Some(u) = url.as_mut() {
        u.query_pairs_mut().extend_pairs(pairs);
    }
    url.and_then(|u| u.query().map(str::to_owned))
        .unwrap_or_default()
}
