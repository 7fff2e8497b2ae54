//! Login, refresh rotation and reuse, logout, sessions and the auth rate limits.

use http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, subjects_and_details};

#[tokio::test]
async fn login_returns_200_with_the_token_shape() {
    let app = TestApp::new().await;
    let s = app.signed_up("Login@Example.com").await;
    let r = app.login("  login@example.COM ", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["user"]["id"], json!(s.user_id));
    assert_eq!(r.body["user"]["email"], json!("login@example.com"));
    assert_eq!(r.body["token_type"], json!("Bearer"));
    assert_eq!(r.body["expires_in"], json!(900));
    assert_eq!(r.body["refresh_token"].as_str().unwrap().len(), 43);
    assert_eq!(
        app.audit_kinds(&s.user_id).await,
        vec!["login_succeeded", "register"]
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_401() {
    let app = TestApp::new().await;
    let s = app.signed_up("known@example.com").await;
    let wrong = app
        .login("known@example.com", "not the right password")
        .await;
    let unknown = app
        .login("nobody@example.com", "not the right password")
        .await;
    wrong.assert_error(401, "invalid_credentials", "email or password is incorrect");
    unknown.assert_error(401, "invalid_credentials", "email or password is incorrect");
    assert_eq!(
        app.audit_kinds(&s.user_id).await,
        vec!["login_failed", "register"]
    );
}

#[tokio::test]
async fn login_returns_429_after_five_failures_for_one_account() {
    let app = TestApp::new().await;
    let s = app.signed_up("target@example.com").await;
    for i in 0..5 {
        // Each attempt from a different address: the account limit holds regardless.
        let r = app
            .seen_from(&format!("198.51.100.{i}"))
            .login("target@example.com", "wrong password!")
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = app
        .seen_from("198.51.100.77")
        .login("target@example.com", PASSWORD)
        .await;
    r.assert_error(429, "rate_limited", "too many requests; retry later");
    assert_eq!(r.header("retry-after"), Some("80"));
    assert_eq!(r.header("ratelimit-limit"), Some("5"));
    assert_eq!(r.header("ratelimit-remaining"), Some("0"));
    assert_eq!(app.audit_kinds(&s.user_id).await[0], "login_rate_limited");
    app.clock.advance(80);
    assert_eq!(
        app.login("target@example.com", PASSWORD).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn login_returns_429_after_twenty_attempts_from_one_ip() {
    let app = TestApp::new().await;
    for i in 0..20 {
        let r = app
            .login(&format!("user{i}@example.com"), "whatever pass")
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let r = app.login("user21@example.com", "whatever pass").await;
    r.assert_error(429, "rate_limited", "too many requests; retry later");
    assert_eq!(
        app.seen_from("192.0.2.1")
            .login("user21@example.com", "whatever pass")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn refresh_rotates_and_the_old_token_dies() {
    let app = TestApp::new().await;
    let s = app.signed_up("rot@example.com").await;
    let r = app.refresh(&s.refresh).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let next = r.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(next, s.refresh);
    assert_eq!(
        app.get("/auth/me", r.body["access_token"].as_str().unwrap())
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(app.audit_kinds(&s.user_id).await[0], "refresh_rotated");
}

#[tokio::test]
async fn reused_refresh_token_revokes_the_whole_session() {
    let app = TestApp::new().await;
    let s = app.signed_up("reuse@example.com").await;
    let rotated = app.refresh(&s.refresh).await;
    let next = rotated.body["refresh_token"].as_str().unwrap().to_owned();
    let next_access = rotated.body["access_token"].as_str().unwrap().to_owned();

    app.refresh(&s.refresh).await.assert_error(
        401,
        "refresh_token_reused",
        "refresh token was already used; the session has been revoked",
    );
    app.refresh(&next).await.assert_error(
        401,
        "invalid_refresh_token",
        "refresh token is invalid or expired",
    );
    app.get("/auth/me", &next_access).await.assert_error(
        401,
        "unauthorized",
        "session has been revoked or has expired",
    );
    assert_eq!(
        app.audit_kinds(&s.user_id).await[..2],
        ["refresh_refused", "refresh_reuse_detected"]
    );
}

#[tokio::test]
async fn malformed_or_unknown_refresh_tokens_return_401() {
    let app = TestApp::new().await;
    for token in ["", "short", &"A".repeat(43), &"x".repeat(5000)] {
        app.refresh(token).await.assert_error(
            401,
            "invalid_refresh_token",
            "refresh token is invalid or expired",
        );
    }
}

#[tokio::test]
async fn logout_kills_both_tokens_of_the_session_at_once() {
    let app = TestApp::new().await;
    let s = app.signed_up("out@example.com").await;
    let r = app
        .call(Method::POST, "/auth/logout", Some(&s.access), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.text, "");
    app.get("/auth/me", &s.access).await.assert_error(
        401,
        "unauthorized",
        "session has been revoked or has expired",
    );
    app.refresh(&s.refresh).await.assert_error(
        401,
        "invalid_refresh_token",
        "refresh token is invalid or expired",
    );
    assert_eq!(
        app.audit_kinds(&s.user_id).await[..2],
        ["refresh_refused", "logout"]
    );
}

#[tokio::test]
async fn logout_all_kills_every_session() {
    let app = TestApp::new().await;
    let a = app.signed_up("all@example.com").await;
    let b = app.signed_in("all@example.com").await;
    let r = app
        .call(Method::POST, "/auth/logout-all", Some(&b.access), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    for token in [&a.access, &b.access] {
        assert_eq!(
            app.get("/auth/me", token).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    for token in [&a.refresh, &b.refresh] {
        assert_eq!(app.refresh(token).await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        app.audit_kinds(&a.user_id).await[..3],
        ["refresh_refused", "refresh_refused", "logout_all"]
    );
}

#[tokio::test]
async fn sessions_lists_own_sessions_with_the_current_one_marked() {
    let app = TestApp::new().await;
    let _first = app.signed_up("list@example.com").await;
    app.clock.advance(10);
    let second = app
        .seen_from("192.0.2.55")
        .signed_in("list@example.com")
        .await;
    let r = app.get("/auth/sessions", &second.access).await;
    assert_eq!(r.status, StatusCode::OK);
    let sessions = r.body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0]["current"], json!(true));
    assert_eq!(sessions[0]["ip"], json!("192.0.2.55"));
    assert_eq!(sessions[0]["user_agent"], json!("bastion-tests/1.0"));
    assert_eq!(sessions[0]["created_at"], json!("2027-01-15T08:00:10Z"));
    assert_eq!(sessions[1]["current"], json!(false));
    assert_eq!(sessions[1]["ip"], json!("203.0.113.7"));
}

#[tokio::test]
async fn revoking_another_users_session_returns_404_and_changes_nothing() {
    let app = TestApp::new().await;
    let alice = app.signed_up("alice@example.com").await;
    let bob = app.signed_up("bob@example.com").await;
    let alice_sid = app.get("/auth/sessions", &alice.access).await.body["sessions"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .call(
            Method::DELETE,
            &format!("/auth/sessions/{alice_sid}"),
            Some(&bob.access),
            None,
        )
        .await;
    r.assert_error(404, "not_found", "no such resource");
    assert_eq!(
        app.get("/auth/me", &alice.access).await.status,
        StatusCode::OK
    );
    let r = app
        .call(
            Method::DELETE,
            "/auth/sessions/not-an-id",
            Some(&bob.access),
            None,
        )
        .await;
    r.assert_error(404, "not_found", "no such resource");
}

#[tokio::test]
async fn revoking_own_other_session_returns_204_and_kills_it() {
    let app = TestApp::new().await;
    let a = app.signed_up("own@example.com").await;
    let b = app.signed_in("own@example.com").await;
    let sessions = app.get("/auth/sessions", &b.access).await.body["sessions"].clone();
    let other = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == json!(false))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .call(
            Method::DELETE,
            &format!("/auth/sessions/{other}"),
            Some(&b.access),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/auth/me", &a.access).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.get("/auth/me", &b.access).await.status, StatusCode::OK);
    assert_eq!(app.audit_kinds(&a.user_id).await[0], "session_revoked");
}

#[tokio::test]
async fn refresh_is_refused_after_the_idle_timeout() {
    let app = TestApp::new().await;
    let s = app.signed_up("idle@example.com").await;
    app.clock.advance(7 * 24 * 3600 + 1);
    app.refresh(&s.refresh).await.assert_error(
        401,
        "invalid_refresh_token",
        "refresh token is invalid or expired",
    );
    assert_eq!(
        subjects_and_details(&app.audit_of_kind("refresh_refused").await),
        vec![(Some(s.user_id.clone()), Some("idle_expired".to_owned()))]
    );
}

#[tokio::test]
async fn refresh_is_refused_after_the_absolute_lifetime_however_active() {
    let app = TestApp::new().await;
    let s = app.signed_up("abs@example.com").await;
    let mut token = s.refresh;
    for _ in 0..4 {
        app.clock.advance(6 * 24 * 3600);
        let r = app.refresh(&token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        token = r.body["refresh_token"].as_str().unwrap().to_owned();
    }
    app.clock.advance(6 * 24 * 3600 + 1);
    app.refresh(&token).await.assert_error(
        401,
        "invalid_refresh_token",
        "refresh token is invalid or expired",
    );
    // The refresh lookup expires with the session, so the owner is no longer known.
    assert_eq!(
        subjects_and_details(&app.audit_of_kind("refresh_refused").await),
        vec![(None, Some("unknown_or_expired".to_owned()))]
    );
}

#[tokio::test]
async fn refused_refreshes_are_audited_with_the_user_the_reason_and_the_request() {
    let app = TestApp::new().await;
    let gone = app.signed_up("gone@example.com").await;
    let r = app
        .call(Method::POST, "/auth/logout", Some(&gone.access), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let refused = app.refresh(&gone.refresh).await;
    refused.assert_error(
        401,
        "invalid_refresh_token",
        "refresh token is invalid or expired",
    );

    let off = app.signed_up("off@example.com").await;
    let off_id = bastion_core::UserId::parse(&off.user_id).unwrap();
    assert!(
        app.stores
            .accounts
            .set_disabled(&off_id, true)
            .await
            .unwrap()
    );
    app.refresh(&off.refresh).await.assert_error(
        401,
        "invalid_refresh_token",
        "refresh token is invalid or expired",
    );

    app.refresh(&"A".repeat(43)).await.assert_error(
        401,
        "invalid_refresh_token",
        "refresh token is invalid or expired",
    );

    let events = app.audit_of_kind("refresh_refused").await;
    assert_eq!(
        subjects_and_details(&events),
        vec![
            (None, Some("unknown_or_expired".to_owned())),
            (Some(off.user_id.clone()), Some("user_disabled".to_owned())),
            (Some(gone.user_id.clone()), Some("session_gone".to_owned())),
        ]
    );
    let first = &events[2];
    assert_eq!(first.outcome, bastion_core::audit::Outcome::Failure);
    assert_eq!(first.ip, "203.0.113.7");
    assert_eq!(first.user_agent, "bastion-tests/1.0");
    assert_eq!(
        first.request_id.as_str(),
        refused.header("x-request-id").unwrap()
    );
}

#[tokio::test]
async fn an_access_token_minted_just_before_the_absolute_end_dies_with_the_session() {
    let app = TestApp::new().await;
    let s = app.signed_up("edge-of-life@example.com").await;
    let mut token = s.refresh;
    for _ in 0..4 {
        app.clock.advance(6 * 24 * 3600);
        let r = app.refresh(&token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        token = r.body["refresh_token"].as_str().unwrap().to_owned();
    }
    // 300 s before the 30-day end: a fresh access token, valid for 15 minutes on its own.
    app.clock.advance(6 * 24 * 3600 - 300);
    let r = app.refresh(&token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let access = r.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/auth/me", &access).await.status, StatusCode::OK);
    app.clock.advance(301);
    app.get("/auth/me", &access).await.assert_error(
        401,
        "unauthorized",
        "session has been revoked or has expired",
    );
}

#[tokio::test]
async fn refresh_returns_429_after_ten_per_minute_for_one_session() {
    let app = TestApp::new().await;
    let s = app.signed_up("spin@example.com").await;
    let mut token = s.refresh;
    for _ in 0..10 {
        let r = app.refresh(&token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        token = r.body["refresh_token"].as_str().unwrap().to_owned();
    }
    app.refresh(&token)
        .await
        .assert_error(429, "rate_limited", "too many requests; retry later");
}
