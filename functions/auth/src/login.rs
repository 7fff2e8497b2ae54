//! `POST /auth/register` and `POST /auth/login`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bastion_core::audit::{AuditKind, Outcome};
use bastion_core::crypto::jwt::device::{self, DeviceClaims};
use bastion_core::crypto::{Verification, ct_eq};
use bastion_core::{DisplayName, Email, Password, Role, UserId};
use bastion_http::{ApiError, ErrorKind, JsonBody, Limit, Limits, RequestMeta};
use bastion_store::{CreateUserError, UserRecord};

use crate::AuthState;
use crate::audit::record;
use crate::dto::{LoginRequest, LoginResponse, RegisterRequest, TokenResponse};
use crate::tokens::{hash_password, open_session, signed_in, verify_password};

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
        (status = 401, description = "`sessions_revoked`: every session of the account was revoked during this sign-in."),
        (status = 409, description = "`email_taken`: an account with this email exists."),
    )
)]
pub async fn register(
    State(state): State<AuthState>,
    meta: RequestMeta,
    limits: Limits,
    JsonBody(body): JsonBody<RegisterRequest>,
) -> Result<(StatusCode, Json<TokenResponse>), ApiError> {
    limits.enforce(Limit::RegisterIp, &meta.ip.0).await?;
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
        session_epoch: 0,
        email_verified: false,
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
    crate::email_verify::on_register(&state, &meta, &user).await;
    let tokens = open_session(&state, &meta, &user).await?;
    Ok((StatusCode::CREATED, Json(tokens)))
}

#[utoipa::path(
    post, path = "/auth/login", tag = "auth", operation_id = "login",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; or, with a second factor on, `mfa_required` with an `mfa_token` for POST /auth/mfa/verify and no tokens.", body = LoginResponse),
        (status = 400, description = "`invalid_email`, `invalid_password` (not a possible email or password), `invalid_request`."),
        (status = 401, description = "`invalid_credentials`: email or password is incorrect (or the account is disabled); `sessions_revoked`: every session was revoked during this sign-in."),
    )
)]
pub async fn login(
    State(state): State<AuthState>,
    meta: RequestMeta,
    limits: Limits,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    limits.enforce(Limit::LoginIp, &meta.ip.0).await?;
    let email = Email::parse(&body.email)?;
    let password = Password::parse_existing(&body.password)?;
    // A valid device token for this email moves the account limit to (account, device), so
    // strangers' failures cannot lock its owner out; without one the limit is per account,
    // keyed on the normalized email so unknown accounts are limited exactly like real ones.
    let device = trusted_device(&state, body.device_token.as_deref(), &email);
    let (limit, subject) = match &device {
        Some(c) => (Limit::LoginDevice, format!("{}/{}", c.sub, c.did)),
        None => (Limit::LoginAccount, email.as_str().to_owned()),
    };
    // The lookup and the count are independent: one round trip for both.
    let (user, account_limit) = tokio::join!(
        state.edge.stores.users.find_user_by_email(&email),
        limits.enforce(limit, &subject),
    );
    let user = user?;
    let user_id = user.as_ref().map(|u| u.id.clone());
    let stale_device = device
        .as_ref()
        .is_some_and(|c| !device_matches(c, user.as_ref()));
    let account_limit = match account_limit {
        // Signed for this email but not for the account as it is now (recreated, its password
        // changed, or all its sessions revoked since): revoked, so the account's own limit applies after all.
        Ok(_) if stale_device => limits
            .enforce(Limit::LoginAccount, email.as_str())
            .await
            .map(|_| ()),
        other => other.map(|_| ()),
    };
    if let Err(refused) = account_limit {
        if refused.kind() == ErrorKind::RateLimited {
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

    let user = verified_user(&state, &meta, &password, user).await?;
    if let Some(second) = crate::mfa_verify::challenge(&state, &user).await? {
        return Ok(Json(LoginResponse::MfaRequired(second)));
    }
    signed_in(&state, &meta, &user)
        .await
        .map(|t| Json(LoginResponse::Tokens(t)))
}

/// The account whose password was just verified (and rehashed if due), or the one refusal for
/// every failure, audited with its reason.
async fn verified_user(
    state: &AuthState,
    meta: &RequestMeta,
    password: &Password,
    user: Option<UserRecord>,
) -> Result<UserRecord, ApiError> {
    let verdict = verify_password(
        &state.hasher,
        password,
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await?;
    let (user_id, reason) = match (user, verdict) {
        (Some(mut user), Verification::Valid { needs_rehash }) if !user.disabled => {
            if !needs_rehash {
                return Ok(user);
            }
            let fresh = hash_password(&state.hasher, password).await?;
            // Only over the hash just verified: a password change landing meanwhile must not
            // be undone by a rehash of the old password, nor this login succeed.
            let replaced = state
                .edge
                .stores
                .users
                .set_password_hash(&user.id, &user.password_hash, &fresh)
                .await?;
            if replaced {
                user.password_hash = fresh;
                return Ok(user);
            }
            (Some(user.id), "password_changed")
        }
        (None, _) => (None, "unknown_account"),
        (Some(u), Verification::Valid { .. }) => (Some(u.id), "account_disabled"),
        (Some(u), _) => (Some(u.id), "bad_password"),
    };
    record(
        state,
        meta,
        AuditKind::LoginFailed,
        Outcome::Failure,
        user_id.as_ref(),
        Some(reason),
    )
    .await?;
    Err(invalid_credentials())
}

/// The claims of a presented device token that verifies and was issued for this email; any
/// other token is ignored (the login is then limited like one without a token).
fn trusted_device(state: &AuthState, token: Option<&str>, email: &Email) -> Option<DeviceClaims> {
    let claims = state
        .signer
        .load()
        .verify_device(token?, state.edge.clock.now())
        .ok()?;
    let wanted = device::email_digest(email.as_str());
    ct_eq(claims.eml.as_bytes(), wanted.as_bytes()).then_some(claims)
}

/// Whether a device token still belongs to the account found: same user, same password, and
/// no revocation of all its sessions since it was issued.
fn device_matches(claims: &DeviceClaims, user: Option<&UserRecord>) -> bool {
    user.is_some_and(|u| {
        ct_eq(claims.sub.as_bytes(), u.id.as_str().as_bytes())
            && claims.rev == u.session_epoch
            && ct_eq(
                claims.pwv.as_bytes(),
                device::password_version(&u.password_hash).as_bytes(),
            )
    })
}
