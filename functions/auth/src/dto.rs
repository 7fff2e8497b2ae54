//! Wire types of the auth routes. Requests refuse unknown fields; responses never carry a hash.

use bastion_core::Timestamp;
use bastion_store::{SessionRecord, UserRecord};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// The `device_token` an earlier successful login on this device returned.
    #[serde(default)]
    pub device_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccountRequest {
    /// Ignored (and may be omitted) for accounts created by Google, which have no password.
    #[serde(default)]
    pub password: String,
}

#[derive(Debug, Serialize)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub display_name: Option<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<&'static str>>,
}

impl UserView {
    pub fn of(user: &UserRecord) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.to_string(),
            display_name: user.display_name.as_ref().map(|d| d.as_str().to_owned()),
            created_at: user.created_at.to_rfc3339(),
            roles: None,
        }
    }

    pub fn with_roles(user: &UserRecord) -> Self {
        Self {
            roles: Some(user.roles.iter().map(|r| r.as_str()).collect()),
            ..Self::of(user)
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub user: UserView,
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    /// Only on a password login: present it on the next login from this device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_token: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MeResponse {
    pub user: UserView,
}

#[derive(Debug, Serialize)]
pub struct SessionView {
    pub id: String,
    pub created_at: String,
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

#[derive(Debug, Serialize)]
pub struct SessionsResponse {
    pub sessions: Vec<SessionView>,
}
