//! The Google callback's decisions, free of I/O: given what Google sent and what the store
//! answered, how the sign-in ends (a login code, or back to the frontend with which fragment,
//! after which audit event). The handlers in `flow` and the store steps in `resolve` only fetch
//! and write.

use std::borrow::Cow;

use bastion_core::audit::{AuditKind, Outcome};
use bastion_core::crypto::TokenHash;
use bastion_core::{DisplayName, Email, Role, Timestamp, UserId};
use bastion_http::ApiError;
use bastion_store::{LinkError, StoreError, UserRecord};

use super::oidc::{GoogleClaims, OidcError};

/// Longest authorization code accepted from Google's redirect.
const CODE_MAX_LEN: usize = 2048;
/// Longest Google subject accepted (Google documents 255 ASCII characters).
const SUB_MAX_LEN: usize = 255;

/// An audit event a decision asks its handler to write before answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    pub kind: AuditKind,
    pub outcome: Outcome,
    pub user: Option<UserId>,
    pub reason: Option<&'static str>,
}

impl Audit {
    pub(super) fn failure(kind: AuditKind, user: Option<UserId>, reason: &'static str) -> Self {
        Self {
            kind,
            outcome: Outcome::Failure,
            user,
            reason: Some(reason),
        }
    }
}

/// A callback that ends back at the frontend with `#<fragment>` (binding cookie cleared), after
/// writing `audit` when there is one. The fragment is owned only when it carries a
/// re-authentication grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Back {
    pub fragment: Cow<'static, str>,
    pub audit: Option<Audit>,
}

impl Back {
    pub(super) fn plain(fragment: &'static str) -> Self {
        Self {
            fragment: Cow::Borrowed(fragment),
            audit: None,
        }
    }

    pub(super) fn audited(fragment: impl Into<Cow<'static, str>>, audit: Audit) -> Self {
        Self {
            fragment: fragment.into(),
            audit: Some(audit),
        }
    }
}

/// How a callback stops short of a login code: back to the frontend, or an error answer.
#[derive(Debug)]
pub enum Stop {
    Back(Back),
    Error(ApiError),
}

impl From<Back> for Stop {
    fn from(back: Back) -> Self {
        Stop::Back(back)
    }
}

impl From<ApiError> for Stop {
    fn from(e: ApiError) -> Self {
        Stop::Error(e)
    }
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Error(e.into())
    }
}

/// Whether the request comes from the browser that started the flow: its binding cookie
/// hashes to the one stored with the state or login code. Either missing is another browser.
pub fn same_browser(cookie: Option<&str>, bound: Option<&str>) -> bool {
    match (cookie, bound) {
        (Some(cookie), Some(bound)) => {
            TokenHash::of(cookie).ct_eq(&TokenHash::from_stored(bound.to_owned()))
        }
        _ => false,
    }
}

/// The authorization code Google's redirect carries, or how the callback ends without one.
pub fn redirect_code<'a>(error: Option<&str>, code: Option<&'a str>) -> Result<&'a str, Back> {
    if let Some(error) = error {
        // Only Google's well-known refusal is passed on; anything else is generic.
        let fragment = if error == "access_denied" {
            "error=access_denied"
        } else {
            "error=provider_error"
        };
        return Err(Back::plain(fragment));
    }
    code.filter(|c| !c.is_empty() && c.len() <= CODE_MAX_LEN)
        .ok_or(Back::plain("error=invalid_request"))
}

/// Whether a failed exchange or verification is Google's side (worth a warning in the log)
/// rather than a token that does not verify.
pub fn is_upstream(e: &OidcError) -> bool {
    matches!(e, OidcError::Upstream(_) | OidcError::CodeRejected(_))
}

/// The verified ID token's claims, or how the callback ends when it did not verify (audited
/// with the precise reason; the frontend only learns the public class of failure).
pub fn verified_claims(result: Result<GoogleClaims, OidcError>) -> Result<GoogleClaims, Back> {
    let claims = result.map_err(|e| {
        let fragment = match e {
            OidcError::EmailUnverified => "error=email_unverified",
            OidcError::Upstream(_) | OidcError::CodeRejected(_) => "error=provider_error",
            _ => "error=invalid_id_token",
        };
        let audit = Audit::failure(AuditKind::GoogleLoginFailed, None, e.reason());
        Back::audited(fragment, audit)
    })?;
    let sub_ok = !claims.sub.is_empty()
        && claims.sub.len() <= SUB_MAX_LEN
        && claims.sub.bytes().all(|b| b.is_ascii_graphic());
    if !sub_ok {
        return Err(Back::plain("error=invalid_id_token"));
    }
    Ok(claims)
}

/// A link flow whose starting session ended (logout everywhere, password change) while
/// Google was on screen: a link someone started with a stolen token stops here.
pub fn link_session_gone(user: &UserId) -> Back {
    Back::audited(
        "error=session_gone",
        Audit::failure(AuditKind::GoogleLinked, Some(user.clone()), "session_gone"),
    )
}

/// How a link flow ends, given the store's answer to linking the Google subject to `user`.
pub fn link_result(user: &UserId, result: Result<(), LinkError>) -> Result<Back, Stop> {
    match result {
        Ok(()) => Ok(Back::audited(
            "linked=google",
            Audit {
                kind: AuditKind::GoogleLinked,
                outcome: Outcome::Success,
                user: Some(user.clone()),
                reason: None,
            },
        )),
        Err(LinkError::IdentityTaken) => Ok(Back::audited(
            "error=google_account_in_use",
            Audit::failure(
                AuditKind::GoogleLinked,
                Some(user.clone()),
                "identity_taken",
            ),
        )),
        Err(LinkError::UserGone) => Ok(Back::plain("error=account_gone")),
        Err(LinkError::EmailTaken) => Ok(Back::plain("error=account_exists")),
        Err(LinkError::Store(e)) => Err(e.into()),
    }
}

/// The account a Google sign-in lands on, before the store is asked about its address.
#[derive(Debug, PartialEq, Eq)]
pub enum Account {
    /// Already linked to this Google subject.
    Known(UserRecord),
    /// No account has this subject: one may be created for this address.
    New(Email),
}

/// `by_google` is the account linked to the subject; without one, the claimed address must
/// parse for an account to be created.
pub fn account_for(by_google: Option<UserRecord>, email_claim: &str) -> Result<Account, Back> {
    match by_google {
        Some(user) => Ok(Account::Known(user)),
        None => Email::parse(email_claim)
            .map(Account::New)
            .map_err(|_| Back::plain("error=invalid_id_token")),
    }
}

/// Refuses a new Google account whose address already belongs to an account: never link
/// silently, the address may have been registered by someone else before its owner ever
/// signed in with Google (pre-account takeover).
pub fn address_free(by_email: Option<&UserRecord>) -> Result<(), Back> {
    match by_email {
        Some(existing) => Err(Back::audited(
            "error=account_exists",
            Audit::failure(
                AuditKind::GoogleLoginFailed,
                Some(existing.id.clone()),
                "account_exists",
            ),
        )),
        None => Ok(()),
    }
}

/// The account a first Google sign-in creates.
pub fn new_google_user(email: Email, name_claim: Option<&str>, now: Timestamp) -> UserRecord {
    UserRecord {
        id: UserId::generate(),
        email,
        display_name: name_claim.and_then(|n| DisplayName::parse(n).ok()),
        // No password: nothing verifies against an empty hash.
        password_hash: String::new(),
        roles: vec![Role::User],
        created_at: now,
        disabled: false,
        session_epoch: 0,
        email_verified: true,
    }
}

/// How creating that account went: a race lost to another sign-in ends the callback.
pub fn created(result: Result<(), LinkError>) -> Result<(), Stop> {
    match result {
        Ok(()) => Ok(()),
        Err(LinkError::EmailTaken) => Err(Back::plain("error=account_exists").into()),
        Err(LinkError::IdentityTaken | LinkError::UserGone) => {
            Err(Back::plain("error=try_again").into())
        }
        Err(LinkError::Store(e)) => Err(e.into()),
    }
}

/// The account signs in unless it is disabled.
pub fn active(user: UserRecord) -> Result<UserRecord, Back> {
    if user.disabled {
        return Err(Back::audited(
            "error=account_disabled",
            Audit::failure(
                AuditKind::GoogleLoginFailed,
                Some(user.id),
                "account_disabled",
            ),
        ));
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::user;

    fn claims(sub: &str) -> GoogleClaims {
        serde_json::from_value(serde_json::json!({
            "sub": sub,
            "email": "ada@example.com",
            "email_verified": true,
            "exp": 2_000_000_000_i64,
            "aud": "client",
        }))
        .unwrap()
    }

    fn failure(kind: AuditKind, user: Option<&UserId>, reason: &'static str) -> Option<Audit> {
        Some(Audit::failure(kind, user.cloned(), reason))
    }

    fn stopped_back(stop: Stop) -> Back {
        match stop {
            Stop::Back(back) => back,
            Stop::Error(e) => panic!("expected a redirect, got {e:?}"),
        }
    }

    #[test]
    fn same_browser_needs_the_cookie_that_hashes_to_the_stored_binding() {
        let bound = TokenHash::of("cookie-value");
        assert!(same_browser(Some("cookie-value"), Some(bound.as_str())));
        assert!(!same_browser(Some("other-value"), Some(bound.as_str())));
        assert!(!same_browser(None, Some(bound.as_str())));
        assert!(!same_browser(Some("cookie-value"), None));
        assert!(!same_browser(None, None));
    }

    #[test]
    fn redirect_code_passes_on_only_googles_access_denied() {
        assert_eq!(
            redirect_code(Some("access_denied"), Some("code")),
            Err(Back::plain("error=access_denied"))
        );
        assert_eq!(
            redirect_code(Some("server_error"), Some("code")),
            Err(Back::plain("error=provider_error"))
        );
    }

    #[test]
    fn redirect_code_refuses_a_missing_empty_or_oversized_code() {
        let invalid = Err(Back::plain("error=invalid_request"));
        assert_eq!(redirect_code(None, None), invalid);
        assert_eq!(redirect_code(None, Some("")), invalid);
        let long = "c".repeat(CODE_MAX_LEN + 1);
        assert_eq!(redirect_code(None, Some(&long)), invalid);
        let longest = "c".repeat(CODE_MAX_LEN);
        assert_eq!(redirect_code(None, Some(&longest)), Ok(longest.as_str()));
    }

    #[test]
    fn only_upstream_failures_count_as_googles_side() {
        assert!(is_upstream(&OidcError::Upstream("timeout".into())));
        assert!(is_upstream(&OidcError::CodeRejected(400)));
        assert!(!is_upstream(&OidcError::BadSignature));
        assert!(!is_upstream(&OidcError::EmailUnverified));
    }

    #[test]
    fn verified_claims_sorts_failures_into_public_codes_and_audits_the_precise_reason() {
        let cases = [
            (OidcError::EmailUnverified, "error=email_unverified"),
            (OidcError::Upstream("reset".into()), "error=provider_error"),
            (OidcError::CodeRejected(400), "error=provider_error"),
            (OidcError::NonceMismatch, "error=invalid_id_token"),
            (OidcError::Expired, "error=invalid_id_token"),
            (OidcError::WrongAudience, "error=invalid_id_token"),
        ];
        for (error, fragment) in cases {
            let reason = error.reason();
            let back = verified_claims(Err(error)).unwrap_err();
            assert_eq!(back.fragment, fragment);
            assert_eq!(
                back.audit,
                failure(AuditKind::GoogleLoginFailed, None, reason)
            );
        }
    }

    #[test]
    fn verified_claims_refuses_an_empty_long_or_non_ascii_subject_without_an_audit() {
        let invalid = Back::plain("error=invalid_id_token");
        for sub in ["", "has space", "tab\tsub", "ünïcode"] {
            assert_eq!(verified_claims(Ok(claims(sub))).unwrap_err(), invalid);
        }
        let long = "1".repeat(SUB_MAX_LEN + 1);
        assert_eq!(verified_claims(Ok(claims(&long))).unwrap_err(), invalid);
        let longest = "1".repeat(SUB_MAX_LEN);
        assert_eq!(verified_claims(Ok(claims(&longest))).unwrap().sub, longest);
    }

    #[test]
    fn a_link_whose_session_ended_is_refused_and_audited() {
        let id = UserId::generate();
        let back = link_session_gone(&id);
        assert_eq!(back.fragment, "error=session_gone");
        assert_eq!(
            back.audit,
            failure(AuditKind::GoogleLinked, Some(&id), "session_gone")
        );
    }

    #[test]
    fn a_successful_link_goes_back_linked_and_is_audited_as_success() {
        let id = UserId::generate();
        let back = link_result(&id, Ok(())).unwrap();
        assert_eq!(back.fragment, "linked=google");
        let audit = back.audit.unwrap();
        assert_eq!(
            (audit.kind, audit.outcome, audit.user, audit.reason),
            (AuditKind::GoogleLinked, Outcome::Success, Some(id), None)
        );
    }

    #[test]
    fn a_google_identity_linked_elsewhere_is_refused_and_audited() {
        let id = UserId::generate();
        let back = link_result(&id, Err(LinkError::IdentityTaken)).unwrap();
        assert_eq!(back.fragment, "error=google_account_in_use");
        assert_eq!(
            back.audit,
            failure(AuditKind::GoogleLinked, Some(&id), "identity_taken")
        );
    }

    #[test]
    fn a_link_to_a_gone_or_clashing_account_goes_back_without_an_audit() {
        let id = UserId::generate();
        assert_eq!(
            link_result(&id, Err(LinkError::UserGone)).unwrap(),
            Back::plain("error=account_gone")
        );
        assert_eq!(
            link_result(&id, Err(LinkError::EmailTaken)).unwrap(),
            Back::plain("error=account_exists")
        );
    }

    #[test]
    fn a_store_failure_while_linking_is_an_error_answer_not_a_redirect() {
        let id = UserId::generate();
        let result = link_result(
            &id,
            Err(LinkError::Store(StoreError::Unavailable("x".into()))),
        );
        assert!(matches!(result, Err(Stop::Error(_))));
    }

    #[test]
    fn a_subject_linked_to_an_account_signs_in_as_that_account() {
        let known = user(false);
        assert_eq!(
            account_for(Some(known.clone()), "not an address"),
            Ok(Account::Known(known))
        );
    }

    #[test]
    fn an_unknown_subject_gets_a_new_account_only_for_a_valid_address() {
        assert_eq!(
            account_for(None, "Ada@Example.com"),
            Ok(Account::New(Email::parse("Ada@Example.com").unwrap()))
        );
        assert_eq!(
            account_for(None, "not an address"),
            Err(Back::plain("error=invalid_id_token"))
        );
    }

    #[test]
    fn an_address_registered_before_is_never_linked_silently() {
        let existing = user(false);
        let back = address_free(Some(&existing)).unwrap_err();
        assert_eq!(back.fragment, "error=account_exists");
        assert_eq!(
            back.audit,
            failure(
                AuditKind::GoogleLoginFailed,
                Some(&existing.id),
                "account_exists"
            )
        );
        assert_eq!(address_free(None), Ok(()));
    }

    #[test]
    fn a_new_google_account_has_no_password_one_user_role_and_a_valid_name_only() {
        let email = Email::parse("ada@example.com").unwrap();
        let now = Timestamp(1_700_000_000);
        let named = new_google_user(email.clone(), Some("Ada Lovelace"), now);
        assert_eq!(named.email, email);
        assert_eq!(named.display_name, DisplayName::parse("Ada Lovelace").ok());
        assert_eq!(named.password_hash, "");
        assert_eq!(named.roles, vec![Role::User]);
        assert_eq!(named.created_at, now);
        assert!(!named.disabled);
        assert_eq!(named.session_epoch, 0);
        let unnamed = new_google_user(email, Some("\u{7}bell"), now);
        assert_eq!(unnamed.display_name, None);
        assert_ne!(named.id, unnamed.id);
    }

    #[test]
    fn losing_the_account_creation_race_ends_the_callback_with_which_code() {
        assert!(created(Ok(())).is_ok());
        let back = |e| stopped_back(created(Err(e)).unwrap_err());
        assert_eq!(
            back(LinkError::EmailTaken),
            Back::plain("error=account_exists")
        );
        assert_eq!(
            back(LinkError::IdentityTaken),
            Back::plain("error=try_again")
        );
        assert_eq!(back(LinkError::UserGone), Back::plain("error=try_again"));
        let store = created(Err(LinkError::Store(StoreError::Unavailable("x".into()))));
        assert!(matches!(store, Err(Stop::Error(_))));
    }

    #[test]
    fn a_disabled_account_is_refused_and_audited_and_an_active_one_signs_in() {
        let disabled = user(true);
        let back = active(disabled.clone()).unwrap_err();
        assert_eq!(back.fragment, "error=account_disabled");
        assert_eq!(
            back.audit,
            failure(
                AuditKind::GoogleLoginFailed,
                Some(&disabled.id),
                "account_disabled"
            )
        );
        let enabled = user(false);
        assert_eq!(active(enabled.clone()), Ok(enabled));
    }
}
