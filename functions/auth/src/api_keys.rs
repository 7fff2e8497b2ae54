//! `POST /auth/api-keys`, `GET /auth/api-keys`, `DELETE /auth/api-keys/{id}`: programmatic
//! credentials, minted only from a signed-in session, shown once, stored as SHA-256.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use bastion_core::audit::{AuditKind, Outcome};
use bastion_core::crypto::{OpaqueToken, TokenHash};
use bastion_core::{ApiKeyId, Scope, Timestamp, UserId};
use bastion_http::auth::API_KEY_PREFIX;
use bastion_http::{ApiError, ErrorKind, JsonBody, RequestMeta, SessionOnly};
use bastion_store::{ApiKeyRecord, KeyMint, SessionRecord, StoreError, UserRecord};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::AuthState;
use crate::audit::record;

/// Live keys per user.
const MAX_KEYS_PER_USER: u32 = 25;
const NAME_MAX_CHARS: usize = 64;
/// `bst_` and the first 8 characters of the secret: enough to recognise a key in a list.
const DISPLAY_PREFIX_LEN: usize = 12;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// Trimmed; no control characters.
    #[schema(min_length = 1, max_length = 64)]
    name: String,
    /// 1 to 3 distinct scopes (a repeat is refused with `invalid_scope`).
    #[schema(value_type = Vec<crate::dto::ScopeName>, min_items = 1, max_items = 3)]
    scopes: Vec<String>,
    #[schema(minimum = 1, maximum = 365)]
    expires_in_days: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyView {
    id: String,
    name: String,
    prefix: String,
    #[schema(value_type = Vec<crate::dto::ScopeName>)]
    scopes: Vec<&'static str>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    expires_at: String,
    #[schema(format = DateTime)]
    last_used_at: Option<String>,
}

impl KeyView {
    fn of(k: &ApiKeyRecord) -> Self {
        Self {
            id: k.id.to_string(),
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            scopes: k.scopes.iter().map(|s| s.as_str()).collect(),
            created_at: k.created_at.to_rfc3339(),
            expires_at: k.expires_at.to_rfc3339(),
            last_used_at: k.last_used_at.map(|t| t.to_rfc3339()),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    view: KeyView,
    /// The key itself: in this response only, never again.
    key: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct KeysResponse {
    api_keys: Vec<KeyView>,
}

fn too_many_keys() -> ApiError {
    ApiError::new(
        ErrorKind::Conflict,
        "this account already has 25 API keys; revoke one first",
    )
    .with_code("too_many_api_keys")
}

fn parse_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    let ok = !name.is_empty()
        && name.chars().count() <= NAME_MAX_CHARS
        && !name.chars().any(char::is_control);
    if ok {
        Ok(name.to_owned())
    } else {
        Err(ApiError::invalid(
            "invalid_name",
            "name must be 1 to 64 characters without control characters",
        ))
    }
}

/// The requested scopes, each known and none twice. A session holds every scope, so any valid
/// set is within what the creator holds; API keys cannot reach this route at all.
fn parse_scopes(raw: &[String]) -> Result<Vec<Scope>, ApiError> {
    if raw.is_empty() || raw.len() > 3 {
        return Err(ApiError::invalid(
            "invalid_scope",
            "scopes must name 1 to 3 of chat, exec, read",
        ));
    }
    let mut scopes = Vec::with_capacity(raw.len());
    for s in raw {
        let scope = Scope::parse(s)?;
        if scopes.contains(&scope) {
            return Err(ApiError::invalid("invalid_scope", "a scope is repeated"));
        }
        scopes.push(scope);
    }
    Ok(scopes)
}

#[utoipa::path(
    post, path = "/auth/api-keys", tag = "api-keys", operation_id = "create_api_key", security(("bearer_jwt" = [])),
    request_body = CreateRequest,
    responses((status = 201, description = "The key; its secret is in this response only.", body = CreatedKey),
        (status = 400, description = "`invalid_name`, `invalid_scope`, `invalid_expiry`, `invalid_request`."),
        (status = 403, description = "`session_required`: API keys cannot reach account management."),
        (status = 409, description = "`too_many_api_keys`: 25 live keys already."))
)]
pub async fn create(
    State(state): State<AuthState>,
    meta: RequestMeta,
    auth: SessionOnly,
    JsonBody(body): JsonBody<CreateRequest>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let name = parse_name(&body.name)?;
    let scopes = parse_scopes(&body.scopes)?;
    let lifetime = lifetime_secs(body.expires_in_days)?;
    let now = state.edge.clock.now();
    let keys = &state.edge.stores.api_keys;
    let (secret, record_) = mint(&auth.user_id, name, scopes, lifetime, now);
    // The limit is decided by the write itself (a count kept in the same transaction), so
    // concurrent mints cannot overshoot it.
    if keys.create_api_key(&record_, MAX_KEYS_PER_USER).await? == KeyMint::LimitReached {
        return Err(too_many_keys());
    }
    // Looked at again now that the key is stored, so a change that ran after the checks above
    // cannot miss it: an admin disable or account deletion (the flag is set before keys are
    // revoked), a password change or logout that ended the minting session (sessions are
    // revoked before keys).
    let (user, session) = tokio::join!(
        state.edge.stores.users.get_user(&auth.user_id),
        state
            .edge
            .stores
            .sessions
            .get_session(&auth.user_id, &auth.session_id, now),
    );
    if let Some(refusal) = minted_for_whom(user?.as_ref(), session)? {
        keys.revoke_api_key(&auth.user_id, &record_.id).await?;
        return Err(refusal);
    }
    let detail = format!("key={}", record_.id);
    record(
        &state,
        &meta,
        AuditKind::ApiKeyCreated,
        Outcome::Success,
        Some(&auth.user_id),
        Some(&detail),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKey {
            view: KeyView::of(&record_),
            key: secret.expose_secret().to_owned(),
        }),
    ))
}

/// A key's lifetime in seconds, from the requested 1 to 365 days.
fn lifetime_secs(days: i64) -> Result<i64, ApiError> {
    if !(1..=365).contains(&days) {
        return Err(ApiError::invalid(
            "invalid_expiry",
            "expires_in_days must be between 1 and 365",
        ));
    }
    Ok(days * 24 * 3600)
}

/// A new key of `user`: the secret (shown once) and the record stored, which holds only its
/// hash and the short prefix shown in lists.
fn mint(
    user: &UserId,
    name: String,
    scopes: Vec<Scope>,
    lifetime_secs: i64,
    now: Timestamp,
) -> (SecretString, ApiKeyRecord) {
    let secret = SecretString::from(format!(
        "{API_KEY_PREFIX}{}",
        OpaqueToken::generate().expose()
    ));
    let record = ApiKeyRecord {
        id: ApiKeyId::generate(),
        user_id: user.clone(),
        name,
        hash: TokenHash::of(secret.expose_secret()),
        prefix: secret
            .expose_secret()
            .chars()
            .take(DISPLAY_PREFIX_LEN)
            .collect(),
        scopes,
        created_at: now,
        expires_at: now.plus_secs(lifetime_secs),
        last_used_at: None,
    };
    (secret, record)
}

/// Why a key stored just now must be revoked, given its account and minting session as read
/// after the write: either gone (or the account disabled) is a refusal. The session is only
/// looked at for an active account.
fn minted_for_whom(
    user: Option<&UserRecord>,
    session: Result<Option<SessionRecord>, StoreError>,
) -> Result<Option<ApiError>, ApiError> {
    if user.is_none_or(|u| u.disabled) {
        Ok(Some(ApiError::unauthorized("account no longer exists")))
    } else if session?.is_none() {
        Ok(Some(ApiError::unauthorized("session no longer exists")))
    } else {
        Ok(None)
    }
}

#[utoipa::path(
    get, path = "/auth/api-keys", tag = "api-keys", operation_id = "list_api_keys", security(("bearer_jwt" = [])),
    responses((status = 200, description = "The account's live keys (never their secrets).", body = KeysResponse), (status = 403, description = "`session_required`: API keys cannot reach account management."))
)]
pub async fn list(
    State(state): State<AuthState>,
    auth: SessionOnly,
) -> Result<Json<KeysResponse>, ApiError> {
    let keys = state
        .edge
        .stores
        .api_keys
        .list_api_keys(&auth.user_id, state.edge.clock.now())
        .await?;
    Ok(Json(KeysResponse {
        api_keys: keys.iter().map(KeyView::of).collect(),
    }))
}

/// Only the caller's own keys can be named: another user's key id is 404, like a missing one.
#[utoipa::path(
    delete, path = "/auth/api-keys/{id}", tag = "api-keys", operation_id = "revoke_api_key", security(("bearer_jwt" = [])),
    params(("id" = String, Path, description = "API key id.")),
    responses((status = 204, description = "The key is revoked."), (status = 403, description = "`session_required`: API keys cannot reach account management."),
        (status = 404, description = "`not_found`: no such key of this account."))
)]
pub async fn revoke(
    State(state): State<AuthState>,
    meta: RequestMeta,
    auth: SessionOnly,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = ApiKeyId::parse(&id).map_err(|_| ApiError::not_found())?;
    if !state
        .edge
        .stores
        .api_keys
        .revoke_api_key(&auth.user_id, &id)
        .await?
    {
        return Err(ApiError::not_found());
    }
    let detail = format!("key={id}");
    record(
        &state,
        &meta,
        AuditKind::ApiKeyRevoked,
        Outcome::Success,
        Some(&auth.user_id),
        Some(&detail),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{NOW, session, user};

    fn refusal_message(e: Option<ApiError>) -> Option<(StatusCode, String)> {
        e.map(|e| (e.kind().status(), e.message().to_owned()))
    }

    #[test]
    fn a_key_lives_one_to_365_days_and_nothing_else() {
        assert_eq!(lifetime_secs(1).unwrap(), 86_400);
        assert_eq!(lifetime_secs(365).unwrap(), 365 * 86_400);
        for days in [0, -1, 366, i64::MAX] {
            let e = lifetime_secs(days).unwrap_err();
            assert_eq!(e.code(), "invalid_expiry");
            assert_eq!(e.message(), "expires_in_days must be between 1 and 365");
        }
    }

    #[test]
    fn a_minted_key_stores_only_its_hash_and_a_twelve_character_prefix() {
        let owner = UserId::generate();
        let (secret, key) = mint(&owner, "ci".into(), vec![Scope::Read], 86_400, NOW);
        let secret = secret.expose_secret();
        assert!(secret.starts_with(API_KEY_PREFIX));
        assert_eq!(key.hash, TokenHash::of(secret));
        assert_eq!(key.prefix, secret[..DISPLAY_PREFIX_LEN]);
        assert_eq!(key.prefix.len(), 12);
        assert_eq!(key.user_id, owner);
        assert_eq!(key.name, "ci");
        assert_eq!(key.scopes, vec![Scope::Read]);
        assert_eq!(
            (key.created_at, key.expires_at),
            (NOW, NOW.plus_secs(86_400))
        );
        assert_eq!(key.last_used_at, None);
        let (other, _) = mint(&owner, "ci".into(), vec![Scope::Read], 86_400, NOW);
        assert_ne!(other.expose_secret(), secret);
    }

    #[test]
    fn a_key_minted_for_a_gone_or_disabled_account_is_refused_whatever_the_session() {
        let disabled = user(true);
        let live = || Ok(Some(session(&disabled, "refresh", 0)));
        let unreadable = Err(StoreError::Unavailable("down".into()));
        let account_gone = Some((
            StatusCode::UNAUTHORIZED,
            "account no longer exists".to_owned(),
        ));
        assert_eq!(
            refusal_message(minted_for_whom(None, live()).unwrap()),
            account_gone
        );
        assert_eq!(
            refusal_message(minted_for_whom(Some(&disabled), live()).unwrap()),
            account_gone
        );
        assert_eq!(
            refusal_message(minted_for_whom(Some(&disabled), unreadable).unwrap()),
            account_gone
        );
    }

    #[test]
    fn a_key_minted_from_a_session_that_ended_meanwhile_is_refused() {
        let active = user(false);
        assert_eq!(
            refusal_message(minted_for_whom(Some(&active), Ok(None)).unwrap()),
            Some((
                StatusCode::UNAUTHORIZED,
                "session no longer exists".to_owned()
            ))
        );
    }

    #[test]
    fn a_key_of_an_active_account_and_live_session_stands() {
        let active = user(false);
        let live = Ok(Some(session(&active, "refresh", 0)));
        assert!(minted_for_whom(Some(&active), live).unwrap().is_none());
    }

    #[test]
    fn an_unreadable_session_of_an_active_account_is_an_error_not_a_verdict() {
        let active = user(false);
        let e = minted_for_whom(Some(&active), Err(StoreError::Unavailable("down".into())))
            .unwrap_err();
        assert_eq!(e.kind().status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
