//! Password reset: `POST /auth/password/forgot` and `POST /auth/password/reset`.
//!
//! The token is `<user id>.<256 random bits>`; only the SHA-256 of the whole is stored, under
//! the account, so an account has at most one live token (a newer request voids the older)
//! and a wrong guess cannot burn the real one. A forgot request answers the same status and
//! body, and makes the same store requests (one read, one conditional write, one audit), for
//! known, unknown and disabled addresses; only a live account gets a mail.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bastion_core::audit::{AuditKind, Outcome};
use bastion_core::crypto::token::looks_like_token;
use bastion_core::crypto::{OpaqueToken, TokenHash};
use bastion_core::{Email, Password, UserId};
use bastion_http::{ApiError, JsonBody, Limit, Limits, RequestMeta};

use crate::AuthState;
use crate::account::password_changed_meanwhile;
use crate::audit::{record, refused};
use crate::dto::{AcceptedResponse, ForgotPasswordRequest, ResetPasswordRequest, StatusResponse};
use crate::email_verify::invalid_token;
use crate::mail;
use crate::tokens::hash_password;

pub const RESET_TOKEN_TTL_SECS: i64 = 30 * 60;

/// A reset token as mailed: the account it is for and the secret.
struct ResetToken {
    user: UserId,
    hash: TokenHash,
}

impl ResetToken {
    fn parse(raw: &str) -> Option<Self> {
        let (user, secret) = raw.split_once('.')?;
        let user = UserId::parse(user).ok()?;
        looks_like_token(secret).then(|| Self {
            user,
            hash: TokenHash::of(raw),
        })
    }
}

#[utoipa::path(
    post, path = "/auth/password/forgot", tag = "auth", operation_id = "forgot_password",
    request_body = ForgotPasswordRequest,
    responses((status = 202, description = "The one answer for every address: a live account gets a reset link valid 30 minutes.", body = AcceptedResponse),
        (status = 400, description = "`invalid_email`, `invalid_request`."),
        (status = 429, description = "`rate_limited`: `RATE_LIMIT_RECOVERY_IP`, `RATE_LIMIT_RECOVERY_EMAIL`."),
        (status = 503, description = "`unavailable`; `email_unavailable`: no mail delivery is configured."))
)]
pub async fn forgot(
    State(state): State<AuthState>,
    meta: RequestMeta,
    limits: Limits,
    JsonBody(body): JsonBody<ForgotPasswordRequest>,
) -> Result<(StatusCode, Json<AcceptedResponse>), ApiError> {
    limits.enforce(Limit::RecoveryIp, &meta.ip.0).await?;
    let email = Email::parse(&body.email)?;
    let mailer = mail::mailer(&state)?.clone();
    let subject = format!("reset/{}", email.as_str());
    let (user, limit) = tokio::join!(
        state.edge.stores.users.find_user_by_email(&email),
        limits.enforce(Limit::RecoveryEmail, &subject),
    );
    limit?;
    let now = state.edge.clock.now();
    let live = user?.filter(|u| !u.disabled);
    let kind = AuditKind::PasswordResetRequested;
    let Some(user) = live else {
        // The same conditional write a live account gets, on a key that cannot exist: the
        // store sees one write either way.
        let decoy = UserId::generate();
        let nothing = TokenHash::of(OpaqueToken::generate().expose());
        state
            .edge
            .stores
            .recovery
            .take_reset(&decoy, &nothing, now)
            .await?;
        record(
            &state,
            &meta,
            kind,
            Outcome::Failure,
            None,
            Some("unknown_or_disabled"),
        )
        .await?;
        return Ok((StatusCode::ACCEPTED, Json(AcceptedResponse::reset())));
    };
    let token = format!("{}.{}", user.id, OpaqueToken::generate().expose());
    let expires = now.plus_secs(RESET_TOKEN_TTL_SECS);
    state
        .edge
        .stores
        .recovery
        .put_reset(&user.id, &TokenHash::of(&token), expires)
        .await?;
    record(&state, &meta, kind, Outcome::Success, Some(&user.id), None).await?;
    // A failed send is logged, not answered: a 503 only for live accounts would tell them apart.
    let message = mail::reset(&mailer.links, &user.email, &token);
    mail::send_logged(&state, &meta, "reset_password", message).await;
    Ok((StatusCode::ACCEPTED, Json(AcceptedResponse::reset())))
}

#[utoipa::path(
    post, path = "/auth/password/reset", tag = "auth", operation_id = "reset_password",
    request_body = ResetPasswordRequest,
    responses((status = 200, description = "Password replaced; every session and API key of the account is revoked. A second factor stays on.", body = StatusResponse),
        (status = 400, description = "`invalid_token`: unknown, used, superseded or expired; `invalid_password`, `weak_password` (the token stays usable); `invalid_request`."),
        (status = 409, description = "`password_changed`: the password changed during this request (the token is spent)."),
        (status = 429, description = "`rate_limited`: `RATE_LIMIT_RECOVERY_IP`."))
)]
pub async fn reset(
    State(state): State<AuthState>,
    meta: RequestMeta,
    limits: Limits,
    JsonBody(body): JsonBody<ResetPasswordRequest>,
) -> Result<Json<StatusResponse>, ApiError> {
    limits.enforce(Limit::RecoveryIp, &meta.ip.0).await?;
    let kind = AuditKind::PasswordReset;
    let Some(token) = ResetToken::parse(&body.token) else {
        return refused(
            &state,
            &meta,
            kind,
            None,
            "malformed_token",
            invalid_token(),
        )
        .await;
    };
    let stores = &state.edge.stores;
    let user = stores.users.get_user(&token.user).await?;
    let Some(user) = user.filter(|u| !u.disabled) else {
        return refused(
            &state,
            &meta,
            kind,
            None,
            "unknown_or_disabled",
            invalid_token(),
        )
        .await;
    };
    let mut hints = vec![user.email.as_str()];
    if let Some(name) = &user.display_name {
        hints.push(name.as_str());
    }
    // Checked before the token is spent, so a refused password can be retried with the link.
    let password = Password::parse_new(&body.password, &hints)?;
    let now = state.edge.clock.now();
    if !stores
        .recovery
        .take_reset(&user.id, &token.hash, now)
        .await?
    {
        let why = "unknown_used_superseded_or_expired";
        return refused(&state, &meta, kind, Some(&user.id), why, invalid_token()).await;
    }
    let hash = hash_password(&state.hasher, &password).await?;
    if !stores
        .users
        .set_password_hash(&user.id, &user.password_hash, &hash)
        .await?
    {
        return Err(password_changed_meanwhile());
    }
    // A reset is how an account is taken back: nothing signed in before it survives it.
    let sessions = stores.sessions.revoke_all_sessions(&user.id, None).await?;
    let keys = stores.api_keys.revoke_all_api_keys(&user.id).await?;
    // The link reached the address, which proves it as a verification link would.
    stores
        .users
        .set_email_verified(&user.id, &user.email)
        .await?;
    let detail = format!("sessions_revoked={sessions} api_keys_revoked={keys}");
    record(
        &state,
        &meta,
        kind,
        Outcome::Success,
        Some(&user.id),
        Some(&detail),
    )
    .await?;
    mail::notify(&state, &meta, &user.email, mail::Notice::PasswordReset).await;
    Ok(Json(StatusResponse {
        status: "password_reset",
    }))
}
