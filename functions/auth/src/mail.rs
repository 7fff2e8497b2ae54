//! The two mails auth sends (address verification, password reset): plain text with a link
//! carrying the token in the fragment, so it reaches neither server logs nor `Referer`.
//! Nothing the user chose (name, address) is written into a body.

use std::sync::Arc;

use bastion_core::Email;
use bastion_http::email::{EmailError, EmailMessage, EmailSender, LinkBase};
use bastion_http::{ApiError, ErrorKind, RequestMeta};

use crate::AuthState;

/// Where mails go and what their links start with.
#[derive(Clone)]
pub struct Mailer {
    pub sender: Arc<dyn EmailSender>,
    pub links: LinkBase,
}

/// The page of the web app a verification link opens.
pub const VERIFY_PAGE: &str = "verify-email";
/// The page of the web app a reset link opens.
pub const RESET_PAGE: &str = "reset-password";

pub fn verification(links: &LinkBase, to: &Email, token: &str) -> EmailMessage {
    EmailMessage {
        to: to.clone(),
        subject: "Verify your email address".to_owned(),
        text: format!(
            "A Bastion account was created with this address, or a new verification link was \
             asked for.\n\nOpen this link within 24 hours to verify the address:\n{}\n\nIf this \
             was not you, ignore this message; nothing changes.\n",
            links.link(VERIFY_PAGE, token)
        ),
    }
}

pub fn reset(links: &LinkBase, to: &Email, token: &str) -> EmailMessage {
    EmailMessage {
        to: to.clone(),
        subject: "Reset your password".to_owned(),
        text: format!(
            "A password reset was asked for the Bastion account with this address.\n\nOpen this \
             link within 30 minutes to choose a new password:\n{}\n\nOnly the newest link works, \
             and only once. A reset signs out every device and revokes every API key; a second \
             factor stays on. If you did not ask for this, ignore this message: your password \
             stays as it is.\n",
            links.link(RESET_PAGE, token)
        ),
    }
}

/// A change to how the account signs in, told to its address (ASVS 6.3.6), so an owner learns
/// of a takeover attempt that used a stolen session or mailbox.
#[derive(Debug, Clone, Copy)]
pub enum Notice {
    PasswordReset,
    PasswordChanged,
    MfaEnabled,
    MfaDisabled,
    MfaRemovedByAdmin,
}

pub fn notice(to: &Email, what: Notice) -> EmailMessage {
    let (subject, line) = match what {
        Notice::PasswordReset => (
            "Your password was reset",
            "The password of your Bastion account was reset with an emailed link. Every device was signed out and every API key revoked.",
        ),
        Notice::PasswordChanged => (
            "Your password was changed",
            "The password of your Bastion account was changed. Every other device was signed out and every API key revoked.",
        ),
        Notice::MfaEnabled => (
            "Two-step sign-in is on",
            "Two-step sign-in (an authenticator app code) was turned on for your Bastion account.",
        ),
        Notice::MfaDisabled => (
            "Two-step sign-in is off",
            "Two-step sign-in was turned off for your Bastion account.",
        ),
        Notice::MfaRemovedByAdmin => (
            "Two-step sign-in was removed",
            "An administrator removed two-step sign-in from your Bastion account.",
        ),
    };
    EmailMessage {
        to: to.clone(),
        subject: subject.to_owned(),
        text: format!(
            "{line}\n\nIf this was not you, reset your password at once and contact support.\n"
        ),
    }
}

/// Tells `to` about `what` where mail is configured; never fails the change it reports.
pub async fn notify(state: &AuthState, meta: &RequestMeta, to: &Email, what: Notice) {
    if state.mail.is_some() {
        send_logged(state, meta, "notice", notice(to, what)).await;
    }
}

/// The mailer, or 503 `email_unavailable` where none is configured.
pub fn mailer(state: &AuthState) -> Result<&Mailer, ApiError> {
    state.mail.as_ref().ok_or_else(not_configured)
}

fn not_configured() -> ApiError {
    ApiError::new(ErrorKind::Unavailable, "email delivery is not configured")
        .with_code("email_unavailable")
        .with_log("no EmailSender configured for auth")
}

/// Sends `message`; a failure is answered 503 with the cause logged (never the address).
pub async fn send(state: &AuthState, message: EmailMessage) -> Result<(), ApiError> {
    let mailer = mailer(state)?;
    mailer.sender.send(&message).await.map_err(|e| match e {
        EmailError::NotConfigured => not_configured(),
        other => ApiError::new(
            ErrorKind::Unavailable,
            "the mail could not be sent; try again",
        )
        .with_code("email_unavailable")
        .with_log(format!("email send failed: {other}")),
    })
}

/// Sends `message` where the request must succeed anyway (registration): a failure is logged
/// with the request id and the user can ask for a new link.
pub async fn send_logged(state: &AuthState, meta: &RequestMeta, what: &str, message: EmailMessage) {
    if let Err(e) = send(state, message).await {
        tracing::warn!(request_id = %meta.request_id, mail = what, error = ?e, "mail not sent; the user can ask again");
    }
}
