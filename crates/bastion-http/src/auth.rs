//! The Bearer extractors: a verified access token whose session still exists, or a live API
//! key (`bst_…`). Identity comes from nothing else.

use axum::extract::{FromRef, FromRequestParts};
use bastion_core::audit::{AuditKind, Outcome};
use bastion_core::crypto::token::looks_like_token;
use bastion_core::crypto::{AccessClaims, TokenHash};
use bastion_core::{ApiKeyId, Scope, SessionId, Timestamp, UserId};
use http::request::Parts;

use crate::client::RequestMeta;
use crate::error::{ApiError, ErrorKind};
use crate::limits::Limit;
use crate::pipeline::Edge;
use crate::rate_limit::RateLimitSlot;

/// Every API key starts with this, so it is recognisable in logs and secret scanners.
pub const API_KEY_PREFIX: &str = "bst_";
/// `last_used_at` of a key is written at most this often.
pub const API_KEY_TOUCH_INTERVAL_SECS: i64 = 60;

/// What the caller authenticated with.
#[derive(Debug, Clone)]
pub enum Credential {
    /// An access token of a live session: carries every scope.
    Session {
        session_id: SessionId,
        claims: AccessClaims,
    },
    /// An API key: carries only the scopes it was created with.
    ApiKey {
        key_id: ApiKeyId,
        scopes: Vec<Scope>,
    },
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user_id: UserId,
    pub credential: Credential,
}

impl Authenticated {
    /// Refuses (403 `insufficient_scope`) a credential that does not carry `scope`. Session
    /// access tokens carry every scope; call this at the top of every chat, exec and read
    /// handler so API keys are held to theirs.
    pub fn require_scope(&self, scope: Scope) -> Result<(), ApiError> {
        match &self.credential {
            Credential::Session { .. } => Ok(()),
            Credential::ApiKey { scopes, .. } if scopes.contains(&scope) => Ok(()),
            Credential::ApiKey { .. } => Err(ApiError::new(
                ErrorKind::Forbidden,
                format!("this API key does not carry the {} scope", scope.as_str()),
            )
            .with_code("insufficient_scope")),
        }
    }

    /// The session behind the credential; 403 `session_required` for an API key, which must
    /// not reach account management (minting keys, passwords, sessions).
    pub fn require_session(&self) -> Result<&SessionId, ApiError> {
        match &self.credential {
            Credential::Session { session_id, .. } => Ok(session_id),
            Credential::ApiKey { .. } => Err(session_required()),
        }
    }
}

fn session_required() -> ApiError {
    ApiError::new(
        ErrorKind::Forbidden,
        "this route needs a signed-in session, not an API key",
    )
    .with_code("session_required")
}

/// A caller signed in with a session (never an API key).
#[derive(Debug, Clone)]
pub struct SessionOnly {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub claims: AccessClaims,
}

/// The token of an `Authorization: Bearer <token>` header, if well-formed.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn invalid_api_key() -> ApiError {
    ApiError::unauthorized("API key is invalid, revoked or expired").with_code("invalid_api_key")
}

/// Resolves an API key: shape first (junk costs no store read), then the hash lookup. Every
/// refusal is audited once; the pipeline has already counted the request against the per-IP
/// limit, so junk keys cannot write more audit events than that limit admits.
async fn api_key(edge: &Edge, meta: &RequestMeta, token: &str) -> Result<Authenticated, ApiError> {
    if !token
        .strip_prefix(API_KEY_PREFIX)
        .is_some_and(looks_like_token)
    {
        return refuse_api_key(edge, meta, None, "malformed").await;
    }
    let now = edge.clock.now();
    // Read without the expiry filter so an expired key can still name its owner in the
    // audit trail; expiry is decided here instead.
    let found = edge
        .stores
        .api_keys
        .find_api_key(&TokenHash::of(token), Timestamp(i64::MIN))
        .await?;
    let key = match found {
        None => return refuse_api_key(edge, meta, None, "unknown_or_revoked").await,
        Some(key) if key.expires_at.secs() <= now.secs() => {
            return refuse_api_key(edge, meta, Some(&key.user_id), "expired").await;
        }
        Some(key) => key,
    };
    let stale = key
        .last_used_at
        .is_none_or(|t| now.secs() - t.secs() >= API_KEY_TOUCH_INTERVAL_SECS);
    if stale {
        edge.stores
            .api_keys
            .touch_api_key(&key, now, API_KEY_TOUCH_INTERVAL_SECS)
            .await?;
    }
    Ok(Authenticated {
        user_id: key.user_id,
        credential: Credential::ApiKey {
            key_id: key.id,
            scopes: key.scopes,
        },
    })
}

/// Audits a refused API key (never the key), then answers the one 401 every case shares.
async fn refuse_api_key(
    edge: &Edge,
    meta: &RequestMeta,
    user: Option<&UserId>,
    reason: &str,
) -> Result<Authenticated, ApiError> {
    edge.record_audit(
        meta,
        AuditKind::ApiKeyRefused,
        Outcome::Failure,
        user,
        Some(reason.to_owned()),
    )
    .await?;
    Err(invalid_api_key())
}

async fn access_token(edge: &Edge, token: &str) -> Result<Authenticated, ApiError> {
    let now = edge.clock.now();
    let claims = edge
        .config
        .jwt
        .load()
        .verify(token, now)
        .map_err(|_| ApiError::unauthorized("invalid or expired access token"))?;
    let invalid = |_| ApiError::unauthorized("invalid or expired access token");
    let user_id = claims.user_id().map_err(invalid)?;
    let session_id = claims.session_id().map_err(invalid)?;
    let session = edge
        .stores
        .sessions
        .get_session(&user_id, &session_id, now)
        .await?;
    if session.is_none() {
        return Err(ApiError::unauthorized(
            "session has been revoked or has expired",
        ));
    }
    Ok(Authenticated {
        user_id,
        credential: Credential::Session { session_id, claims },
    })
}

impl<S> FromRequestParts<S> for Authenticated
where
    Edge: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let edge = Edge::from_ref(state);
        let meta = RequestMeta::from_request_parts(parts, state).await?;
        let token = bearer(parts).ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
        let auth = if token.starts_with(API_KEY_PREFIX) {
            api_key(&edge, &meta, token).await?
        } else {
            access_token(&edge, token).await?
        };
        let slot = parts
            .extensions
            .get::<RateLimitSlot>()
            .cloned()
            .unwrap_or_default();
        edge.limiter
            .enforce(&slot, Limit::DefaultAccount, auth.user_id.as_str())
            .await?;
        if edge.config.require_verified_email && needs_verified_email(parts.uri.path()) {
            require_verified_email(&edge, &auth.user_id).await?;
        }
        Ok(auth)
    }
}

/// Chat and exec are what `REQUIRE_VERIFIED_EMAIL` holds back; auth stays reachable so the
/// address can be verified.
fn needs_verified_email(path: &str) -> bool {
    ["/chat", "/exec"].iter().any(|root| {
        path == *root
            || path
                .strip_prefix(root)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// Read from the profile on every such request, not from the token, so a verification takes
/// effect at once and an API key is held to it like a session.
async fn require_verified_email(edge: &Edge, user: &UserId) -> Result<(), ApiError> {
    match edge.stores.users.get_user(user).await? {
        Some(u) if u.email_verified => Ok(()),
        Some(_) => Err(ApiError::new(
            ErrorKind::Forbidden,
            "verify your email address first (POST /auth/email/verify/send sends a new link)",
        )
        .with_code("email_unverified")),
        None => Err(ApiError::unauthorized("account no longer exists")),
    }
}

impl<S> FromRequestParts<S> for SessionOnly
where
    Edge: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = Authenticated::from_request_parts(parts, state).await?;
        match auth.credential {
            Credential::Session { session_id, claims } => Ok(Self {
                user_id: auth.user_id,
                session_id,
                claims,
            }),
            Credential::ApiKey { .. } => Err(session_required()),
        }
    }
}
