//! The auth function's part of the OpenAPI document: its routes (described beside each
//! handler) and the names its string enums accept.

use utoipa::{OpenApi, ToSchema};

use crate::{account, admin, api_keys, google, login, refresh, sessions};

/// A scope an API key may carry (`bastion_core::Scope`).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // only its schema is used
pub enum ScopeName {
    Chat,
    Exec,
    Read,
}

/// A role a user may hold (`bastion_core::Role`).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // only its schema is used
pub enum RoleName {
    User,
    Admin,
}

/// Every auth and admin route.
#[derive(OpenApi)]
#[openapi(paths(
    crate::health,
    login::register,
    login::login,
    refresh::refresh,
    sessions::logout,
    sessions::logout_all,
    sessions::list,
    sessions::revoke,
    account::me,
    account::change_password,
    account::delete_account,
    google::account::set_password,
    google::account::unlink,
    google::flow::start,
    google::flow::callback,
    google::flow::exchange,
    google::flow::link,
    api_keys::create,
    api_keys::list,
    api_keys::revoke,
    admin::audit,
    admin::user,
    admin::disable,
    admin::enable,
    admin::revoke_sessions,
    admin::set_roles,
))]
pub struct AuthApi;
