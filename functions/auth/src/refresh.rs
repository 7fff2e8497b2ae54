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
use crate::audit::record;
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
    record(
        state,
        meta,
        AuditKind::RefreshRefused,
        Outcome::Failure,
        user,
        Some(reason),
    )
    .await?;
    Err(invalid_refresh())
}

#[cfg(test)]
mod tests {
    use bastion_core::{Email, Role};

    use super::*;

    const IDLE_SECS: i64 = 3600;
    const NOW: Timestamp = Timestamp(1_700_000_000);

    fn user(disabled: bool) -> UserRecord {
        UserRecord {
            id: UserId::generate(),
            email: Email::parse("ada@example.com").unwrap(),
            display_name: None,
            password_hash: String::new(),
            roles: vec![Role::User],
            created_at: Timestamp(1_600_000_000),
            disabled,
            session_epoch: 0,
        }
    }

    /// A session whose current token is `current`, last used `idle_for` seconds before NOW.
    fn session(user: &UserRecord, current: &str, idle_for: i64) -> SessionRecord {
        SessionRecord {
            id: SessionId::generate(),
            user_id: user.id.clone(),
            refresh_hash: TokenHash::of(current),
            created_at: Timestamp(NOW.secs() - 86_400),
            last_used_at: Timestamp(NOW.secs() - idle_for),
            expires_at: NOW.plus_secs(86_400),
            ip: "192.0.2.1".into(),
            user_agent: "test".into(),
        }
    }

    #[test]
    fn the_current_token_of_an_active_account_is_rotated() {
        let u = user(false);
        let s = session(&u, "current", 0);
        let v = verdict(
            Some(u.clone()),
            &s,
            &TokenHash::of("current"),
            NOW,
            IDLE_SECS,
        );
        assert_eq!(v, Verdict::Rotate(u));
    }

    #[test]
    fn a_token_rotated_away_is_a_reuse_that_revokes_the_session() {
        let u = user(false);
        let s = session(&u, "current", 0);
        let v = verdict(Some(u.clone()), &s, &TokenHash::of("older"), NOW, IDLE_SECS);
        assert_eq!(v, Verdict::Reused(u));
    }

    #[test]
    fn a_session_idle_for_longer_than_the_limit_ends_and_exactly_the_limit_does_not() {
        let u = user(false);
        let over = session(&u, "current", IDLE_SECS + 1);
        let v = verdict(
            Some(u.clone()),
            &over,
            &TokenHash::of("current"),
            NOW,
            IDLE_SECS,
        );
        assert_eq!(v, Verdict::End("idle_expired"));
        let at = session(&u, "current", IDLE_SECS);
        let v = verdict(
            Some(u.clone()),
            &at,
            &TokenHash::of("current"),
            NOW,
            IDLE_SECS,
        );
        assert_eq!(v, Verdict::Rotate(u));
    }

    #[test]
    fn a_gone_or_disabled_account_ends_the_session_whatever_token_is_presented() {
        let disabled = user(true);
        let s = session(&disabled, "current", 0);
        for presented in ["current", "older"] {
            let presented = TokenHash::of(presented);
            let v = verdict(Some(disabled.clone()), &s, &presented, NOW, IDLE_SECS);
            assert_eq!(v, Verdict::End("user_disabled"));
            assert_eq!(
                verdict(None, &s, &presented, NOW, IDLE_SECS),
                Verdict::End("user_gone")
            );
        }
    }

    #[test]
    fn an_ended_session_is_refused_before_a_reuse_is_considered() {
        // An idle session presented with an old token is ended, not treated as a reuse: the
        // audit says why the session ended.
        let u = user(false);
        let s = session(&u, "current", IDLE_SECS + 1);
        let v = verdict(Some(u), &s, &TokenHash::of("older"), NOW, IDLE_SECS);
        assert_eq!(v, Verdict::End("idle_expired"));
    }
}
