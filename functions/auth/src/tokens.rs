//! Minting a session and its token pair (and, for a completed sign-in, its device token), and
//! running Argon2 off the async workers.

use bastion_core::audit::{AuditKind, Outcome};
use bastion_core::crypto::{OpaqueToken, PasswordHasher, Verification, jwt::ACCESS_TOKEN_TTL_SECS};
use bastion_core::{Password, SessionId};
use bastion_http::config::Live;
use bastion_http::{ApiError, RequestMeta};
use bastion_store::{SessionRecord, UserRecord};

use crate::AuthState;
use crate::audit::record;
use crate::dto::{TokenResponse, UserView};

/// Creates a new session for `user` and returns the response body with both tokens.
pub async fn open_session(
    state: &AuthState,
    meta: &RequestMeta,
    user: &UserRecord,
) -> Result<TokenResponse, ApiError> {
    let now = state.edge.clock.now();
    let refresh = OpaqueToken::generate();
    let session = SessionRecord {
        id: SessionId::generate(),
        user_id: user.id.clone(),
        refresh_hash: refresh.hash(),
        created_at: now,
        last_used_at: now,
        expires_at: now.plus_secs(state.sessions.absolute_secs),
        ip: meta.ip.0.clone(),
        user_agent: meta.user_agent.0.clone(),
    };
    // Only under the epoch read with the credentials: a log-out-everywhere or password change
    // that landed since the check must not be outlived by this sign-in.
    if !state
        .edge
        .stores
        .sessions
        .create_session(&session, user.session_epoch)
        .await?
    {
        return Err(sessions_revoked());
    }
    token_response(state, user, &session.id, &refresh)
}

/// All sessions of the account were revoked between the credential check and the new session.
pub fn sessions_revoked() -> ApiError {
    ApiError::unauthorized("the account's sessions were revoked during this sign-in; sign in again")
        .with_code(SESSIONS_REVOKED)
}

pub const SESSIONS_REVOKED: &str = "sessions_revoked";

/// The token body for an existing session and a freshly minted refresh token.
pub fn token_response(
    state: &AuthState,
    user: &UserRecord,
    session: &SessionId,
    refresh: &OpaqueToken,
) -> Result<TokenResponse, ApiError> {
    let roles: Vec<String> = user.roles.iter().map(|r| r.as_str().to_owned()).collect();
    let (access, _) = state
        .signer
        .load()
        .issue(&user.id, session, &roles, state.edge.clock.now())
        .map_err(|e| ApiError::internal(&e))?;
    Ok(TokenResponse {
        user: UserView::of(user),
        access_token: access,
        refresh_token: refresh.expose().to_owned(),
        token_type: "Bearer",
        expires_in: ACCESS_TOKEN_TTL_SECS,
        device_token: None,
    })
}

/// Argon2 takes tens of milliseconds of CPU: it runs on the hashing threads, where it cannot
/// stall other requests.
pub async fn verify_password(
    hasher: &Live<PasswordHasher>,
    password: &Password,
    stored: Option<String>,
) -> Result<Verification, ApiError> {
    let hasher = hasher.load();
    let password = password.clone();
    crate::hashing::run(move || match stored {
        Some(stored) => hasher.verify(&password, &stored),
        None => hasher.dummy_verify(&password),
    })
    .await
}

pub async fn hash_password(
    hasher: &Live<PasswordHasher>,
    password: &Password,
) -> Result<String, ApiError> {
    let hasher = hasher.load();
    let password = password.clone();
    crate::hashing::run(move || hasher.hash(&password))
        .await?
        .map_err(|e| ApiError::internal(&e))
}

/// A new session and device token for a verified account, audited.
pub(crate) async fn signed_in(
    state: &AuthState,
    meta: &RequestMeta,
    user: &UserRecord,
) -> Result<TokenResponse, ApiError> {
    let mut tokens = match open_session(state, meta, user).await {
        Ok(tokens) => tokens,
        Err(refused) => {
            if refused.code() == SESSIONS_REVOKED {
                record(
                    state,
                    meta,
                    AuditKind::LoginFailed,
                    Outcome::Failure,
                    Some(&user.id),
                    Some(SESSIONS_REVOKED),
                )
                .await?;
            }
            return Err(refused);
        }
    };
    record(
        state,
        meta,
        AuditKind::LoginSucceeded,
        Outcome::Success,
        Some(&user.id),
        None,
    )
    .await?;
    let device_token = state
        .signer
        .load()
        .issue_device(
            &user.id,
            user.email.as_str(),
            &user.password_hash,
            user.session_epoch,
            state.edge.clock.now(),
        )
        .map_err(|e| ApiError::internal(&e))?;
    tokens.device_token = Some(device_token);
    Ok(tokens)
}
