//! `POST /auth/refresh`: rotate the refresh token; a rotated token seen again kills the session.

use axum::Json;
use axum::extract::State;
use bastion_core::audit::{AuditKind, Outcome};
use bastion_core::crypto::token::looks_like_token;
use bastion_core::crypto::{OpaqueToken, TokenHash};
use bastion_core::{SessionId, Timestamp, UserId};
use bastion_http::{ApiError, JsonBody, Limit, Limits, RequestMeta};
use bastion_store::{RotateOutcome, SessionRecord, UserRecord};

use crate::AuthState;
use crate::audit::{self, record};
use crate::dto::{RefreshRequest, TokenResponse};
use crate::tokens::token_response;

fn invalid_refresh() -> ApiError {
    ApiError::unauthorized("refresh token is invalid or expired").with_code("invalid_refresh_token")
}

fn reused() -> ApiError {
    ApiError::unauthorized("refresh token was already used; the session has been revoked")
        .with_code("refresh_token_reused")
}

#[utoipa::path(
    post, path = "/auth/refresh", tag = "auth", operation_id = "refresh",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new access token and a rotated refresh token.", body = TokenResponse),
        (status = 401, description = "`invalid_refresh_token`, `refresh_token_reused` (the whole session family is revoked)."),
    )
)]
pub async fn refresh(
    State(state): State<AuthState>,
    meta: RequestMeta,
    limits: Limits,
    JsonBody(body): JsonBody<RefreshRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    if !looks_like_token(&body.refresh_token) {
        return Err(invalid_refresh());
    }
    let stores = &state.edge.stores;
    let now = state.edge.clock.now();
    let presented = TokenHash::of(&body.refresh_token);
    let Some(lookup) = stores.sessions.find_refresh(&presented, now).await? else {
        // Unknown, or its session's absolute lifetime is over (the lookup expires with it):
        // the store cannot tell which, so no user is named.
        return refused(&state, &meta, None, "unknown_or_expired").await;
    };
    limits
        .enforce(Limit::RefreshSession, lookup.session_id.as_str())
        .await?;
    let Some(session) = stores
        .sessions
        .get_session(&lookup.user_id, &lookup.session_id, now)
        .await?
    else {
        return refused(&state, &meta, Some(&lookup.user_id), "session_gone").await;
    };
    let user = stores.users.get_user(&lookup.user_id).await?;
    let user = match verdict(user, &session, &presented, now, state.sessions.idle_secs) {
        Verdict::Rotate(user) => user,
        Verdict::Reused(user) => {
            return reuse_detected(&state, &meta, &user.id, &session.id).await;
        }
        Verdict::End(reason) => {
            stores
                .sessions
                .revoke_session(&session.user_id, &session.id)
                .await?;
            return refused(&state, &meta, Some(&session.user_id), reason).await;
        }
    };
    let next = OpaqueToken::generate();
    let outcome = stores
        .sessions
        .rotate_refresh(&user.id, &session.id, &presented, &next.hash(), now)
        .await?;
    match outcome {
        RotateOutcome::Rotated => {
            record(
                &state,
                &meta,
                AuditKind::RefreshRotated,
                Outcome::Success,
                Some(&user.id),
                None,
            )
            .await?;
            Ok(Json(token_response(&state, &user, &session.id, &next)?))
        }
        RotateOutcome::Reused => reuse_detected(&state, &meta, &user.id, &session.id).await,
        RotateOutcome::SessionGone => refused(&state, &meta, Some(&user.id), "session_gone").await,
    }
}

/// A rotated token came back: someone holds a copy, so the whole session is revoked.
async fn reuse_detected<T>(
    state: &AuthState,
    meta: &RequestMeta,
    user: &UserId,
    session: &SessionId,
) -> Result<T, ApiError> {
    state
        .edge
        .stores
        .sessions
        .revoke_session(user, session)
        .await?;
    record(
        state,
        meta,
        AuditKind::RefreshReuseDetected,
        Outcome::Failure,
        Some(user),
        Some("session_revoked"),
    )
    .await?;
    tracing::warn!(request_id = %meta.request_id, user_id = %user, session_id = %session, "refresh token reuse: session revoked");
    Err(reused())
}

/// What a known refresh token of a live session gets, before the store is asked to rotate it.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// The session's current token, its account active and the session not idle: rotate.
    Rotate(UserRecord),
    /// A token of this session that was already rotated away: someone kept a copy, so the
    /// whole session goes.
    Reused(UserRecord),
    /// The session may not go on (account gone or disabled, idle too long): revoke it and
    /// refuse, audited with this reason.
    End(&'static str),
}

/// `user` is the session's account as stored now; `presented` the hash of the token sent.
fn verdict(
    user: Option<UserRecord>,
    session: &SessionRecord,
    presented: &TokenHash,
    now: Timestamp,
    idle_secs: i64,
) -> Verdict {
    let idle = now.secs() - session.last_used_at.secs() > idle_secs;
    match user {
        None => Verdict::End("user_gone"),
        Some(u) if u.disabled => Verdict::End("user_disabled"),
        Some(_) if idle => Verdict::End("idle_expired"),
        Some(u) if session.refresh_hash.ct_eq(presented) => Verdict::Rotate(u),
        Some(u) => Verdict::Reused(u),
    }
}

/// Audits a refused refresh with its reason, then answers the one refusal every case shares.
async fn refused<T>(
    state: &AuthState,
    meta: &RequestMeta,
    user: Option<&UserId>,
    reason: &str,
) -> Result<T, ApiError> {
    let kind = AuditKind::RefreshRefused;
    audit::refused(state, meta, kind, user, reason, invalid_refresh()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{NOW, session, user};

    const IDLE_SECS: i64 = 3600;

    /// The verdict on `presented` for a session of `account` whose current token is "current",
    /// last used `idle_for` seconds ago.
    fn judge(account: Option<&UserRecord>, idle_for: i64, presented: &str) -> Verdict {
        let owner = account.cloned().unwrap_or_else(|| user(false));
        let s = session(&owner, "current", idle_for);
        verdict(
            account.cloned(),
            &s,
            &TokenHash::of(presented),
            NOW,
            IDLE_SECS,
        )
    }

    #[test]
    fn the_current_token_of_an_active_account_is_rotated() {
        let u = user(false);
        assert_eq!(judge(Some(&u), 0, "current"), Verdict::Rotate(u));
    }

    #[test]
    fn a_token_rotated_away_is_a_reuse_that_revokes_the_session() {
        let u = user(false);
        assert_eq!(judge(Some(&u), 0, "older"), Verdict::Reused(u));
    }

    #[test]
    fn a_session_idle_for_longer_than_the_limit_ends_and_exactly_the_limit_does_not() {
        let u = user(false);
        assert_eq!(
            judge(Some(&u), IDLE_SECS + 1, "current"),
            Verdict::End("idle_expired")
        );
        assert_eq!(judge(Some(&u), IDLE_SECS, "current"), Verdict::Rotate(u));
    }

    #[test]
    fn a_gone_or_disabled_account_ends_the_session_whatever_token_is_presented() {
        let disabled = user(true);
        for presented in ["current", "older"] {
            assert_eq!(
                judge(Some(&disabled), 0, presented),
                Verdict::End("user_disabled")
            );
            assert_eq!(judge(None, 0, presented), Verdict::End("user_gone"));
        }
    }

    #[test]
    fn an_ended_session_is_refused_before_a_reuse_is_considered() {
        // An idle session presented with an old token is ended, not treated as a reuse: the
        // audit says why the session ended.
        let u = user(false);
        assert_eq!(
            judge(Some(&u), IDLE_SECS + 1, "older"),
            Verdict::End("idle_expired")
        );
    }
}
