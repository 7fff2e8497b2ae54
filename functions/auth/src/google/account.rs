//! A Google user's sign-in methods: `DELETE /auth/google/link` (unlink Google) and
//! `POST /auth/password/set` (give a Google-created account a password). Without a password to
//! confirm them, both need a grant of a Google re-authentication for that very action
//! (`crate::reauth`): a fresh session alone is what a stolen access token has.

use axum::extract::State;
use axum::http::StatusCode;
use bastion_core::Password;
use bastion_core::audit::{AuditKind, Outcome};
use bastion_http::{ApiError, ErrorKind, JsonBody, Limits, RequestMeta, SessionOnly};
use serde::Deserialize;

use crate::AuthState;
use crate::account::{confirm_password, current_user};
use crate::audit::record;
use crate::dto::DeleteAccountRequest;
use crate::reauth::{self, ReauthAction};
use crate::tokens::hash_password;

/// Unlinks the account's Google identity: confirmed by the password, or, for an account
/// without one, by a re-authentication grant for unlinking.
#[utoipa::path(
    delete, path = "/auth/google/link", tag = "google", operation_id = "unlink_google", security(("bearer_jwt" = [])),
    request_body = crate::dto::DeleteAccountRequest,
    responses((status = 204, description = "The Google identity is unlinked."),
        (status = 401, description = "`unauthorized`, `invalid_password`: the password is wrong."),
        (status = 403, description = "`session_required`; without a password: `reauthentication_required` (no grant), `invalid_reauth_grant` (unknown, expired, used, or for another action, account or session)."),
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
        let grant = body.reauth_grant.as_deref();
        reauth::redeem(&state, &meta, &auth, ReauthAction::UnlinkGoogle, grant).await?;
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
    /// The grant of a Google re-authentication for `set_password` (`POST /auth/google/reauth`).
    #[serde(default)]
    #[schema(min_length = 43, max_length = 43)]
    reauth_grant: Option<String>,
}

/// Gives an account created by Google sign-in its first password, with a re-authentication
/// grant for it. Like a password change it ends every other session and every API key: the
/// account may be taken back this way from someone holding one of them.
#[utoipa::path(
    post, path = "/auth/password/set", tag = "google", operation_id = "set_password", security(("bearer_jwt" = [])),
    request_body = SetPasswordRequest,
    responses((status = 204, description = "The account has its first password; every other session and every API key is revoked."),
        (status = 400, description = "`invalid_password`, `weak_password`, `invalid_request`."),
        (status = 401, description = "`unauthorized`: no valid session, or the account is gone or disabled."),
        (status = 403, description = "`session_required`, `reauthentication_required` (no grant), `invalid_reauth_grant` (unknown, expired, used, or for another action, account or session)."),
        (status = 409, description = "`password_already_set`, `password_changed`."))
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
    let mut hints = vec![user.email.as_str()];
    if let Some(name) = &user.display_name {
        hints.push(name.as_str());
    }
    // The password is judged before the grant is spent: a weak one must not cost the grant.
    let password = Password::parse_new(&body.new_password, &hints)?;
    let grant = body.reauth_grant.as_deref();
    reauth::redeem(&state, &meta, &auth, ReauthAction::SetPassword, grant).await?;
    let hash = hash_password(&state.hasher, &password).await?;
    let stores = &state.edge.stores;
    if !stores.users.set_password_hash(&user.id, "", &hash).await? {
        return Err(crate::account::password_changed_meanwhile());
    }
    let detail = crate::account::end_other_credentials(&state, &auth).await?;
    record(
        &state,
        &meta,
        AuditKind::PasswordSet,
        Outcome::Success,
        Some(&user.id),
        Some(&detail),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
