//! The signed-in user's own account: `GET /auth/me`, `POST /auth/password`,
//! `DELETE /auth/account`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bastion_core::Scope;
use bastion_core::audit::{AuditKind, Outcome};
use bastion_core::crypto::Verification;
use bastion_core::{Password, UserId};
use bastion_http::{
    ApiError, Authenticated, ErrorKind, JsonBody, Limit, Limits, RequestMeta, SessionOnly,
};
use bastion_store::UserRecord;

use crate::AuthState;
use crate::audit::record;
use crate::dto::{ChangePasswordRequest, DeleteAccountRequest, MeResponse, MfaView, UserView};
use crate::reauth::{self, ReauthAction};
use crate::tokens::{hash_password, verify_password};

/// Any account linking a Google identity must have signed in this recently.
pub(crate) const RECENT_SIGN_IN_SECS: i64 = 600;

fn no_password() -> ApiError {
    ApiError::new(
        ErrorKind::Conflict,
        "this account signs in with Google and has no password to change",
    )
    .with_code("no_password")
}

/// The password (or the account) changed between the check and the write: nothing written.
pub(crate) fn password_changed_meanwhile() -> ApiError {
    ApiError::new(
        ErrorKind::Conflict,
        "the account's password changed during this request; try again",
    )
    .with_code("password_changed")
}

pub(crate) async fn current_user(
    state: &AuthState,
    user_id: &UserId,
) -> Result<UserRecord, ApiError> {
    state
        .edge
        .stores
        .users
        .get_user(user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| ApiError::unauthorized("account no longer exists"))
}

/// Re-checks the password of a signed-in user, limited like a login so a stolen access token
/// cannot be used to guess it.
/// A wrong password is audited as a failed `kind`.
pub(crate) async fn confirm_password(
    state: &AuthState,
    meta: &RequestMeta,
    limits: &Limits,
    user: &UserRecord,
    raw: &str,
    kind: AuditKind,
) -> Result<(), ApiError> {
    limits
        .enforce(Limit::LoginAccount, user.email.as_str())
        .await?;
    let verdict = match Password::parse_existing(raw) {
        Ok(password) => {
            verify_password(&state.hasher, &password, Some(user.password_hash.clone())).await?
        }
        Err(_) => Verification::Invalid,
    };
    match verdict {
        Verification::Valid { .. } => Ok(()),
        Verification::Invalid => {
            record(
                state,
                meta,
                kind,
                Outcome::Failure,
                Some(&user.id),
                Some("bad_password"),
            )
            .await?;
            Err(ApiError::unauthorized("password is incorrect").with_code("invalid_password"))
        }
    }
}

/// Revokes every session but the caller's and every API key of the caller's account, after a
/// new password: a password is how an account is taken back, and a key minted with a stolen
/// access token would otherwise outlive it by up to a year. Returns the audit detail.
pub(crate) async fn end_other_credentials(
    state: &AuthState,
    auth: &SessionOnly,
) -> Result<String, ApiError> {
    let stores = &state.edge.stores;
    let revoked = stores
        .sessions
        .revoke_all_sessions(&auth.user_id, Some(&auth.session_id))
        .await?;
    let keys = stores.api_keys.revoke_all_api_keys(&auth.user_id).await?;
    Ok(format!(
        "other_sessions_revoked={revoked} api_keys_revoked={keys}"
    ))
}

#[utoipa::path(
    get, path = "/auth/me", tag = "account", operation_id = "me", security(("bearer_jwt" = []), ("api_key" = [])),
    responses((status = 200, description = "The signed-in user, with `email_verified` and `mfa` (`totp`, `recovery_codes_left`).", body = MeResponse),
        (status = 403, description = "`insufficient_scope`: the API key lacks the `read` scope."),
        (status = 401, description = "`unauthorized`, `invalid_api_key`: no valid credential, or the account is gone or disabled."))
)]
pub async fn me(
    State(state): State<AuthState>,
    auth: Authenticated,
) -> Result<Json<MeResponse>, ApiError> {
    auth.require_scope(Scope::Read)?;
    let (user, totp) = tokio::join!(
        current_user(&state, &auth.user_id),
        state.edge.stores.mfa.get_totp(&auth.user_id),
    );
    let mut view = UserView::with_roles(&user?);
    view.mfa = Some(MfaView::of(totp?.as_ref()));
    Ok(Json(MeResponse { user: view }))
}

#[utoipa::path(
    post, path = "/auth/password", tag = "account", operation_id = "change_password", security(("bearer_jwt" = [])),
    request_body = ChangePasswordRequest,
    responses((status = 204, description = "Password changed; every other session is revoked."),
        (status = 400, description = "`invalid_password`, `weak_password`, `invalid_request`."),
        (status = 401, description = "`unauthorized`, `invalid_password`: the current password is wrong."),
        (status = 403, description = "`session_required`: API keys cannot reach account management."),
        (status = 409, description = "`no_password`: the account has no password (set one with /auth/password/set)."))
)]
pub async fn change_password(
    State(state): State<AuthState>,
    meta: RequestMeta,
    auth: SessionOnly,
    limits: Limits,
    JsonBody(body): JsonBody<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let user = current_user(&state, &auth.user_id).await?;
    if user.password_hash.is_empty() {
        return Err(no_password());
    }
    confirm_password(
        &state,
        &meta,
        &limits,
        &user,
        &body.current_password,
        AuditKind::PasswordChanged,
    )
    .await?;
    let mut hints = vec![user.email.as_str()];
    if let Some(name) = &user.display_name {
        hints.push(name.as_str());
    }
    let new_password = Password::parse_new(&body.new_password, &hints)?;
    let hash = hash_password(&state.hasher, &new_password).await?;
    let stores = &state.edge.stores;
    // Only over the hash the current password was checked against: of two racing changes
    // (or a login's rehash) one wins, the other is refused.
    if !stores
        .users
        .set_password_hash(&user.id, &user.password_hash, &hash)
        .await?
    {
        return Err(password_changed_meanwhile());
    }
    let detail = end_other_credentials(&state, &auth).await?;
    record(
        &state,
        &meta,
        AuditKind::PasswordChanged,
        Outcome::Success,
        Some(&user.id),
        Some(&detail),
    )
    .await?;
    let notice = crate::mail::Notice::PasswordChanged;
    crate::mail::notify(&state, &meta, &user.email, notice).await;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete, path = "/auth/account", tag = "account", operation_id = "delete_account", security(("bearer_jwt" = [])),
    request_body = DeleteAccountRequest,
    responses((status = 204, description = "The account and its data are deleted."),
        (status = 401, description = "`unauthorized`, `invalid_password`: the password is wrong."),
        (status = 403, description = "`session_required`; without a password: `reauthentication_required` (no grant), `invalid_reauth_grant` (unknown, expired, used, or for another action, account or session)."))
)]
pub async fn delete_account(
    State(state): State<AuthState>,
    meta: RequestMeta,
    auth: SessionOnly,
    limits: Limits,
    JsonBody(body): JsonBody<DeleteAccountRequest>,
) -> Result<StatusCode, ApiError> {
    let user = current_user(&state, &auth.user_id).await?;
    if user.password_hash.is_empty() {
        // No password to confirm: a Google re-authentication for this very action instead.
        let grant = body.reauth_grant.as_deref();
        reauth::redeem(&state, &meta, &auth, ReauthAction::DeleteAccount, grant).await?;
    } else {
        confirm_password(
            &state,
            &meta,
            &limits,
            &user,
            &body.password,
            AuditKind::AccountDeleted,
        )
        .await?;
    }
    state.edge.stores.users.delete_user(&user.id).await?;
    record(
        &state,
        &meta,
        AuditKind::AccountDeleted,
        Outcome::Success,
        Some(&user.id),
        None,
    )
    .await?;
    // After the delete: no session is left to write files meanwhile. A failure is logged
    // with the user id and answered 503, never a 204 over files left behind.
    state
        .account_files
        .purge(&user.id)
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    Ok(StatusCode::NO_CONTENT)
}
