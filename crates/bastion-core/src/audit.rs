//! Audit event types: what happened, to whom, from where. Never a password, token or key.

use crate::clock::Timestamp;
use crate::ids::{AuditId, RequestId, UserId};

/// Audit entries live 90 days (DynamoDB TTL; reads ignore older ones).
pub const AUDIT_RETENTION_SECS: i64 = 90 * 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    Register,
    LoginSucceeded,
    LoginFailed,
    LoginRateLimited,
    RefreshRotated,
    RefreshReuseDetected,
    Logout,
    LogoutAll,
    SessionRevoked,
    PasswordChanged,
    AccountDeleted,
    ExecRun,
    ApiKeyCreated,
    ApiKeyRevoked,
    GoogleLogin,
    GoogleLoginFailed,
    GoogleAccountCreated,
    GoogleLinked,
    GoogleUnlinked,
    PasswordSet,
    AdminAuthFailed,
    AdminAuditViewed,
    AdminUserViewed,
    AdminUserDisabled,
    AdminUserEnabled,
    AdminSessionsRevoked,
    AdminRolesChanged,
    ChatQuotaExceeded,
    ChatProviderFailed,
    /// One tool call of an agent turn (tool, outcome, exit code, duration; never contents).
    ChatToolCall,
    WebhookRejected,
    PlanChanged,
    BillingLinked,
    RefreshRefused,
    GoogleExchangeRefused,
    ApiKeyRefused,
    EmailVerificationSent,
    EmailVerified,
    PasswordResetRequested,
    PasswordReset,
    MfaEnrollmentStarted,
    MfaEnabled,
    MfaDisabled,
    MfaVerified,
    MfaFailed,
    RecoveryCodeUsed,
    AdminMfaReset,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Register => "register",
            AuditKind::LoginSucceeded => "login_succeeded",
            AuditKind::LoginFailed => "login_failed",
            AuditKind::LoginRateLimited => "login_rate_limited",
            AuditKind::RefreshRotated => "refresh_rotated",
            AuditKind::RefreshReuseDetected => "refresh_reuse_detected",
            AuditKind::Logout => "logout",
            AuditKind::LogoutAll => "logout_all",
            AuditKind::SessionRevoked => "session_revoked",
            AuditKind::PasswordChanged => "password_changed",
            AuditKind::AccountDeleted => "account_deleted",
            AuditKind::ExecRun => "exec_run",
            AuditKind::ApiKeyCreated => "api_key_created",
            AuditKind::ApiKeyRevoked => "api_key_revoked",
            AuditKind::GoogleLogin => "google_login",
            AuditKind::GoogleLoginFailed => "google_login_failed",
            AuditKind::GoogleAccountCreated => "google_account_created",
            AuditKind::GoogleLinked => "google_linked",
            AuditKind::GoogleUnlinked => "google_unlinked",
            AuditKind::PasswordSet => "password_set",
            AuditKind::AdminAuthFailed => "admin_auth_failed",
            AuditKind::AdminAuditViewed => "admin_audit_viewed",
            AuditKind::AdminUserViewed => "admin_user_viewed",
            AuditKind::AdminUserDisabled => "admin_user_disabled",
            AuditKind::AdminUserEnabled => "admin_user_enabled",
            AuditKind::AdminSessionsRevoked => "admin_sessions_revoked",
            AuditKind::AdminRolesChanged => "admin_roles_changed",
            AuditKind::ChatQuotaExceeded => "chat_quota_exceeded",
            AuditKind::ChatProviderFailed => "chat_provider_failed",
            AuditKind::ChatToolCall => "chat_tool_call",
            AuditKind::WebhookRejected => "webhook_rejected",
            AuditKind::PlanChanged => "plan_changed",
            AuditKind::BillingLinked => "billing_linked",
            AuditKind::RefreshRefused => "refresh_refused",
            AuditKind::GoogleExchangeRefused => "google_exchange_refused",
            AuditKind::ApiKeyRefused => "api_key_refused",
            AuditKind::EmailVerificationSent => "email_verification_sent",
            AuditKind::EmailVerified => "email_verified",
            AuditKind::PasswordResetRequested => "password_reset_requested",
            AuditKind::PasswordReset => "password_reset",
            AuditKind::MfaEnrollmentStarted => "mfa_enrollment_started",
            AuditKind::MfaEnabled => "mfa_enabled",
            AuditKind::MfaDisabled => "mfa_disabled",
            AuditKind::MfaVerified => "mfa_verified",
            AuditKind::MfaFailed => "mfa_failed",
            AuditKind::RecoveryCodeUsed => "recovery_code_used",
            AuditKind::AdminMfaReset => "admin_mfa_reset",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "register" => AuditKind::Register,
            "login_succeeded" => AuditKind::LoginSucceeded,
            "login_failed" => AuditKind::LoginFailed,
            "login_rate_limited" => AuditKind::LoginRateLimited,
            "refresh_rotated" => AuditKind::RefreshRotated,
            "refresh_reuse_detected" => AuditKind::RefreshReuseDetected,
            "logout" => AuditKind::Logout,
            "logout_all" => AuditKind::LogoutAll,
            "session_revoked" => AuditKind::SessionRevoked,
            "password_changed" => AuditKind::PasswordChanged,
            "account_deleted" => AuditKind::AccountDeleted,
            "exec_run" => AuditKind::ExecRun,
            "api_key_created" => AuditKind::ApiKeyCreated,
            "api_key_revoked" => AuditKind::ApiKeyRevoked,
            "google_login" => AuditKind::GoogleLogin,
            "google_login_failed" => AuditKind::GoogleLoginFailed,
            "google_account_created" => AuditKind::GoogleAccountCreated,
            "google_linked" => AuditKind::GoogleLinked,
            "google_unlinked" => AuditKind::GoogleUnlinked,
            "password_set" => AuditKind::PasswordSet,
            "admin_auth_failed" => AuditKind::AdminAuthFailed,
            "admin_audit_viewed" => AuditKind::AdminAuditViewed,
            "admin_user_viewed" => AuditKind::AdminUserViewed,
            "admin_user_disabled" => AuditKind::AdminUserDisabled,
            "admin_user_enabled" => AuditKind::AdminUserEnabled,
            "admin_sessions_revoked" => AuditKind::AdminSessionsRevoked,
            "admin_roles_changed" => AuditKind::AdminRolesChanged,
            "chat_quota_exceeded" => AuditKind::ChatQuotaExceeded,
            "chat_provider_failed" => AuditKind::ChatProviderFailed,
            "chat_tool_call" => AuditKind::ChatToolCall,
            "webhook_rejected" => AuditKind::WebhookRejected,
            "plan_changed" => AuditKind::PlanChanged,
            "billing_linked" => AuditKind::BillingLinked,
            "refresh_refused" => AuditKind::RefreshRefused,
            "google_exchange_refused" => AuditKind::GoogleExchangeRefused,
            "api_key_refused" => AuditKind::ApiKeyRefused,
            "email_verification_sent" => AuditKind::EmailVerificationSent,
            "email_verified" => AuditKind::EmailVerified,
            "password_reset_requested" => AuditKind::PasswordResetRequested,
            "password_reset" => AuditKind::PasswordReset,
            "mfa_enrollment_started" => AuditKind::MfaEnrollmentStarted,
            "mfa_enabled" => AuditKind::MfaEnabled,
            "mfa_disabled" => AuditKind::MfaDisabled,
            "mfa_verified" => AuditKind::MfaVerified,
            "mfa_failed" => AuditKind::MfaFailed,
            "recovery_code_used" => AuditKind::RecoveryCodeUsed,
            "admin_mfa_reset" => AuditKind::AdminMfaReset,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            _ => None,
        }
    }
}

/// One audit record. `subject` is the user id when known, else a label such as `ip:1.2.3.4`,
/// so events about unknown accounts are still kept and queryable.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEvent {
    pub id: AuditId,
    pub at: Timestamp,
    pub kind: AuditKind,
    pub outcome: Outcome,
    pub user_id: Option<UserId>,
    pub ip: String,
    pub user_agent: String,
    pub request_id: RequestId,
    /// Short machine-readable reason (e.g. `bad_password`); never user-supplied secrets.
    pub detail: Option<String>,
}

impl AuditEvent {
    /// Epoch second at which the record may be deleted.
    pub fn expires_at(&self) -> Timestamp {
        self.at.plus_secs(AUDIT_RETENTION_SECS)
    }
}
