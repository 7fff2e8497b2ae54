//! `POST /auth/register` and `POST /auth/login`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bastion_core::audit::{AuditKind, Outcome};
use bastion_core::crypto::jwt::device::{self, DeviceClaims};
use bastion_core::crypto::{Verification, ct_eq};
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

#[utoipa::path(
    post, path = "/auth/register", tag = "auth", operation_id = "register",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created and signed in.", body = TokenResponse),
        (status = 400, description = "`invalid_email`, `invalid_password`, `weak_password`, `invalid_display_name`, `invalid_request`."),
        (status = 409, description = "`email_taken`: an account with this email exists."),
    )
)]
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

#[utoipa::path(
    post, path = "/auth/login", tag = "auth", operation_id = "login",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in.", body = TokenResponse),
        (status = 400, description = "`invalid_email`, `invalid_password` (not a possible email or password), `invalid_request`."),
        (status = 401, description = "`invalid_credentials`: email or password is incorrect (or the account is disabled)."),
    )
)]
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
    // A valid device token for this email moves the account limit to (account, device), so
    // strangers' failures cannot lock its owner out; without one the limit is per account,
    // keyed on the normalized email so unknown accounts are limited exactly like real ones.
    let device = trusted_device(&state, body.device_token.as_deref(), &email);
    let (scope, subject) = match &device {
        Some(c) => ("login-device", format!("{}/{}", c.sub, c.did)),
        None => ("login-account", email.as_str().to_owned()),
    };
    // The lookup and the count are independent: one round trip for both.
    let (user, account_limit) = tokio::join!(
        state.edge.stores.users.find_user_by_email(&email),
        limiter.enforce(&slot, scope, &subject, limits.login_account),
    );
    let user = user?;
    let user_id = user.as_ref().map(|u| u.id.clone());
    let stale_device = device
        .as_ref()
        .is_some_and(|c| !device_matches(c, user.as_ref()));
    let account_limit = match account_limit {
        // Signed for this email but not for the account as it is now (recreated, or its
        // password changed since): revoked, so the account's own limit applies after all.
        Ok(_) if stale_device => limiter
            .enforce(&slot, "login-account", email.as_str(), limits.login_account)
            .await
            .map(|_| ()),
        other => other.map(|_| ()),
    };
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
        (Some(mut user), Verification::Valid { needs_rehash }) if !user.disabled => {
            if needs_rehash {
                let fresh = hash_password(&state.hasher, &password).await?;
                state
                    .edge
                    .stores
                    .users
                    .set_password_hash(&user.id, &fresh)
                    .await?;
                user.password_hash = fresh;
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
    let mut tokens = open_session(&state, &meta, &user).await?;
    let device_token = state
        .edge
        .config
        .jwt
        .load()
        .issue_device(
            &user.id,
            user.email.as_str(),
            &user.password_hash,
            state.edge.clock.now(),
        )
        .map_err(|e| ApiError::internal(&e))?;
    tokens.device_token = Some(device_token);
    Ok(Json(tokens))
}

/// The claims of a presented device token that verifies and was issued for this email; any
/// other token is ignored (the login is then limited like one without a token).
fn trusted_device(state: &AuthState, token: Option<&str>, email: &Email) -> Option<DeviceClaims> {
    let claims = state
        .edge
        .config
        .jwt
        .load()
        .verify_device(token?, state.edge.clock.now())
        .ok()?;
    let wanted = device::email_digest(email.as_str());
    ct_eq(claims.eml.as_bytes(), wanted.as_bytes()).then_some(claims)
}

/// Whether a device token still belongs to the account found: same user, same password.
fn device_matches(claims: &DeviceClaims, user: Option<&UserRecord>) -> bool {
    user.is_some_and(|u| {
        ct_eq(claims.sub.as_bytes(), u.id.as_str().as_bytes())
            && ct_eq(
                claims.pwv.as_bytes(),
                device::password_version(&u.password_hash).as_bytes(),
            )
    })
}
