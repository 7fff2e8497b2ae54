//! The auth function's part of the OpenAPI document: its routes, described beside each handler.

use utoipa::OpenApi;

use crate::{
    account, admin, api_keys, email_verify, google, login, mfa, mfa_verify, recovery, refresh,
    sessions,
};

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
    google::flow::reauth,
    api_keys::create,
    api_keys::list,
    api_keys::revoke,
    admin::audit,
    admin::user,
    admin::disable,
    admin::enable,
    admin::revoke_sessions,
    admin::set_roles,
    admin::reset_mfa,
    recovery::forgot,
    recovery::reset,
    email_verify::send,
    email_verify::verify,
    mfa::enroll,
    mfa::confirm,
    mfa::disable,
    mfa_verify::verify,
))]
pub struct AuthApi;
