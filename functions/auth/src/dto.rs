//! Wire types of the auth routes. Requests refuse unknown fields; responses never carry a hash.

use bastion_core::Timestamp;
use bastion_store::{SessionRecord, UserRecord};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(format = Email, max_length = 254, example = "you@example.com")]
    pub email: String,
    #[schema(min_length = 8, max_length = 128, format = Password)]
    pub password: String,
    /// Trimmed; no control characters.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64)]
    pub display_name: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(max_length = 254, example = "you@example.com")]
    pub email: String,
    #[schema(max_length = 128, format = Password)]
    pub password: String,
    /// The `device_token` an earlier successful login on this device returned.
    #[serde(default)]
    pub device_token: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schema(max_length = 128, format = Password)]
    pub current_password: String,
    #[schema(min_length = 8, max_length = 128, format = Password)]
    pub new_password: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccountRequest {
    /// Ignored (and may be omitted) for accounts created by Google, which have no password.
    #[serde(default)]
    #[schema(max_length = 128, format = Password)]
    pub password: String,
    /// For an account without a password: the grant of a Google re-authentication for this
    /// action (`POST /auth/google/reauth`); ignored for accounts with a password.
    #[serde(default)]
    #[schema(min_length = 43, max_length = 43)]
    pub reauth_grant: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub display_name: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    pub roles: Option<Vec<&'static str>>,
    /// The address was shown to reach the user (a verification link, or Google said so).
    pub email_verified: bool,
    /// The second factor (on `/auth/me` and the admin view only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa: Option<MfaView>,
}

/// An account's second factor as shown to its owner and to administrators.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct MfaView {
    /// TOTP is on (confirmed).
    pub totp: bool,
    pub recovery_codes_left: usize,
}

impl MfaView {
    pub fn of(record: Option<&bastion_store::TotpRecord>) -> Self {
        match record.filter(|r| r.confirmed) {
            Some(r) => Self {
                totp: true,
                recovery_codes_left: r.recovery_codes.len(),
            },
            None => Self {
                totp: false,
                recovery_codes_left: 0,
            },
        }
    }
}

impl UserView {
    pub fn of(user: &UserRecord) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.to_string(),
            display_name: user.display_name.as_ref().map(|d| d.as_str().to_owned()),
            created_at: user.created_at.to_rfc3339(),
            roles: None,
            email_verified: user.email_verified,
            mfa: None,
        }
    }

    pub fn with_roles(user: &UserRecord) -> Self {
        Self {
            roles: Some(user.roles.iter().map(|r| r.as_str()).collect()),
            ..Self::of(user)
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub user: UserView,
    pub access_token: String,
    pub refresh_token: String,
    #[schema(value_type = String, example = "Bearer")]
    pub token_type: &'static str,
    pub expires_in: i64,
    /// Only on a password login: present it on the next login from this device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_token: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MeResponse {
    pub user: UserView,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub id: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub last_used_at: String,
    pub ip: String,
    pub user_agent: String,
    pub current: bool,
}

impl SessionView {
    pub fn of(s: &SessionRecord, current: bool) -> Self {
        let t = |ts: Timestamp| ts.to_rfc3339();
        Self {
            id: s.id.to_string(),
            created_at: t(s.created_at),
            last_used_at: t(s.last_used_at),
            ip: s.ip.clone(),
            user_agent: s.user_agent.clone(),
            current,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionsResponse {
    pub sessions: Vec<SessionView>,
}

/// A scope an API key may carry (`bastion_core::Scope`).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // only its schema is used
pub enum ScopeName {
    Chat,
    Exec,
    Read,
}

/// A role a user may hold (`bastion_core::Role`).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // only its schema is used
pub enum RoleName {
    User,
    Admin,
}

/// A token from a mailed link.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    #[schema(max_length = 128)]
    pub token: String,
}

/// The answer of a request whose effect is a mail (or, for an unknown address, nothing).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AcceptedResponse {
    #[schema(example = "accepted")]
    pub status: &'static str,
    pub message: &'static str,
}

impl AcceptedResponse {
    pub fn sent() -> Self {
        Self {
            status: "accepted",
            message: "a verification link is on its way",
        }
    }

    /// The one answer of `POST /auth/password/forgot`, whatever the address.
    pub fn reset() -> Self {
        Self {
            status: "accepted",
            message: "if an account with this address exists, a reset link is on its way",
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotPasswordRequest {
    #[schema(format = Email, max_length = 254, example = "you@example.com")]
    pub email: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    #[schema(max_length = 128)]
    pub token: String,
    #[schema(min_length = 8, max_length = 128, format = Password)]
    pub password: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatusResponse {
    #[schema(example = "password_reset")]
    pub status: &'static str,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpEnrollRequest {
    #[schema(max_length = 128, format = Password)]
    pub password: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TotpEnrollResponse {
    /// Base32 (RFC 4648, no padding); SHA-1, 6 digits, 30-second steps.
    pub secret: String,
    #[schema(
        example = "otpauth://totp/Bastion:you%40example.com?secret=…&issuer=Bastion&algorithm=SHA1&digits=6&period=30"
    )]
    pub otpauth_uri: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The 6-digit code the authenticator shows now.
    #[schema(max_length = 16, example = "123456")]
    pub code: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecoveryCodesResponse {
    /// Shown this once; each works once, in place of a code.
    pub recovery_codes: Vec<String>,
}

/// The first factor was right and the account has a second one: no tokens yet.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MfaRequiredResponse {
    pub mfa_required: bool,
    /// For `POST /auth/mfa/verify`; lives 5 minutes and dies after 5 wrong codes.
    pub mfa_token: String,
    #[schema(example = json!(["totp", "recovery_code"]))]
    pub methods: Vec<&'static str>,
}

/// A sign-in's answer: the tokens, or the second step it still needs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    Tokens(TokenResponse),
    MfaRequired(MfaRequiredResponse),
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaVerifyRequest {
    #[schema(max_length = 2048)]
    pub mfa_token: String,
    /// A 6-digit TOTP code; or give `recovery_code`.
    #[serde(default)]
    #[schema(max_length = 16)]
    pub code: Option<String>,
    #[serde(default)]
    #[schema(max_length = 64)]
    pub recovery_code: Option<String>,
}
