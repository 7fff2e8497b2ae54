//! `/admin/*`: audit listing and account administration, for a configured admin key or a user
//! whose `admin` role is re-read from the store on every request. Every action and every
//! failed admin authentication is audited with the admin's identity.

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use bastion_core::audit::{AuditEvent, AuditKind, Outcome};
use bastion_core::{Role, Timestamp, UserId};
use bastion_http::auth::bearer;
use bastion_http::{ApiError, ErrorKind, JsonBody, Limit, Limits, RequestMeta, SessionOnly};
use http::request::Parts;
use serde::{Deserialize, Serialize};

use crate::AuthState;
use crate::admin_keys::ADMIN_KEY_PREFIX;
use crate::audit::record;

const AUDIT_PAGE: usize = 50;

/// Who is administering.
#[derive(Debug, Clone)]
pub enum AdminIdentity {
    Key(String),
    User(UserId),
}

impl AdminIdentity {
    fn label(&self) -> String {
        match self {
            AdminIdentity::Key(name) => format!("key:{name}"),
            AdminIdentity::User(id) => format!("user:{id}"),
        }
    }
}

/// An authenticated administrator, with the request facts its actions are audited with.
pub struct Admin {
    pub identity: AdminIdentity,
    pub meta: RequestMeta,
}

async fn refuse(
    state: &AuthState,
    meta: &RequestMeta,
    user: Option<&UserId>,
    reason: &str,
    err: ApiError,
) -> ApiError {
    match record(
        state,
        meta,
        AuditKind::AdminAuthFailed,
        Outcome::Failure,
        user,
        Some(reason),
    )
    .await
    {
        Ok(()) => err,
        Err(audit_failed) => audit_failed,
    }
}

fn admin_required() -> ApiError {
    ApiError::new(ErrorKind::Forbidden, "this route needs an administrator")
        .with_code("admin_required")
}

impl FromRequestParts<AuthState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AuthState) -> Result<Self, ApiError> {
        let meta = RequestMeta::from_request_parts(parts, state).await?;
        let Ok(limits) = Limits::from_request_parts(parts, state).await;
        limits.enforce(Limit::AdminIp, &meta.ip.0).await?;
        let identity = match bearer(parts) {
            None => {
                let err = ApiError::unauthorized("missing bearer token");
                return Err(refuse(state, &meta, None, "missing_credentials", err).await);
            }
            Some(token) if token.starts_with(ADMIN_KEY_PREFIX) => {
                match state.extras.load().admin_keys.identify(token) {
                    Some(name) => AdminIdentity::Key(name.to_owned()),
                    None => {
                        let err = ApiError::unauthorized("admin key is not recognised")
                            .with_code("invalid_admin_key");
                        return Err(refuse(state, &meta, None, "unknown_admin_key", err).await);
                    }
                }
            }
            Some(_) => {
                let session = match SessionOnly::from_request_parts(parts, state).await {
                    Ok(s) => s,
                    Err(err) if err.kind() == ErrorKind::RateLimited => return Err(err),
                    Err(err) => return Err(refuse(state, &meta, None, "invalid_token", err).await),
                };
                // The token's roles claim is not trusted here: the store decides, every time.
                let user = state.edge.stores.users.get_user(&session.user_id).await?;
                let is_admin = user.is_some_and(|u| !u.disabled && u.roles.contains(&Role::Admin));
                if !is_admin {
                    let uid = session.user_id;
                    return Err(
                        refuse(state, &meta, Some(&uid), "not_admin", admin_required()).await,
                    );
                }
                AdminIdentity::User(session.user_id)
            }
        };
        limits.enforce(Limit::Admin, &identity.label()).await?;
        Ok(Self { identity, meta })
    }
}

impl Admin {
    /// Audits an admin action on `target` (the admin's own id when there is no target).
    pub(crate) async fn audit(
        &self,
        state: &AuthState,
        kind: AuditKind,
        target: Option<&UserId>,
        extra: Option<&str>,
    ) -> Result<(), ApiError> {
        let mut detail = format!("by={}", self.identity.label());
        if let Some(extra) = extra {
            detail.push(' ');
            detail.push_str(extra);
        }
        let subject = match (target, &self.identity) {
            (Some(t), _) => Some(t.clone()),
            (None, AdminIdentity::User(id)) => Some(id.clone()),
            (None, AdminIdentity::Key(_)) => None,
        };
        record(
            state,
            &self.meta,
            kind,
            Outcome::Success,
            subject.as_ref(),
            Some(&detail),
        )
        .await
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    #[serde(default)]
    user_id: Option<String>,
    /// A UTC day, `YYYY-MM-DD`.
    #[serde(default)]
    #[param(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    day: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    #[schema(value_type = Vec<Object>)]
    events: Vec<AuditEvent>,
    next_cursor: Option<String>,
}

/// `YYYY-MM-DD` to the first second of that UTC day.
fn parse_day(raw: &str) -> Result<Timestamp, ApiError> {
    let bad = || ApiError::invalid("invalid_day", "day must be a date like 2026-11-29");
    let mut parts = raw.splitn(3, '-');
    let mut next = |len: usize| {
        parts
            .next()
            .filter(|p| p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<i32>().ok())
    };
    let (y, m, d) = (next(4), next(2), next(2));
    let (Some(y), Some(m), Some(d)) = (y, m, d) else {
        return Err(bad());
    };
    let month = u8::try_from(m)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or_else(bad)?;
    let day = u8::try_from(d).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(y, month, day).map_err(|_| bad())?;
    Ok(Timestamp(date.midnight().assume_utc().unix_timestamp()))
}

#[utoipa::path(
    get, path = "/admin/audit", tag = "admin", operation_id = "admin_audit", security(("admin_key" = []), ("bearer_jwt" = [])),
    params(AuditQuery),
    responses((status = 200, description = "A page of audit events, newest first.", body = AuditPage),
        (status = 400, description = "`invalid_day`, `invalid_cursor`, `invalid_id` (user_id), `invalid_request` (give exactly one of user_id and day)."), (status = 401, description = "`unauthorized`, `invalid_admin_key`: no credential or an unknown admin key."), (status = 403, description = "`admin_required`: the signed-in user is not an administrator."))
)]
pub async fn audit(
    State(state): State<AuthState>,
    admin: Admin,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let stores = &state.edge.stores;
    let now = state.edge.clock.now();
    let cursor = q.cursor.as_deref();
    let bad_cursor =
        || ApiError::invalid("invalid_cursor", "cursor is not one this listing returned");
    let (page, what) = match (q.user_id.as_deref(), q.day.as_deref()) {
        (Some(user), None) => {
            let user = UserId::parse(user)?;
            let page = stores
                .audit
                .list_for_user(&user, cursor, AUDIT_PAGE, now)
                .await?
                .ok_or_else(bad_cursor)?;
            (page, format!("user={user}"))
        }
        (None, Some(day)) => {
            let start = parse_day(day)?;
            let page = stores
                .audit_days
                .list_for_day(start, cursor, AUDIT_PAGE, now)
                .await?
                .ok_or_else(bad_cursor)?;
            (page, format!("day={day}"))
        }
        _ => {
            return Err(ApiError::invalid(
                "invalid_request",
                "give exactly one of user_id and day",
            ));
        }
    };
    admin
        .audit(&state, AuditKind::AdminAuditViewed, None, Some(&what))
        .await?;
    Ok(Json(AuditPage {
        events: page.items,
        next_cursor: page.next_cursor,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AdminUserView {
    id: String,
    email: String,
    display_name: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(value_type = Vec<crate::dto::RoleName>)]
    roles: Vec<&'static str>,
    disabled: bool,
    has_password: bool,
    email_verified: bool,
    /// The second factor (on `GET /admin/users/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    mfa: Option<crate::dto::MfaView>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AdminUserResponse {
    user: AdminUserView,
}

pub(crate) async fn target(
    state: &AuthState,
    id: &str,
) -> Result<bastion_store::UserRecord, ApiError> {
    let id = UserId::parse(id).map_err(|_| ApiError::not_found())?;
    state
        .edge
        .stores
        .users
        .get_user(&id)
        .await?
        .ok_or_else(ApiError::not_found)
}

fn view(u: &bastion_store::UserRecord) -> AdminUserResponse {
    AdminUserResponse {
        user: AdminUserView {
            id: u.id.to_string(),
            email: u.email.to_string(),
            display_name: u.display_name.as_ref().map(|d| d.as_str().to_owned()),
            created_at: u.created_at.to_rfc3339(),
            roles: u.roles.iter().map(|r| r.as_str()).collect(),
            disabled: u.disabled,
            has_password: !u.password_hash.is_empty(),
            email_verified: u.email_verified,
            mfa: None,
        },
    }
}

#[utoipa::path(
    get, path = "/admin/users/{id}", tag = "admin", operation_id = "admin_user", security(("admin_key" = []), ("bearer_jwt" = [])), params(("id" = String, Path, description = "User id.")),
    responses((status = 200, description = "The user, with `email_verified` and `mfa`.", body = AdminUserResponse), (status = 401, description = "`unauthorized`, `invalid_admin_key`: no credential or an unknown admin key."), (status = 403, description = "`admin_required`: the signed-in user is not an administrator."),
        (status = 404, description = "`not_found`."))
)]
pub async fn user(
    State(state): State<AuthState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<AdminUserResponse>, ApiError> {
    let u = target(&state, &id).await?;
    let totp = state.edge.stores.mfa.get_totp(&u.id).await?;
    admin
        .audit(&state, AuditKind::AdminUserViewed, Some(&u.id), None)
        .await?;
    let mut shown = view(&u);
    shown.user.mfa = Some(crate::dto::MfaView::of(totp.as_ref()));
    Ok(Json(shown))
}

#[utoipa::path(
    post, path = "/admin/users/{id}/disable", tag = "admin", operation_id = "admin_disable", security(("admin_key" = []), ("bearer_jwt" = [])), params(("id" = String, Path, description = "User id.")),
    responses((status = 204, description = "The account is disabled and its sessions revoked."), (status = 401, description = "`unauthorized`, `invalid_admin_key`: no credential or an unknown admin key."), (status = 403, description = "`admin_required`: the signed-in user is not an administrator."),
        (status = 404, description = "`not_found`."))
)]
pub async fn disable(
    State(state): State<AuthState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let u = target(&state, &id).await?;
    let stores = &state.edge.stores;
    if !stores.accounts.set_disabled(&u.id, true).await? {
        return Err(ApiError::not_found());
    }
    // Access tokens die with their sessions; API keys go too, so nothing outlives the disable.
    let sessions = stores.sessions.revoke_all_sessions(&u.id, None).await?;
    let keys = stores.api_keys.revoke_all_api_keys(&u.id).await?;
    let extra = format!("sessions_revoked={sessions} api_keys_revoked={keys}");
    admin
        .audit(
            &state,
            AuditKind::AdminUserDisabled,
            Some(&u.id),
            Some(&extra),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post, path = "/admin/users/{id}/enable", tag = "admin", operation_id = "admin_enable", security(("admin_key" = []), ("bearer_jwt" = [])), params(("id" = String, Path, description = "User id.")),
    responses((status = 204, description = "The account is enabled."), (status = 401, description = "`unauthorized`, `invalid_admin_key`: no credential or an unknown admin key."), (status = 403, description = "`admin_required`: the signed-in user is not an administrator."),
        (status = 404, description = "`not_found`."))
)]
pub async fn enable(
    State(state): State<AuthState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let u = target(&state, &id).await?;
    if !state
        .edge
        .stores
        .accounts
        .set_disabled(&u.id, false)
        .await?
    {
        return Err(ApiError::not_found());
    }
    admin
        .audit(&state, AuditKind::AdminUserEnabled, Some(&u.id), None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post, path = "/admin/users/{id}/revoke-sessions", tag = "admin", operation_id = "admin_revoke_sessions", security(("admin_key" = []), ("bearer_jwt" = [])), params(("id" = String, Path, description = "User id.")),
    responses((status = 204, description = "Every session of the user is revoked."), (status = 401, description = "`unauthorized`, `invalid_admin_key`: no credential or an unknown admin key."), (status = 403, description = "`admin_required`: the signed-in user is not an administrator."),
        (status = 404, description = "`not_found`."))
)]
pub async fn revoke_sessions(
    State(state): State<AuthState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let u = target(&state, &id).await?;
    let n = state
        .edge
        .stores
        .sessions
        .revoke_all_sessions(&u.id, None)
        .await?;
    let extra = format!("sessions_revoked={n}");
    admin
        .audit(
            &state,
            AuditKind::AdminSessionsRevoked,
            Some(&u.id),
            Some(&extra),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesRequest {
    /// 1 or 2 distinct roles (a repeat is refused with `invalid_role`).
    #[schema(value_type = Vec<crate::dto::RoleName>, min_items = 1, max_items = 2)]
    roles: Vec<String>,
}

#[utoipa::path(
    put, path = "/admin/users/{id}/roles", tag = "admin", operation_id = "admin_set_roles", security(("admin_key" = []), ("bearer_jwt" = [])), params(("id" = String, Path, description = "User id.")),
    request_body = RolesRequest,
    responses((status = 200, description = "The user with the new roles.", body = AdminUserResponse),
        (status = 400, description = "`invalid_role`, `invalid_request`."), (status = 401, description = "`unauthorized`, `invalid_admin_key`: no credential or an unknown admin key."), (status = 403, description = "`admin_required`: the signed-in user is not an administrator."),
        (status = 404, description = "`not_found`."))
)]
pub async fn set_roles(
    State(state): State<AuthState>,
    admin: Admin,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RolesRequest>,
) -> Result<Json<AdminUserResponse>, ApiError> {
    let u = target(&state, &id).await?;
    if body.roles.is_empty() || body.roles.len() > 2 {
        return Err(ApiError::invalid(
            "invalid_role",
            "roles must name 1 or 2 of user, admin",
        ));
    }
    let mut roles: Vec<Role> = Vec::new();
    for r in &body.roles {
        let role = Role::parse(r)?;
        if roles.contains(&role) {
            return Err(ApiError::invalid("invalid_role", "a role is repeated"));
        }
        roles.push(role);
    }
    if !state.edge.stores.accounts.set_roles(&u.id, &roles).await? {
        return Err(ApiError::not_found());
    }
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    let extra = format!("roles={}", names.join(","));
    admin
        .audit(
            &state,
            AuditKind::AdminRolesChanged,
            Some(&u.id),
            Some(&extra),
        )
        .await?;
    Ok(Json(view(&bastion_store::UserRecord { roles, ..u })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_parse_to_their_first_utc_second_and_nothing_else_parses() {
        assert_eq!(
            parse_day("2027-01-15").unwrap(),
            Timestamp(1_800_000_000 - 8 * 3600)
        );
        assert_eq!(parse_day("2028-02-29").unwrap().day(), "2028-02-29");
        for bad in [
            "",
            "2027-1-15",
            "2027-02-30",
            "2027-13-01",
            "27-01-15",
            "2027-01-15x",
            "2027/01/15",
        ] {
            assert!(parse_day(bad).is_err(), "{bad}");
        }
    }
}

#[utoipa::path(
    delete, path = "/admin/users/{id}/mfa", tag = "admin", operation_id = "admin_reset_mfa", security(("admin_key" = []), ("bearer_jwt" = [])), params(("id" = String, Path, description = "User id.")),
    responses((status = 204, description = "The user's second factor and recovery codes are removed (audited); the next sign-in asks for the password only."), (status = 401, description = "`unauthorized`, `invalid_admin_key`: no credential or an unknown admin key."), (status = 403, description = "`admin_required`: the signed-in user is not an administrator."),
        (status = 404, description = "`not_found`."), (status = 409, description = "`mfa_not_enabled`: the user has no second factor."))
)]
pub async fn reset_mfa(
    State(state): State<AuthState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let u = target(&state, &id).await?;
    if !state.edge.stores.mfa.delete_totp(&u.id).await? {
        return Err(
            ApiError::new(ErrorKind::Conflict, "the user has no second factor")
                .with_code("mfa_not_enabled"),
        );
    }
    admin
        .audit(&state, AuditKind::AdminMfaReset, Some(&u.id), None)
        .await?;
    let notice = crate::mail::Notice::MfaRemovedByAdmin;
    crate::mail::notify(&state, &admin.meta, &u.email, notice).await;
    Ok(StatusCode::NO_CONTENT)
}
