//! Admin access: admin keys from configuration (none configured admits nobody), users whose
//! `admin` role is re-read on every request, each admin route, and the audit trail.

use http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, TestResponse, base_env};

const KEY: &str = "adm_Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1hZG1pbi1r";

fn key_hash(key: &str) -> String {
    hex::encode(bastion_core::crypto::sha256(key.as_bytes()))
}

async fn admin_app() -> TestApp {
    let mut env = base_env();
    env.insert("ADMIN_KEYS".to_owned(), format!("ops:{}", key_hash(KEY)));
    TestApp::builder().env(env).build().await
}

async fn as_admin(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> TestResponse {
    app.call(method, path, Some(KEY), body).await
}

const NOT_RECOGNISED: &str = "admin key is not recognised";
const NEEDS_ADMIN: &str = "this route needs an administrator";

#[tokio::test]
async fn without_admin_keys_configured_no_key_is_admitted_and_the_attempt_is_audited() {
    let app = TestApp::new().await;
    let victim = app.signed_up("nobody-admin@example.com").await;
    let path = format!("/admin/users/{}", victim.user_id);
    app.get(&path, KEY)
        .await
        .assert_error(401, "invalid_admin_key", NOT_RECOGNISED);
    app.get(&path, "adm_")
        .await
        .assert_error(401, "invalid_admin_key", NOT_RECOGNISED);
    app.call(Method::GET, &path, None, None).await.assert_error(
        401,
        "unauthorized",
        "missing bearer token",
    );
    let page = app
        .stores
        .audit_days
        .list_for_day(crate::helpers::START, None, 10, crate::helpers::START)
        .await
        .unwrap()
        .unwrap();
    let failures: Vec<_> = page
        .items
        .iter()
        .filter(|e| e.kind.as_str() == "admin_auth_failed")
        .map(|e| e.detail.clone().unwrap())
        .collect();
    assert_eq!(
        failures,
        vec![
            "missing_credentials",
            "unknown_admin_key",
            "unknown_admin_key"
        ]
    );
}

#[tokio::test]
async fn a_wrong_admin_key_is_refused_and_the_right_one_admitted() {
    let app = admin_app().await;
    let u = app.signed_up("target@example.com").await;
    let path = format!("/admin/users/{}", u.user_id);
    let wrong = format!("{}A", &KEY[..KEY.len() - 1]);
    app.get(&path, &wrong)
        .await
        .assert_error(401, "invalid_admin_key", NOT_RECOGNISED);
    let r = app.get(&path, KEY).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"user": {
            "id": u.user_id, "email": "target@example.com", "display_name": null,
            "created_at": "2027-01-15T08:00:00Z", "roles": ["user"], "disabled": false,
            "has_password": true, "email_verified": false,
            "mfa": {"totp": false, "recovery_codes_left": 0},
        }})
    );
}

#[tokio::test]
async fn a_user_without_the_admin_role_gets_403_and_an_audit_entry() {
    let app = admin_app().await;
    let u = app.signed_up("plain@example.com").await;
    app.get(&format!("/admin/users/{}", u.user_id), &u.access)
        .await
        .assert_error(403, "admin_required", NEEDS_ADMIN);
    assert_eq!(app.audit_kinds(&u.user_id).await[0], "admin_auth_failed");
}

#[tokio::test]
async fn a_role_revoked_mid_session_takes_effect_on_the_next_request() {
    let app = admin_app().await;
    let boss = app.signed_up("boss@example.com").await;
    let other = app.signed_up("other@example.com").await;
    let roles = format!("/admin/users/{}/roles", boss.user_id);
    let r = as_admin(
        &app,
        Method::PUT,
        &roles,
        Some(json!({"roles": ["user", "admin"]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["user"]["roles"], json!(["user", "admin"]));

    // The access token was minted before the promotion: the store decides, not the token.
    let path = format!("/admin/users/{}", other.user_id);
    assert_eq!(app.get(&path, &boss.access).await.status, StatusCode::OK);
    let r = as_admin(&app, Method::PUT, &roles, Some(json!({"roles": ["user"]}))).await;
    assert_eq!(r.status, StatusCode::OK);
    app.get(&path, &boss.access)
        .await
        .assert_error(403, "admin_required", NEEDS_ADMIN);
}

#[tokio::test]
async fn an_admin_users_api_key_does_not_open_admin_routes() {
    let app = admin_app().await;
    let boss = app.signed_up("keyboss@example.com").await;
    as_admin(
        &app,
        Method::PUT,
        &format!("/admin/users/{}/roles", boss.user_id),
        Some(json!({"roles": ["admin", "user"]})),
    )
    .await;
    let r = app
        .call(
            Method::POST,
            "/auth/api-keys",
            Some(&boss.access),
            Some(json!({"name": "k", "scopes": ["read"], "expires_in_days": 1})),
        )
        .await;
    let key = r.body["key"].as_str().unwrap();
    app.get(&format!("/admin/users/{}", boss.user_id), key)
        .await
        .assert_error(
            403,
            "session_required",
            "this route needs a signed-in session, not an API key",
        );
}

#[tokio::test]
async fn disabling_revokes_sessions_and_keys_and_blocks_login_and_refresh_until_enabled() {
    let app = admin_app().await;
    let u = app.signed_up("disable-me@example.com").await;
    let r = app
        .call(
            Method::POST,
            "/auth/api-keys",
            Some(&u.access),
            Some(json!({"name": "k", "scopes": ["read"], "expires_in_days": 1})),
        )
        .await;
    let key = r.body["key"].as_str().unwrap().to_owned();
    let r = as_admin(
        &app,
        Method::POST,
        &format!("/admin/users/{}/disable", u.user_id),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);

    app.get("/auth/me", &u.access).await.assert_error(
        401,
        "unauthorized",
        "session has been revoked or has expired",
    );
    app.get("/auth/me", &key).await.assert_error(
        401,
        "invalid_api_key",
        "API key is invalid, revoked or expired",
    );
    app.refresh(&u.refresh).await.assert_error(
        401,
        "invalid_refresh_token",
        "refresh token is invalid or expired",
    );
    app.login("disable-me@example.com", PASSWORD)
        .await
        .assert_error(401, "invalid_credentials", "email or password is incorrect");
    let view = as_admin(
        &app,
        Method::GET,
        &format!("/admin/users/{}", u.user_id),
        None,
    )
    .await;
    assert_eq!(view.body["user"]["disabled"], json!(true));

    let r = as_admin(
        &app,
        Method::POST,
        &format!("/admin/users/{}/enable", u.user_id),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.login("disable-me@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
    let kinds = app.audit_kinds(&u.user_id).await;
    assert_eq!(
        &kinds[..4],
        &[
            "login_succeeded",
            "admin_user_enabled",
            "admin_user_viewed",
            "login_failed"
        ]
    );
    assert!(kinds.contains(&"admin_user_disabled".to_owned()));
}

#[tokio::test]
async fn revoke_sessions_kills_every_session_of_the_user() {
    let app = admin_app().await;
    let u = app.signed_up("revoke-all@example.com").await;
    let second = app.signed_in("revoke-all@example.com").await;
    let r = as_admin(
        &app,
        Method::POST,
        &format!("/admin/users/{}/revoke-sessions", u.user_id),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    for s in [&u, &second] {
        assert_eq!(
            app.get("/auth/me", &s.access).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn roles_must_be_known_and_unknown_users_are_404() {
    let app = admin_app().await;
    let u = app.signed_up("roles@example.com").await;
    let path = format!("/admin/users/{}/roles", u.user_id);
    as_admin(&app, Method::PUT, &path, Some(json!({"roles": ["root"]})))
        .await
        .assert_error(400, "invalid_role", "role must be user or admin");
    as_admin(&app, Method::PUT, &path, Some(json!({"roles": []})))
        .await
        .assert_error(400, "invalid_role", "roles must name 1 or 2 of user, admin");
    let ghost = "0123456789abcdef0123456789abcdef";
    for (method, path) in [
        (Method::GET, format!("/admin/users/{ghost}")),
        (Method::POST, format!("/admin/users/{ghost}/disable")),
        (Method::POST, "/admin/users/not-an-id/enable".to_owned()),
    ] {
        as_admin(&app, method, &path, None).await.assert_error(
            404,
            "not_found",
            "no such resource",
        );
    }
}

#[tokio::test]
async fn the_audit_listing_pages_by_user_and_by_day_and_records_the_admin() {
    let app = admin_app().await;
    let u = app.signed_up("audited@example.com").await;
    as_admin(
        &app,
        Method::POST,
        &format!("/admin/users/{}/revoke-sessions", u.user_id),
        None,
    )
    .await;
    let r = as_admin(
        &app,
        Method::GET,
        &format!("/admin/audit?user_id={}", u.user_id),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let events = r.body["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["admin_sessions_revoked", "register"]);
    assert_eq!(events[0]["detail"], json!("by=key:ops sessions_revoked=1"));
    assert_eq!(r.body["next_cursor"], json!(null));

    let r = as_admin(&app, Method::GET, "/admin/audit?day=2027-01-15", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let kinds: Vec<&str> = r.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    // The listing of the user above was itself audited, newest first.
    assert_eq!(
        kinds,
        vec!["admin_audit_viewed", "admin_sessions_revoked", "register"]
    );
    let r = as_admin(&app, Method::GET, "/admin/audit?day=2027-01-16", None).await;
    assert_eq!(r.body["events"].as_array().unwrap().len(), 0);

    as_admin(&app, Method::GET, "/admin/audit?day=2027-13-01", None)
        .await
        .assert_error(400, "invalid_day", "day must be a date like 2026-11-29");
    as_admin(&app, Method::GET, "/admin/audit", None)
        .await
        .assert_error(
            400,
            "invalid_request",
            "give exactly one of user_id and day",
        );
    as_admin(
        &app,
        Method::GET,
        "/admin/audit?day=2027-01-15&cursor=zzz",
        None,
    )
    .await
    .assert_error(
        400,
        "invalid_cursor",
        "cursor is not one this listing returned",
    );
}

#[tokio::test]
async fn admin_routes_allow_thirty_requests_a_minute_per_admin() {
    let app = admin_app().await;
    let u = app.signed_up("limited@example.com").await;
    let path = format!("/admin/users/{}", u.user_id);
    for _ in 0..30 {
        assert_eq!(app.get(&path, KEY).await.status, StatusCode::OK);
    }
    let r = app.get(&path, KEY).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.code(), "rate_limited");
}
