//! The second step of a sign-in: with TOTP on, a right password (or a Google sign-in) answers
//! an `mfa_token` instead of tokens, and `POST /auth/mfa/verify` trades it and a TOTP or
//! recovery code for the usual login answer.
//!
//! The `mfa_token` is a signed 5-minute token naming the account, its password version and
//! session epoch (a password change or a revocation of every session kills it). Its attempts
//! are counted in the counter store under its id: the sixth attempt is refused whatever the
//! code, and a success counts once, so a token signs in at most once.

use axum::Json;
use axum::extract::State;
use bastion_core::audit::{AuditKind, Outcome};
use bastion_core::crypto::ct_eq;
use bastion_core::crypto::jwt::device;
use bastion_core::crypto::jwt::mfa::MfaClaims;
use bastion_core::crypto::recovery::RecoveryCode;
use bastion_core::{Timestamp, UserId};
use bastion_http::{ApiError, JsonBody, Limit, Limits, RequestMeta};
use bastion_store::{TotpRecord, UserRecord};

use crate::AuthState;
use crate::audit::{record, refused};
use crate::dto::{LoginResponse, MfaRequiredResponse, MfaVerifyRequest};
use crate::mfa::{accepted_step, invalid_code};
use crate::tokens::signed_in;

/// Codes tried with one `mfa_token` before it dies.
pub const MFA_TOKEN_ATTEMPTS: u64 = 5;

pub fn invalid_mfa_token() -> ApiError {
    ApiError::unauthorized("the sign-in expired or had too many wrong codes; sign in again")
        .with_code("invalid_mfa_token")
}

/// The second step `user` still needs, if TOTP is on for the account.
pub async fn challenge(
    state: &AuthState,
    user: &UserRecord,
) -> Result<Option<MfaRequiredResponse>, ApiError> {
    let record = state.edge.stores.mfa.get_totp(&user.id).await?;
    let Some(record) = record.filter(|r| r.confirmed) else {
        return Ok(None);
    };
    let (token, _) = state
        .signer
        .load()
        .issue_mfa(
            &user.id,
            &user.password_hash,
            user.session_epoch,
            state.edge.clock.now(),
        )
        .map_err(|e| ApiError::internal(&e))?;
    let mut methods = vec!["totp"];
    if !record.recovery_codes.is_empty() {
        methods.push("recovery_code");
    }
    Ok(Some(MfaRequiredResponse {
        mfa_required: true,
        mfa_token: token,
        methods,
    }))
}

/// The account an `mfa_token` was issued for, if it is still the same account: not disabled,
/// same password, no revocation of every session since.
fn still_valid(claims: &MfaClaims, user: Option<UserRecord>) -> Option<UserRecord> {
    user.filter(|u| {
        !u.disabled
            && claims.rev == u.session_epoch
            && ct_eq(
                claims.pwv.as_bytes(),
                device::password_version(&u.password_hash).as_bytes(),
            )
    })
}

/// Counts one `what` (an attempt, or a success) of the token under its id; false once more
/// than `allowed` were counted.
async fn counted(
    state: &AuthState,
    claims: &MfaClaims,
    what: &str,
    allowed: u64,
) -> Result<bool, ApiError> {
    let key = format!("mfa-{what}#{}", claims.jti);
    let counts = state
        .edge
        .stores
        .counters
        .hit(&key, 0, Timestamp(claims.exp).plus_secs(60))
        .await?;
    Ok(counts.current <= allowed)
}

#[utoipa::path(
    post, path = "/auth/mfa/verify", tag = "mfa", operation_id = "mfa_verify",
    request_body = MfaVerifyRequest,
    responses((status = 200, description = "Signed in.", body = crate::dto::TokenResponse),
        (status = 400, description = "`invalid_code`: wrong, stale or used TOTP code, or an unknown or used recovery code; `invalid_request`."),
        (status = 401, description = "`invalid_mfa_token`: unknown, expired, used, or 5 wrong codes tried with it; `sessions_revoked`."),
        (status = 429, description = "`rate_limited`: `RATE_LIMIT_MFA` per account."))
)]
pub async fn verify(
    State(state): State<AuthState>,
    meta: RequestMeta,
    limits: Limits,
    JsonBody(body): JsonBody<MfaVerifyRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let now = state.edge.clock.now();
    let kind = AuditKind::MfaFailed;
    let Ok(claims) = state.signer.load().verify_mfa(&body.mfa_token, now) else {
        return refused(
            &state,
            &meta,
            kind,
            None,
            "bad_mfa_token",
            invalid_mfa_token(),
        )
        .await;
    };
    let user_id = UserId::parse(&claims.sub).map_err(|e| ApiError::internal(&e))?;
    limits.enforce(Limit::Mfa, user_id.as_str()).await?;
    if !counted(&state, &claims, "try", MFA_TOKEN_ATTEMPTS).await? {
        return refused(
            &state,
            &meta,
            kind,
            Some(&user_id),
            "attempts_used_up",
            invalid_mfa_token(),
        )
        .await;
    }
    let stores = &state.edge.stores;
    let (user, factor) = tokio::join!(
        stores.users.get_user(&user_id),
        stores.mfa.get_totp(&user_id)
    );
    let user = still_valid(&claims, user?);
    let (Some(user), Some(totp)) = (user, factor?.filter(|r| r.confirmed)) else {
        return refused(
            &state,
            &meta,
            kind,
            Some(&user_id),
            "account_changed",
            invalid_mfa_token(),
        )
        .await;
    };
    let Some(method) = second_factor(&state, &user, &totp, &body).await? else {
        return refused(
            &state,
            &meta,
            kind,
            Some(&user.id),
            "bad_code",
            invalid_code(),
        )
        .await;
    };
    if !counted(&state, &claims, "done", 1).await? {
        return refused(
            &state,
            &meta,
            kind,
            Some(&user.id),
            "mfa_token_used",
            invalid_mfa_token(),
        )
        .await;
    }
    let (kind, detail) = match method {
        Method::Totp => (AuditKind::MfaVerified, "method=totp".to_owned()),
        Method::RecoveryCode => {
            let left = totp.recovery_codes.len().saturating_sub(1);
            (
                AuditKind::RecoveryCodeUsed,
                format!("recovery_codes_left={left}"),
            )
        }
    };
    record(
        &state,
        &meta,
        kind,
        Outcome::Success,
        Some(&user.id),
        Some(&detail),
    )
    .await?;
    signed_in(&state, &meta, &user)
        .await
        .map(|t| Json(LoginResponse::Tokens(t)))
}

/// How the second step was passed.
enum Method {
    Totp,
    RecoveryCode,
}

/// Checks the code given (TOTP, or else a recovery code) and spends it; the method on
/// success, `None` for a wrong or used one.
async fn second_factor(
    state: &AuthState,
    user: &UserRecord,
    record: &TotpRecord,
    body: &MfaVerifyRequest,
) -> Result<Option<Method>, ApiError> {
    match (&body.code, &body.recovery_code) {
        (Some(code), None) => Ok(accepted_step(state, &user.id, record, code)
            .await?
            .map(|_| Method::Totp)),
        (None, Some(raw)) => {
            let Ok(code) = RecoveryCode::parse(raw) else {
                return Ok(None);
            };
            let used = state
                .edge
                .stores
                .mfa
                .use_recovery_code(&user.id, &code.hash())
                .await?;
            Ok(used.then_some(Method::RecoveryCode))
        }
        _ => Err(ApiError::invalid(
            "invalid_request",
            "give exactly one of `code` and `recovery_code`",
        )),
    }
}
