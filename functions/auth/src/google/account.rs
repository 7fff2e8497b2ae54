//! A Google user's sign-in methods: `DELETE /auth/google/link` (unlink Google) and
//! `POST /auth/password/set` (give a Google-created account a password).

use axum::extract::State;
use axum::http::StatusCode;
use bastion_core::Password;
use bastion_core::audit::{AuditKind, Outcome};
use bastion_http::{ApiError, ErrorKind, JsonBody, Limits, RequestMeta, SessionOnly};
use serde::Deserialize;

use crate::AuthState;
use crate::account::{RECENT_SIGN_IN_SECS, confirm_password, current_user};
use crate::audit::record;
use crate::dto::DeleteAccountRequest;
use crate::tokens::hash_password;

/// Whether the caller's session was opened (a sign-in, not a refresh) in the last 10 minutes.
async fn signed_in_recently(state: &AuthState, auth: &SessionOnly) -> Result<bool, ApiError> {
    let now = state.edge.clock.now();
    let session = state
        .edge
        .stores
        .sessions
        .get_session(&auth.user_id, &auth.session_id, now)
        .await?;
    Ok(session.is_some_and(|s| now.secs() - s.created_at.secs() <= RECENT_SIGN_IN_SECS))
}

fn reauthenticate(what: &str) -> ApiError {
    ApiError::new(
        ErrorKind::Forbidden,
        format!("sign in with Google again, then {what} within 10 minutes"),
    )
    .with_code("reauthentication_required")
}

/// Unlinks the account's Google identity: confirmed by the password, or, for an account
/// without one, by a sign-in from the last 10 minutes.
#[utoipa::path(
    delete, path = "/auth/google/link", tag = "google", operation_id = "unlink_google", security(("bearer_jwt" = [])),
    request_body = crate::dto::DeleteAccountRequest,
    responses((status = 204, description = "The Google identity is unlinked."),
        (status = 401, description = "`unauthorized`, `invalid_password`: the password is wrong."),
        (status = 403, description = "`session_required`, `reauthentication_required`."),
        (status = 404, description = "`not_linked`: no Google account is linked."))
)]
pub async fn unlink(
    State(state): State<AuthState>,
    meta: RequestMeta,
    auth: SessionOnly,
    limits: Limits,
    JsonBody(body): JsonBody<DeleteAccountRequest>,
) -> Result<StatusCode, ApiError> {
    let user = current_user(&state, &auth.user_id).await?;
    if user.password_hash.is_empty() {
        if !signed_in_recently(&state, &auth).await? {
            return Err(reauthenticate("unlink Google"));
        }
    } else {
        confirm_password(
            &state,
            &meta,
            &limits,
            &user,
            &body.password,
            AuditKind::GoogleUnlinked,
        )
        .await?;
    }
    if !state.edge.stores.accounts.unlink_google(&user.id).await? {
        return Err(
            ApiError::new(ErrorKind::NotFound, "no Google account is linked")
                .with_code("not_linked"),
        );
    }
    record(
        &state,
        &meta,
        AuditKind::GoogleUnlinked,
        Outcome::Success,
        Some(&user.id),
        None,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPasswordRequest {
    #[schema(min_length = 8, max_length = 128, format = Password)]
    new_password: String,
}

/// Gives an account created by Google sign-in its first password, from a fresh session.
#[utoipa::path(
    post, path = "/auth/password/set", tag = "google", operation_id = "set_password", security(("bearer_jwt" = [])),
    request_body = SetPasswordRequest,
    responses((status = 204, description = "The account has its first password."),
        (status = 400, description = "`invalid_password`, `weak_password`, `invalid_request`."),
        (status = 403, description = "`session_required`, `reauthentication_required`."),
        (status = 409, description = "`password_already_set`."))
)]
pub async fn set_password(
    State(state): State<AuthState>,
    meta: RequestMeta,
    auth: SessionOnly,
    JsonBody(body): JsonBody<SetPasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let user = current_user(&state, &auth.user_id).await?;
    if !user.password_hash.is_empty() {
        return Err(ApiError::new(
            ErrorKind::Conflict,
            "this account has a password; change it with the current one",
        )
        .with_code("password_already_set"));
    }
    if !signed_in_recently(&state, &auth).await? {
        return Err(reauthenticate("set a password"));
    }
    let mut hints = vec![user.email.as_str()];
    if let Some(name) = &user.display_name {
        hints.push(name.as_str());
    }
    let password = Password::parse_new(&body.new_password, &hints)?;
    let hash = hash_password(&state.hasher, &password).await?;
    if !state
        .edge
        .stores
        .users
        .set_password_hash(&user.id, "", &hash)
        .await?
    {
        return Err(crate::account::password_changed_meanwhile());
    }
    record(
        &state,
        &meta,
        AuditKind::PasswordSet,
        Outcome::Success,
        Some(&user.id),
        None,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
