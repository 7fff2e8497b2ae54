//! The TOTP second factor of the signed-in user: `POST /auth/mfa/totp` (start, password asked
//! again), `POST /auth/mfa/totp/confirm` (turn on, recovery codes shown once) and
//! `DELETE /auth/mfa/totp` (turn off with a current code). Every code checked records its time
//! step, so a code is accepted at most once.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bastion_core::UserId;
use bastion_core::audit::{AuditKind, Outcome};
use bastion_core::crypto::recovery::RecoveryCode;
use bastion_core::crypto::totp::{TotpCode, TotpSecret, otpauth_uri};
use bastion_core::random::random_bytes;
use bastion_http::{ApiError, ErrorKind, JsonBody, Limit, Limits, RequestMeta, SessionOnly};
use bastion_store::TotpRecord;

use crate::AuthState;
use crate::account::{confirm_password, current_user};
use crate::audit::{record, refused};
use crate::dto::{CodeRequest, RecoveryCodesResponse, TotpEnrollRequest, TotpEnrollResponse};
use crate::mail::{self, Notice};

/// The issuer authenticator apps show next to the account.
pub const TOTP_ISSUER: &str = "Bastion";

pub fn invalid_code() -> ApiError {
    ApiError::invalid("invalid_code", "the code is wrong, expired or used already")
}

fn already_enabled() -> ApiError {
    ApiError::new(
        ErrorKind::Conflict,
        "a second factor is on already; turn it off first",
    )
    .with_code("mfa_already_enabled")
}

fn not_enabled(what: &'static str) -> ApiError {
    ApiError::new(ErrorKind::Conflict, what).with_code("mfa_not_enabled")
}

fn no_password() -> ApiError {
    ApiError::new(
        ErrorKind::Conflict,
        "set a password first (POST /auth/password/set): turning on a second factor asks for it",
    )
    .with_code("no_password")
}

/// The stored secret, which only fails to parse if the record is corrupt.
pub(crate) fn secret_of(record: &TotpRecord) -> Result<TotpSecret, ApiError> {
    TotpSecret::from_base32(&record.secret).map_err(|e| ApiError::internal(&e))
}

/// The time step `raw` is the code of for the confirmed or pending `record`, recorded in the
/// store as used when `record` is confirmed; `None` for a wrong, stale or replayed code.
pub(crate) async fn accepted_step(
    state: &AuthState,
    user: &UserId,
    record: &TotpRecord,
    raw: &str,
) -> Result<Option<u64>, ApiError> {
    let Ok(code) = TotpCode::parse(raw) else {
        return Ok(None);
    };
    let now = state.edge.clock.now();
    let Some(step) = secret_of(record)?.matching_step(&code, now, record.last_step) else {
        return Ok(None);
    };
    if !record.confirmed {
        return Ok(Some(step));
    }
    let fresh = state
        .edge
        .stores
        .mfa
        .accept_totp_step(user, &record.id, step)
        .await?;
    Ok(fresh.then_some(step))
}

#[utoipa::path(
    post, path = "/auth/mfa/totp", tag = "mfa", operation_id = "totp_enroll", security(("bearer_jwt" = [])),
    request_body = TotpEnrollRequest,
    responses((status = 200, description = "A new secret, pending until confirmed with a code (a pending one is replaced).", body = TotpEnrollResponse),
        (status = 401, description = "`unauthorized`, `invalid_password`."),
        (status = 403, description = "`session_required`."),
        (status = 409, description = "`mfa_already_enabled`; `no_password`: an account without a password sets one first."))
)]
pub async fn enroll(
    State(state): State<AuthState>,
    meta: RequestMeta,
    auth: SessionOnly,
    limits: Limits,
    JsonBody(body): JsonBody<TotpEnrollRequest>,
) -> Result<Json<TotpEnrollResponse>, ApiError> {
    let user = current_user(&state, &auth.user_id).await?;
    if user.password_hash.is_empty() {
        return Err(no_password());
    }
    let kind = AuditKind::MfaEnrollmentStarted;
    confirm_password(&state, &meta, &limits, &user, &body.password, kind).await?;
    let secret = TotpSecret::generate();
    let record = TotpRecord {
        id: hex::encode(random_bytes::<16>()),
        secret: secret.to_base32(),
        confirmed: false,
        last_step: 0,
        recovery_codes: Vec::new(),
        created_at: state.edge.clock.now(),
    };
    if !state
        .edge
        .stores
        .mfa
        .put_pending_totp(&user.id, &record)
        .await?
    {
        return Err(already_enabled());
    }
    record_success(&state, &meta, kind, &user.id, None).await?;
    Ok(Json(TotpEnrollResponse {
        otpauth_uri: otpauth_uri(&secret, TOTP_ISSUER, user.email.as_str()),
        secret: record.secret,
    }))
}

#[utoipa::path(
    post, path = "/auth/mfa/totp/confirm", tag = "mfa", operation_id = "totp_confirm", security(("bearer_jwt" = [])),
    request_body = CodeRequest,
    responses((status = 200, description = "TOTP is on; the 10 recovery codes are shown this once.", body = RecoveryCodesResponse),
        (status = 400, description = "`invalid_code`, `invalid_request`."),
        (status = 403, description = "`session_required`."),
        (status = 409, description = "`mfa_already_enabled`; `mfa_not_enabled`: no pending secret (start with POST /auth/mfa/totp)."),
        (status = 429, description = "`rate_limited`: `RATE_LIMIT_MFA`."))
)]
pub async fn confirm(
    State(state): State<AuthState>,
    meta: RequestMeta,
    auth: SessionOnly,
    limits: Limits,
    JsonBody(body): JsonBody<CodeRequest>,
) -> Result<Json<RecoveryCodesResponse>, ApiError> {
    limits.enforce(Limit::Mfa, auth.user_id.as_str()).await?;
    let stores = &state.edge.stores;
    let record = match stores.mfa.get_totp(&auth.user_id).await? {
        Some(r) if r.confirmed => return Err(already_enabled()),
        Some(r) => r,
        None => {
            return Err(not_enabled(
                "no TOTP secret is pending; start with POST /auth/mfa/totp",
            ));
        }
    };
    let kind = AuditKind::MfaEnabled;
    let Some(step) = accepted_step(&state, &auth.user_id, &record, &body.code).await? else {
        return refused(
            &state,
            &meta,
            kind,
            Some(&auth.user_id),
            "bad_code",
            invalid_code(),
        )
        .await;
    };
    let codes = RecoveryCode::generate_set();
    let hashes: Vec<_> = codes.iter().map(RecoveryCode::hash).collect();
    // Only the secret the code was checked against, and only while still pending.
    if !stores
        .mfa
        .confirm_totp(&auth.user_id, &record.id, step, &hashes)
        .await?
    {
        return Err(ApiError::new(
            ErrorKind::Conflict,
            "the pending secret changed during this request; start again",
        )
        .with_code("mfa_changed"));
    }
    record_success(&state, &meta, kind, &auth.user_id, None).await?;
    notify_owner(&state, &meta, &auth.user_id, Notice::MfaEnabled).await;
    Ok(Json(RecoveryCodesResponse {
        recovery_codes: codes.iter().map(|c| c.expose().to_owned()).collect(),
    }))
}

#[utoipa::path(
    delete, path = "/auth/mfa/totp", tag = "mfa", operation_id = "totp_disable", security(("bearer_jwt" = [])),
    request_body = CodeRequest,
    responses((status = 204, description = "The second factor and its recovery codes are removed."),
        (status = 400, description = "`invalid_code`, `invalid_request`."),
        (status = 403, description = "`session_required`."),
        (status = 409, description = "`mfa_not_enabled`."),
        (status = 429, description = "`rate_limited`: `RATE_LIMIT_MFA`."))
)]
pub async fn disable(
    State(state): State<AuthState>,
    meta: RequestMeta,
    auth: SessionOnly,
    limits: Limits,
    JsonBody(body): JsonBody<CodeRequest>,
) -> Result<StatusCode, ApiError> {
    limits.enforce(Limit::Mfa, auth.user_id.as_str()).await?;
    let stores = &state.edge.stores;
    let record = match stores.mfa.get_totp(&auth.user_id).await? {
        Some(r) if r.confirmed => r,
        _ => return Err(not_enabled("no second factor is on")),
    };
    let kind = AuditKind::MfaDisabled;
    if accepted_step(&state, &auth.user_id, &record, &body.code)
        .await?
        .is_none()
    {
        return refused(
            &state,
            &meta,
            kind,
            Some(&auth.user_id),
            "bad_code",
            invalid_code(),
        )
        .await;
    }
    stores.mfa.delete_totp(&auth.user_id).await?;
    record_success(&state, &meta, kind, &auth.user_id, None).await?;
    notify_owner(&state, &meta, &auth.user_id, Notice::MfaDisabled).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Tells the account's address about a change to its second factor (best effort).
pub(crate) async fn notify_owner(
    state: &AuthState,
    meta: &RequestMeta,
    user: &UserId,
    what: Notice,
) {
    match state.edge.stores.users.get_user(user).await {
        Ok(Some(u)) => mail::notify(state, meta, &u.email, what).await,
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(request_id = %meta.request_id, %user, error = %e, "notice mail skipped: profile unreadable");
        }
    }
}

async fn record_success(
    state: &AuthState,
    meta: &RequestMeta,
    kind: AuditKind,
    user: &UserId,
    detail: Option<&str>,
) -> Result<(), ApiError> {
    record(state, meta, kind, Outcome::Success, Some(user), detail).await
}
