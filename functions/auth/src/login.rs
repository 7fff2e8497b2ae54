//! `POST /auth/register` and `POST /auth/login`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bastion_core::audit::{AuditKind, Outcome};
use bastion_core::crypto::Verification;
use bastion_core::{DisplayName, Email, Password, Role, UserId};
use bastion_http::{ApiError, ErrorKind, JsonBody, RateLimitSlot, RequestMeta};
use bastion_store::{CreateUserError, UserRecord};

use crate::AuthState;
use crate::audit::record;
use crate::dto::{LoginRequest, RegisterRequest, TokenResponse};
use crate::tokens::{hash_password, open_session, verify_password};

/// The one answer for a wrong password, an unknown email and a disabled account, so none of
/// them can be told apart.
pub fn invalid_credentials() -> ApiError {
    ApiError::unauthorized("email or password is incorrect").with_code("invalid_credentials")
}

pub async fn register(
    State(state): State<AuthState>,
    meta: RequestMeta,
    axum::Extension(slot): axum::Extension<RateLimitSlot>,
    JsonBody(body): JsonBody<RegisterRequest>,
) -> Result<(StatusCode, Json<TokenResponse>), ApiError> {
    let limits = state.edge.config.rate_limits;
    state
        .edge
        .limiter
        .enforce(&slot, "register-ip", &meta.ip.0, limits.register_ip)
        .await?;
    let email = Email::parse(&body.email)?;
    let display_name = body
        .display_name
        .as_deref()
        .map(DisplayName::parse)
        .transpose()?;
    let mut hints = vec![email.as_str()];
    if let Some(local) = email.as_str().split('@').next() {
        hints.push(local);
    }
    if let Some(name) = &display_name {
        hints.push(name.as_str());
    }
    let password = Password::parse_new(&body.password, &hints)?;
    let user = UserRecord {
        id: UserId::generate(),
        email,
        display_name,
        password_hash: hash_password(&state.hasher, &password).await?,
        roles: vec![Role::User],
        created_at: state.edge.clock.now(),
        disabled: false,
    };
    match state.edge.stores.users.create_user(&user).await {
        Ok(()) => {}
        Err(CreateUserError::EmailTaken) => {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                "an account with this email already exists",
            )
            .with_code("email_taken"));
        }
        Err(CreateUserError::Store(e)) => return Err(ApiError::unavailable(&e)),
    }
    record(
        &state,
        &meta,
        AuditKind::Register,
        Outcome::Success,
        Some(&user.id),
        None,
    )
    .await?;
    let tokens = open_session(&state, &meta, &user).await?;
    Ok((StatusCode::CREATED, Json(tokens)))
}

pub async fn login(
    State(state): State<AuthState>,
    meta: RequestMeta,
    axum::Extension(slot): axum::Extension<RateLimitSlot>,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let limits = state.edge.config.rate_limits;
    let limiter = &state.edge.limiter;
    limiter
        .enforce(&slot, "login-ip", &meta.ip.0, limits.login_ip)
        .await?;
    let email = Email::parse(&body.email)?;
    let password = Password::parse_existing(&body.password)?;
    // Keyed on the normalized email, so unknown accounts are limited exactly like real ones.
    // The lookup and the count are independent: one round trip for both.
    let (user, account_limit) = tokio::join!(
        state.edge.stores.users.find_user_by_email(&email),
        limiter.enforce(&slot, "login-account", email.as_str(), limits.login_account),
    );
    let user = user?;
    let user_id = user.as_ref().map(|u| u.id.clone());
    if let Err(refused) = account_limit {
        if refused.kind == ErrorKind::RateLimited {
            record(
                &state,
                &meta,
                AuditKind::LoginRateLimited,
                Outcome::Failure,
                user_id.as_ref(),
                None,
            )
            .await?;
        }
        return Err(refused);
    }

    let verdict = verify_password(
        &state.hasher,
        &password,
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await?;
    let user = match (user, verdict) {
        (Some(user), Verification::Valid { needs_rehash }) if !user.disabled => {
            if needs_rehash {
                let fresh = hash_password(&state.hasher, &password).await?;
                state
                    .edge
                    .stores
                    .users
                    .set_password_hash(&user.id, &fresh)
                    .await?;
            }
            user
        }
        (user, verdict) => {
            let reason = match (&user, verdict) {
                (None, _) => "unknown_account",
                (Some(u), Verification::Valid { .. }) if u.disabled => "account_disabled",
                _ => "bad_password",
            };
            record(
                &state,
                &meta,
                AuditKind::LoginFailed,
                Outcome::Failure,
                user_id.as_ref(),
                Some(reason),
            )
            .await?;
            return Err(invalid_credentials());
        }
    };
    record(
        &state,
        &meta,
        AuditKind::LoginSucceeded,
        Outcome::Success,
        Some(&user.id),
        None,
    )
    .await?;
    Ok(Json(open_session(&state, &meta, &user).await?))
}
