//! One-action grants of a Google re-authentication: what a password-less account shows instead
//! of a password to set its first password, unlink Google or delete itself. The Google
//! callback (`google::reauth`) issues one after a fresh login at Google; the action spends it.
//!
//! Without them, a stolen access token of a fresh session was enough to set a password (a
//! lasting way in) and then unlink Google or delete the account (the owner locked out). A
//! grant is a one-time record (256 random bits, SHA-256 at rest, five minutes) stored under its
//! action's own purpose, so it cannot be spent on another action, and it names the user and
//! the session that started the re-authentication, so no other user or session can spend it.

use bastion_core::audit::AuditKind;
use bastion_core::crypto::token::looks_like_token;
use bastion_core::crypto::{OpaqueToken, TokenHash, ct_eq};
use bastion_core::{SessionId, Timestamp, UserId};
use bastion_http::{ApiError, ErrorKind, RequestMeta, SessionOnly};
use serde::{Deserialize, Serialize};

use crate::AuthState;
use crate::audit;

/// How long a grant may wait for its action.
const GRANT_TTL_SECS: i64 = 300;

/// The actions of a password-less account that need a fresh Google re-authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReauthAction {
    SetPassword,
    UnlinkGoogle,
    DeleteAccount,
}

impl ReauthAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ReauthAction::SetPassword => "set_password",
            ReauthAction::UnlinkGoogle => "unlink_google",
            ReauthAction::DeleteAccount => "delete_account",
        }
    }

    /// The one-time purpose its grants are stored under: one per action, so a grant for one
    /// action is simply unknown to the others.
    fn purpose(self) -> &'static str {
        match self {
            ReauthAction::SetPassword => "reauth_set_password",
            ReauthAction::UnlinkGoogle => "reauth_unlink_google",
            ReauthAction::DeleteAccount => "reauth_delete_account",
        }
    }

    fn what(self) -> &'static str {
        match self {
            ReauthAction::SetPassword => "set a password",
            ReauthAction::UnlinkGoogle => "unlink Google",
            ReauthAction::DeleteAccount => "delete the account",
        }
    }

    /// The audit kind of the action itself: refused grants are audited as failures of it.
    pub(crate) fn audit_kind(self) -> AuditKind {
        match self {
            ReauthAction::SetPassword => AuditKind::PasswordSet,
            ReauthAction::UnlinkGoogle => AuditKind::GoogleUnlinked,
            ReauthAction::DeleteAccount => AuditKind::AccountDeleted,
        }
    }

    /// The detail of the successful re-authentication's audit event.
    pub(crate) fn granted_detail(self) -> &'static str {
        match self {
            ReauthAction::SetPassword => "reauth=set_password",
            ReauthAction::UnlinkGoogle => "reauth=unlink_google",
            ReauthAction::DeleteAccount => "reauth=delete_account",
        }
    }
}

/// What a stored grant names besides its action (its purpose).
#[derive(Serialize, Deserialize)]
struct GrantPayload {
    user: String,
    session: String,
}

fn reauth_required(action: ReauthAction) -> ApiError {
    ApiError::new(
        ErrorKind::Forbidden,
        format!(
            "re-authenticate with Google to {} (POST /auth/google/reauth with action {})",
            action.what(),
            action.as_str()
        ),
    )
    .with_code("reauthentication_required")
}

fn invalid_grant() -> ApiError {
    ApiError::new(
        ErrorKind::Forbidden,
        "the re-authentication grant is unknown, expired, already used, or for another action, account or session",
    )
    .with_code("invalid_reauth_grant")
}

/// Stores a grant for `action` by `user`'s `session`; the caller sends it to the browser.
pub(crate) async fn issue(
    state: &AuthState,
    action: ReauthAction,
    user: &UserId,
    session: &SessionId,
    now: Timestamp,
) -> Result<OpaqueToken, ApiError> {
    let grant = OpaqueToken::generate();
    let payload = serde_json::to_string(&GrantPayload {
        user: user.as_str().to_owned(),
        session: session.as_str().to_owned(),
    })
    .map_err(|e| ApiError::internal(&e))?;
    let expires = now.plus_secs(GRANT_TTL_SECS);
    state
        .edge
        .stores
        .one_time
        .put_one_time(action.purpose(), &grant.hash(), &payload, expires)
        .await?;
    Ok(grant)
}

/// Why a grant taken from the store is not the caller's: another user's, or another session's.
fn not_the_callers(payload: &GrantPayload, auth: &SessionOnly) -> Option<&'static str> {
    if !ct_eq(payload.user.as_bytes(), auth.user_id.as_str().as_bytes()) {
        return Some("reauth_grant_of_another_user");
    }
    if !ct_eq(
        payload.session.as_bytes(),
        auth.session_id.as_str().as_bytes(),
    ) {
        return Some("reauth_grant_of_another_session");
    }
    None
}

/// Spends the grant presented for `action` by the caller's session: what a password-less
/// account shows instead of a password. Every refusal is audited as a failed `action`; a
/// grant taken by the wrong user or session is spent all the same.
pub(crate) async fn redeem(
    state: &AuthState,
    meta: &RequestMeta,
    auth: &SessionOnly,
    action: ReauthAction,
    presented: Option<&str>,
) -> Result<(), ApiError> {
    let kind = action.audit_kind();
    let user = Some(&auth.user_id);
    let Some(raw) = presented else {
        let refusal = reauth_required(action);
        return audit::refused(state, meta, kind, user, "no_reauth_grant", refusal).await;
    };
    let taken = if looks_like_token(raw) {
        let now = state.edge.clock.now();
        let hash = TokenHash::of(raw);
        let one_time = &state.edge.stores.one_time;
        one_time.take_one_time(action.purpose(), &hash, now).await?
    } else {
        None
    };
    let Some(payload) = taken else {
        // Unknown, expired, used and other actions' grants are one case to the store.
        return audit::refused(state, meta, kind, user, "bad_reauth_grant", invalid_grant()).await;
    };
    let payload: GrantPayload =
        serde_json::from_str(&payload).map_err(|e| ApiError::internal(&e))?;
    if let Some(reason) = not_the_callers(&payload, auth) {
        return audit::refused(state, meta, kind, user, reason, invalid_grant()).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_its_own_grant_purpose_and_wire_name() {
        let all = [
            ReauthAction::SetPassword,
            ReauthAction::UnlinkGoogle,
            ReauthAction::DeleteAccount,
        ];
        for a in all {
            let wire = serde_json::to_value(a).unwrap();
            assert_eq!(wire, serde_json::json!(a.as_str()));
            assert_eq!(a.purpose(), format!("reauth_{}", a.as_str()));
            assert_eq!(a.granted_detail(), format!("reauth={}", a.as_str()));
            for b in all.into_iter().filter(|b| *b != a) {
                assert_ne!(a.purpose(), b.purpose());
            }
        }
    }
}
