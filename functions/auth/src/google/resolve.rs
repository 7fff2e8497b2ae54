//! The store steps of a Google callback once the ID token verified: link the identity to the
//! account that started a link flow, or find or create the account it signs in as. Every
//! decision is `verdict`'s; this module only reads, writes and audits.

use bastion_core::audit::{AuditKind, Outcome};
use bastion_core::{SessionId, Timestamp, UserId};
use bastion_http::{ApiError, RequestMeta};
use bastion_store::UserRecord;

use super::oidc::GoogleClaims;
use super::verdict::{
    Account, Back, Stop, account_for, active, address_free, created, link_result,
    link_session_gone, new_google_user,
};
use crate::AuthState;
use crate::audit::record;

/// Links Google subject `sub` to the account that started the flow, if the session that
/// started it is still alive; always ends back at the frontend.
pub async fn link(
    state: &AuthState,
    link_user: &str,
    link_session: Option<&str>,
    sub: &str,
    now: Timestamp,
) -> Result<Back, Stop> {
    let user = UserId::parse(link_user).map_err(|e| ApiError::internal(&e))?;
    // Logging out everywhere or changing the password while Google is still on screen
    // must stop a link someone else started with a stolen token.
    let session = match link_session.map(SessionId::parse) {
        Some(Ok(sid)) => {
            state
                .edge
                .stores
                .sessions
                .get_session(&user, &sid, now)
                .await?
        }
        _ => None,
    };
    if session.is_none() {
        return Ok(link_session_gone(&user));
    }
    link_result(
        &user,
        state.edge.stores.accounts.link_google(&user, sub).await,
    )
}

/// The account the verified identity signs in as: the linked one, or a new one for an
/// address no account has yet.
pub async fn sign_in(
    state: &AuthState,
    meta: &RequestMeta,
    claims: &GoogleClaims,
    now: Timestamp,
) -> Result<UserRecord, Stop> {
    let stores = &state.edge.stores;
    let by_google = stores.accounts.find_user_by_google(&claims.sub).await?;
    let user = match account_for(by_google, &claims.email)? {
        Account::Known(user) => google_verified(state, user, &claims.email).await?,
        Account::New(email) => {
            address_free(stores.users.find_user_by_email(&email).await?.as_ref())?;
            let user = new_google_user(email, claims.name.as_deref(), now);
            created(stores.accounts.create_google_user(&user, &claims.sub).await)?;
            record(
                state,
                meta,
                AuditKind::GoogleAccountCreated,
                Outcome::Success,
                Some(&user.id),
                None,
            )
            .await?;
            user
        }
    };
    Ok(active(user)?)
}

/// Google verifies every address it signs in with (the ID token check refuses others): a linked
/// account whose address is that one counts as verified from then on.
async fn google_verified(
    state: &AuthState,
    mut user: UserRecord,
    email_claim: &str,
) -> Result<UserRecord, Stop> {
    let same = bastion_core::Email::parse(email_claim).is_ok_and(|e| e == user.email);
    if same
        && !user.email_verified
        && state
            .edge
            .stores
            .users
            .set_email_verified(&user.id, &user.email)
            .await?
    {
        user.email_verified = true;
    }
    Ok(user)
}
