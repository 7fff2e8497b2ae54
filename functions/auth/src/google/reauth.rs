//! The Google side of a re-authentication bound to one action (`crate::reauth`): what its
//! pending state remembers, and how its callback ends. `POST /auth/google/reauth` (in `flow`)
//! starts the usual flow (state, PKCE, nonce, binding cookie) with `prompt=login` and
//! `max_age`; the callback then needs Google's `auth_time` fresh, the session that started it
//! alive and the Google subject the one linked to the user, and sends back a grant.

use bastion_core::audit::{AuditKind, Outcome};
use bastion_core::{SessionId, Timestamp, UserId};
use bastion_http::ApiError;
use serde::{Deserialize, Serialize};

use super::oidc::{GoogleClaims, SKEW_SECS};
use super::verdict::{Audit, Back, Stop};
use crate::AuthState;
use crate::reauth::{self, ReauthAction};

/// The `max_age` asked of Google, and how old `auth_time` may be at the callback.
pub const MAX_AGE_SECS: i64 = 300;

/// What the pending state of a re-authentication remembers: who started it, from which
/// session, for which action.
#[derive(Debug, Serialize, Deserialize)]
pub struct PendingReauth {
    user: String,
    session: String,
    action: ReauthAction,
}

impl PendingReauth {
    pub(super) fn new(user: &UserId, session: &SessionId, action: ReauthAction) -> Self {
        Self {
            user: user.as_str().to_owned(),
            session: session.as_str().to_owned(),
            action,
        }
    }
}

/// Whether Google's `auth_time` shows a login within [`MAX_AGE_SECS`] of `now` (and not
/// later than the clock skew allows); `Err` names the audited reason.
fn fresh_login(auth_time: Option<i64>, now: Timestamp) -> Result<(), &'static str> {
    let Some(at) = auth_time else {
        // OIDC makes `auth_time` required once `max_age` is asked: its absence proves nothing.
        return Err("auth_time_missing");
    };
    let age = now.secs().saturating_sub(at);
    if (-SKEW_SECS..=MAX_AGE_SECS).contains(&age) {
        Ok(())
    } else {
        Err("auth_time_stale")
    }
}

fn refused_back(fragment: &'static str, user: &UserId, reason: &'static str) -> Back {
    let audit = Audit::failure(AuditKind::GoogleLoginFailed, Some(user.clone()), reason);
    Back::audited(fragment, audit)
}

/// The callback of a re-authentication, once the ID token verified: a grant for the action
/// when the login is fresh, the session that started it alive and the Google subject the one
/// linked to the user; always ends back at the frontend.
pub(super) async fn finish(
    state: &AuthState,
    pending: &PendingReauth,
    claims: &GoogleClaims,
    now: Timestamp,
) -> Result<Back, Stop> {
    let user = UserId::parse(&pending.user).map_err(|e| ApiError::internal(&e))?;
    let session = SessionId::parse(&pending.session).map_err(|e| ApiError::internal(&e))?;
    if let Err(reason) = fresh_login(claims.auth_time, now) {
        return Ok(refused_back("error=stale_authentication", &user, reason));
    }
    let stores = &state.edge.stores;
    if stores
        .sessions
        .get_session(&user, &session, now)
        .await?
        .is_none()
    {
        return Ok(refused_back("error=session_gone", &user, "session_gone"));
    }
    let linked = stores.accounts.find_user_by_google(&claims.sub).await?;
    if linked.is_none_or(|u| u.id != user) {
        let reason = "other_google_account";
        return Ok(refused_back("error=wrong_google_account", &user, reason));
    }
    let grant = reauth::issue(state, pending.action, &user, &session, now).await?;
    let audit = Audit {
        kind: AuditKind::GoogleLogin,
        outcome: Outcome::Success,
        user: Some(user),
        reason: Some(pending.action.granted_detail()),
    };
    Ok(Back::audited(format!("reauth={}", grant.expose()), audit))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_800_000_000);

    #[test]
    fn a_login_is_fresh_from_max_age_ago_to_the_skew_ahead_and_needs_auth_time() {
        assert_eq!(fresh_login(None, NOW), Err("auth_time_missing"));
        assert_eq!(fresh_login(Some(NOW.0), NOW), Ok(()));
        assert_eq!(fresh_login(Some(NOW.0 - MAX_AGE_SECS), NOW), Ok(()));
        assert_eq!(fresh_login(Some(NOW.0 + SKEW_SECS), NOW), Ok(()));
        let stale = NOW.0 - MAX_AGE_SECS - 1;
        assert_eq!(fresh_login(Some(stale), NOW), Err("auth_time_stale"));
        let ahead = NOW.0 + SKEW_SECS + 1;
        assert_eq!(fresh_login(Some(ahead), NOW), Err("auth_time_stale"));
        assert_eq!(fresh_login(Some(0), NOW), Err("auth_time_stale"));
        assert_eq!(fresh_login(Some(i64::MIN), NOW), Err("auth_time_stale"));
        assert_eq!(fresh_login(Some(i64::MAX), NOW), Err("auth_time_stale"));
    }
}
