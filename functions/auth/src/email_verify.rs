//! Address verification: `POST /auth/email/verify/send` and `POST /auth/email/verify`, and the
//! link registration mails. A token is 256 random bits, kept only as its SHA-256 in the
//! one-time store for 24 hours, and works once.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bastion_core::audit::{AuditKind, Outcome};
use bastion_core::crypto::token::looks_like_token;
use bastion_core::crypto::{OpaqueToken, TokenHash};
use bastion_core::{Email, UserId};
use bastion_http::{ApiError, ErrorKind, JsonBody, Limit, Limits, RequestMeta, SessionOnly};
use bastion_store::UserRecord;
use serde::{Deserialize, Serialize};

use crate::AuthState;
use crate::account::current_user;
use crate::audit::{record, refused};
use crate::dto::{AcceptedResponse, TokenRequest};
use crate::mail;

/// The one-time store's purpose for verification tokens.
const PURPOSE: &str = "verify_email";
pub const VERIFY_TOKEN_TTL_SECS: i64 = 24 * 3600;

/// What a verification token stands for: this account with this address.
#[derive(Serialize, Deserialize)]
struct Payload {
    user_id: String,
    email: String,
}

pub fn invalid_token() -> ApiError {
    ApiError::invalid(
        "invalid_token",
        "the link is unknown, used or expired; ask for a new one",
    )
}

/// Stores a fresh token for `user` and builds its mail (sent by the caller).
async fn issue(
    state: &AuthState,
    user: &UserRecord,
) -> Result<bastion_http::email::EmailMessage, ApiError> {
    let mailer = mail::mailer(state)?;
    let token = OpaqueToken::generate();
    let payload = serde_json::to_string(&Payload {
        user_id: user.id.to_string(),
        email: user.email.to_string(),
    })
    .map_err(|e| ApiError::internal(&e))?;
    let expires = state.edge.clock.now().plus_secs(VERIFY_TOKEN_TTL_SECS);
    state
        .edge
        .stores
        .one_time
        .put_one_time(PURPOSE, &token.hash(), &payload, expires)
        .await?;
    Ok(mail::verification(
        &mailer.links,
        &user.email,
        token.expose(),
    ))
}

/// Registration's verification mail: a failure is logged, never fails the registration
/// (the account exists; `POST /auth/email/verify/send` sends another).
pub async fn on_register(state: &AuthState, meta: &RequestMeta, user: &UserRecord) {
    match issue(state, user).await {
        Ok(message) => mail::send_logged(state, meta, "verify_email", message).await,
        Err(e) => {
            tracing::warn!(request_id = %meta.request_id, user = %user.id, error = ?e, "verification mail not prepared; the user can ask again");
        }
    }
}

#[utoipa::path(
    post, path = "/auth/email/verify/send", tag = "account", operation_id = "send_email_verification",
    security(("bearer_jwt" = [])),
    responses((status = 202, description = "A new verification link is on its way.", body = AcceptedResponse),
        (status = 403, description = "`session_required`: API keys cannot reach account management."),
        (status = 409, description = "`email_already_verified`."),
        (status = 429, description = "`rate_limited`: `RATE_LIMIT_RECOVERY_EMAIL` per account."),
        (status = 503, description = "`email_unavailable`: no mail could be sent."))
)]
pub async fn send(
    State(state): State<AuthState>,
    meta: RequestMeta,
    auth: SessionOnly,
    limits: Limits,
) -> Result<(StatusCode, Json<AcceptedResponse>), ApiError> {
    let user = current_user(&state, &auth.user_id).await?;
    if user.email_verified {
        return Err(
            ApiError::new(ErrorKind::Conflict, "the address is verified already")
                .with_code("email_already_verified"),
        );
    }
    limits
        .enforce(Limit::RecoveryEmail, &format!("verify/{}", user.id))
        .await?;
    let message = issue(&state, &user).await?;
    mail::send(&state, message).await?;
    record(
        &state,
        &meta,
        AuditKind::EmailVerificationSent,
        Outcome::Success,
        Some(&user.id),
        None,
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(AcceptedResponse::sent())))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VerifiedResponse {
    pub email_verified: bool,
}

#[utoipa::path(
    post, path = "/auth/email/verify", tag = "account", operation_id = "verify_email",
    request_body = TokenRequest,
    responses((status = 200, description = "The address is verified.", body = VerifiedResponse),
        (status = 400, description = "`invalid_token`: unknown, used or expired, or the account's address changed since; `invalid_request`."),
        (status = 429, description = "`rate_limited`: `RATE_LIMIT_RECOVERY_IP`."))
)]
pub async fn verify(
    State(state): State<AuthState>,
    meta: RequestMeta,
    limits: Limits,
    JsonBody(body): JsonBody<TokenRequest>,
) -> Result<Json<VerifiedResponse>, ApiError> {
    limits.enforce(Limit::RecoveryIp, &meta.ip.0).await?;
    if !looks_like_token(&body.token) {
        return Err(invalid_token());
    }
    let now = state.edge.clock.now();
    let taken = state
        .edge
        .stores
        .one_time
        .take_one_time(PURPOSE, &TokenHash::of(&body.token), now)
        .await?;
    let kind = AuditKind::EmailVerified;
    let Some(payload) = taken else {
        return refused(
            &state,
            &meta,
            kind,
            None,
            "unknown_used_or_expired",
            invalid_token(),
        )
        .await;
    };
    let payload: Payload = serde_json::from_str(&payload).map_err(|e| ApiError::internal(&e))?;
    let user = UserId::parse(&payload.user_id).map_err(|e| ApiError::internal(&e))?;
    let email = Email::parse(&payload.email).map_err(|e| ApiError::internal(&e))?;
    if !state
        .edge
        .stores
        .users
        .set_email_verified(&user, &email)
        .await?
    {
        return refused(
            &state,
            &meta,
            kind,
            Some(&user),
            "address_changed_or_gone",
            invalid_token(),
        )
        .await;
    }
    record(&state, &meta, kind, Outcome::Success, Some(&user), None).await?;
    Ok(Json(VerifiedResponse {
        email_verified: true,
    }))
}
