//! Google re-authentication bound to one action: the takeover a stolen fresh token of a
//! Google-only account used to achieve (a first password, then unlink or delete), the grant
//! that now stands in its way, and what binds that grant to one user, session and action.

use bastion_core::Clock as _;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Google, confirm, fragment, google_session, grant, start_reauth};
use crate::fake_google::RETURN_TO;
use crate::helpers::{PASSWORD, TestResponse, session_of};

const THIEFS_PASSWORD: &str = "the thief's own passphrase 31";
const FIRST_PASSWORD: &str = "the owner's first passphrase 64";
const INVALID_GRANT: &str = "the re-authentication grant is unknown, expired, already used, or for another action, account or session";

fn reauth_required(what: &str, action: &str) -> String {
    format!("re-authenticate with Google to {what} (POST /auth/google/reauth with action {action})")
}

async fn set_password(g: &Google, access: &str, body: Value) -> TestResponse {
    g.app
        .call(Method::POST, "/auth/password/set", Some(access), Some(body))
        .await
}

async fn unlink(g: &Google, access: &str, body: Value) -> TestResponse {
    g.app
        .call(
            Method::DELETE,
            "/auth/google/link",
            Some(access),
            Some(body),
        )
        .await
}

async fn delete_account(g: &Google, access: &str, body: Value) -> TestResponse {
    g.app
        .call(Method::DELETE, "/auth/account", Some(access), Some(body))
        .await
}

#[tokio::test]
async fn a_stolen_fresh_token_of_a_google_only_account_cannot_set_a_first_password() {
    let g = Google::new().await;
    let owner = google_session(&g, "g-owner", "owner@example.com").await;
    // Minutes after the owner signed in, the thief replays only the access token.
    g.app.clock.advance(60);
    set_password(&g, &owner.access, json!({"new_password": THIEFS_PASSWORD}))
        .await
        .assert_error(
            403,
            "reauthentication_required",
            &reauth_required("set a password", "set_password"),
        );
    // Refused on the owner's account, as a failed first password.
    assert_eq!(g.app.audit_kinds(&owner.user_id).await[0], "password_set");
    assert_eq!(
        g.last_event().await,
        (
            "password_set".to_owned(),
            Some("no_reauth_grant".to_owned())
        )
    );
    g.app
        .login("owner@example.com", THIEFS_PASSWORD)
        .await
        .assert_error(401, "invalid_credentials", "email or password is incorrect");
}

#[tokio::test]
async fn a_stolen_fresh_token_of_a_google_only_account_cannot_unlink_google_with_or_without_a_password()
 {
    let g = Google::new().await;
    let owner = google_session(&g, "g-owner", "owner@example.com").await;
    g.app.clock.advance(60);
    let refused = reauth_required("unlink Google", "unlink_google");
    for body in [json!({}), json!({"password": THIEFS_PASSWORD})] {
        unlink(&g, &owner.access, body).await.assert_error(
            403,
            "reauthentication_required",
            &refused,
        );
    }
    // Google still opens the owner's account.
    let again = google_session(&g, "g-owner", "owner@example.com").await;
    assert_eq!(again.user_id, owner.user_id);
}

#[tokio::test]
async fn a_stolen_fresh_token_of_a_google_only_account_cannot_delete_it() {
    let g = Google::new().await;
    let owner = google_session(&g, "g-owner", "owner@example.com").await;
    g.app.clock.advance(60);
    delete_account(&g, &owner.access, json!({}))
        .await
        .assert_error(
            403,
            "reauthentication_required",
            &reauth_required("delete the account", "delete_account"),
        );
    assert_eq!(
        g.app.get("/auth/me", &owner.access).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_reauthentication_asks_google_for_a_fresh_login_with_max_age_pkce_state_and_nonce() {
    let g = Google::new().await;
    let s = google_session(&g, "g-asks", "asks@example.com").await;
    let started = start_reauth(&g, &s.access, "set_password").await;
    let p = &started.params;
    assert_eq!(p["prompt"], "login");
    assert_eq!(p["max_age"], "300");
    assert_eq!(p["code_challenge_method"], "S256");
    assert_eq!(p["response_type"], "code");
    assert_eq!(p["scope"], "openid email profile");
    assert_eq!(started.state().len(), 43);
    assert_eq!(started.nonce().len(), 43);
    assert!(started.cookie.starts_with("__Host-bastion_oauth="));
    // A second sign-in is not started this way: the state is single use.
    let now = g.app.clock.now().0;
    let r = confirm(&g, &started, "g-asks", Some(now)).await;
    assert!(fragment(&r).starts_with("reauth="), "{}", fragment(&r));
    let r = g
        .callback("code-again", started.state(), Some(&started.cookie))
        .await;
    r.assert_error(
        400,
        "invalid_state",
        "sign-in state is unknown, expired, already used or from another browser",
    );
}

#[tokio::test]
async fn a_fresh_reauthentication_sets_the_first_password_and_ends_every_other_session_and_api_key()
{
    let g = Google::new().await;
    let other = google_session(&g, "g-first", "first@example.com").await;
    let current = google_session(&g, "g-first", "first@example.com").await;
    let key = g
        .app
        .call(
            Method::POST,
            "/auth/api-keys",
            Some(&other.access),
            Some(json!({"name": "laptop", "scopes": ["read"], "expires_in_days": 30})),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.text);
    let key = key.body["key"].as_str().unwrap().to_owned();
    // Past the old ten-minute rule: the grant, not the session's age, is what counts.
    g.app.clock.advance(601);
    let refreshed = session_of(&g.app.refresh(&current.refresh).await);
    let grant = grant(&g, &refreshed.access, "set_password", "g-first").await;
    let body = json!({"new_password": FIRST_PASSWORD, "reauth_grant": grant});
    let r = set_password(&g, &refreshed.access, body).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        g.last_event().await,
        (
            "password_set".to_owned(),
            Some("other_sessions_revoked=1 api_keys_revoked=1".to_owned())
        )
    );
    assert_eq!(
        g.app.get("/auth/me", &refreshed.access).await.status,
        StatusCode::OK
    );
    g.app.get("/auth/me", &other.access).await.assert_error(
        401,
        "unauthorized",
        "session has been revoked or has expired",
    );
    g.app.refresh(&other.refresh).await.assert_error(
        401,
        "invalid_refresh_token",
        "refresh token is invalid or expired",
    );
    g.app.get("/auth/me", &key).await.assert_error(
        401,
        "invalid_api_key",
        "API key is invalid, revoked or expired",
    );
    assert_eq!(
        g.app
            .login("first@example.com", FIRST_PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_fresh_reauthentication_unlinks_google_or_deletes_the_account() {
    let g = Google::new().await;
    let s = google_session(&g, "g-leaver", "leaver@example.com").await;
    let unlinking = grant(&g, &s.access, "unlink_google", "g-leaver").await;
    let r = unlink(&g, &s.access, json!({"reauth_grant": unlinking})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(g.last_event().await, ("google_unlinked".to_owned(), None));

    let d = google_session(&g, "g-deleter", "deleter@example.com").await;
    let deleting = grant(&g, &d.access, "delete_account", "g-deleter").await;
    let r = delete_account(&g, &d.access, json!({"reauth_grant": deleting})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    g.app.get("/auth/me", &d.access).await.assert_error(
        401,
        "unauthorized",
        "session has been revoked or has expired",
    );
}

#[tokio::test]
async fn a_grant_for_setting_a_password_neither_unlinks_nor_deletes_and_still_sets_the_password() {
    let g = Google::new().await;
    let s = google_session(&g, "g-bound", "bound@example.com").await;
    let grant = grant(&g, &s.access, "set_password", "g-bound").await;
    delete_account(&g, &s.access, json!({"reauth_grant": grant}))
        .await
        .assert_error(403, "invalid_reauth_grant", INVALID_GRANT);
    assert_eq!(
        g.last_event().await,
        (
            "account_deleted".to_owned(),
            Some("bad_reauth_grant".to_owned())
        )
    );
    unlink(&g, &s.access, json!({"reauth_grant": grant}))
        .await
        .assert_error(403, "invalid_reauth_grant", INVALID_GRANT);
    assert_eq!(
        g.app.get("/auth/me", &s.access).await.status,
        StatusCode::OK
    );
    let body = json!({"new_password": FIRST_PASSWORD, "reauth_grant": grant});
    let r = set_password(&g, &s.access, body).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
}

#[tokio::test]
async fn a_grant_works_only_for_the_user_and_the_session_that_started_it() {
    let g = Google::new().await;
    let alice = google_session(&g, "g-alice", "alice@example.com").await;
    let alice_elsewhere = google_session(&g, "g-alice", "alice@example.com").await;
    let bob = google_session(&g, "g-bob", "bob@example.com").await;
    let alices = grant(&g, &alice.access, "set_password", "g-alice").await;
    let body = json!({"new_password": THIEFS_PASSWORD, "reauth_grant": alices});
    set_password(&g, &bob.access, body.clone())
        .await
        .assert_error(403, "invalid_reauth_grant", INVALID_GRANT);
    assert_eq!(
        g.last_event().await,
        (
            "password_set".to_owned(),
            Some("reauth_grant_of_another_user".to_owned())
        )
    );
    let again = grant(&g, &alice.access, "set_password", "g-alice").await;
    let body = json!({"new_password": THIEFS_PASSWORD, "reauth_grant": again});
    set_password(&g, &alice_elsewhere.access, body)
        .await
        .assert_error(403, "invalid_reauth_grant", INVALID_GRANT);
    assert_eq!(
        g.last_event().await,
        (
            "password_set".to_owned(),
            Some("reauth_grant_of_another_session".to_owned())
        )
    );
    for email in ["alice@example.com", "bob@example.com"] {
        g.app.login(email, THIEFS_PASSWORD).await.assert_error(
            401,
            "invalid_credentials",
            "email or password is incorrect",
        );
    }
}

#[tokio::test]
async fn a_grant_works_once_and_for_five_minutes() {
    let g = Google::new().await;
    let s = google_session(&g, "g-once", "once@example.com").await;
    let grant_once = grant(&g, &s.access, "unlink_google", "g-once").await;
    let r = unlink(&g, &s.access, json!({"reauth_grant": grant_once})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    unlink(&g, &s.access, json!({"reauth_grant": grant_once}))
        .await
        .assert_error(403, "invalid_reauth_grant", INVALID_GRANT);

    let t = google_session(&g, "g-late", "late@example.com").await;
    let late = grant(&g, &t.access, "delete_account", "g-late").await;
    g.app.clock.advance(301);
    delete_account(&g, &t.access, json!({"reauth_grant": late}))
        .await
        .assert_error(403, "invalid_reauth_grant", INVALID_GRANT);
    for junk in ["", "not a grant", &"A".repeat(44)] {
        delete_account(&g, &t.access, json!({"reauth_grant": junk}))
            .await
            .assert_error(403, "invalid_reauth_grant", INVALID_GRANT);
    }
    assert_eq!(
        g.app.get("/auth/me", &t.access).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_id_token_without_auth_time_or_with_a_stale_or_future_one_gets_no_grant() {
    let g = Google::new().await;
    let s = google_session(&g, "g-time", "time@example.com").await;
    let now = g.app.clock.now().0;
    let cases = [
        (None, "auth_time_missing"),
        (Some(now - 301), "auth_time_stale"),
        (Some(now + 61), "auth_time_stale"),
    ];
    for (auth_time, reason) in cases {
        let started = start_reauth(&g, &s.access, "set_password").await;
        let r = confirm(&g, &started, "g-time", auth_time).await;
        assert_eq!(fragment(&r), "error=stale_authentication", "{auth_time:?}");
        assert_eq!(
            g.last_event().await,
            ("google_login_failed".to_owned(), Some(reason.to_owned()))
        );
    }
    // At the edge of max_age it is still fresh.
    let started = start_reauth(&g, &s.access, "set_password").await;
    let r = confirm(&g, &started, "g-time", Some(now - 300)).await;
    assert!(fragment(&r).starts_with("reauth="), "{}", fragment(&r));
    assert_eq!(
        g.last_event().await,
        (
            "google_login".to_owned(),
            Some("reauth=set_password".to_owned())
        )
    );
}

#[tokio::test]
async fn a_reauthentication_by_another_google_account_gets_no_grant() {
    let g = Google::new().await;
    let victim = google_session(&g, "g-victim", "victim@example.com").await;
    google_session(&g, "g-mallory", "mallory@example.com").await;
    for sub in ["g-mallory", "g-nobody"] {
        let started = start_reauth(&g, &victim.access, "delete_account").await;
        let now = g.app.clock.now().0;
        let r = confirm(&g, &started, sub, Some(now)).await;
        assert_eq!(fragment(&r), "error=wrong_google_account", "{sub}");
        assert_eq!(
            g.app.audit_kinds(&victim.user_id).await[0],
            "google_login_failed"
        );
        assert_eq!(
            g.last_event().await,
            (
                "google_login_failed".to_owned(),
                Some("other_google_account".to_owned())
            )
        );
    }
}

#[tokio::test]
async fn a_reauthentication_whose_session_ended_before_the_callback_gets_no_grant() {
    let g = Google::new().await;
    let s = google_session(&g, "g-gone", "gone@example.com").await;
    let started = start_reauth(&g, &s.access, "set_password").await;
    let r = g
        .app
        .call(Method::POST, "/auth/logout", Some(&s.access), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let now = g.app.clock.now().0;
    let r = confirm(&g, &started, "g-gone", Some(now)).await;
    assert_eq!(fragment(&r), "error=session_gone");
    assert_eq!(
        g.last_event().await,
        (
            "google_login_failed".to_owned(),
            Some("session_gone".to_owned())
        )
    );
}

#[tokio::test]
async fn an_account_with_a_password_confirms_with_it_and_starts_no_google_reauthentication() {
    let g = Google::new().await;
    let s = g.app.signed_up("haspw@example.com").await;
    let body = json!({"action": "delete_account", "return_to": RETURN_TO});
    g.app
        .call(
            Method::POST,
            "/auth/google/reauth",
            Some(&s.access),
            Some(body),
        )
        .await
        .assert_error(
            409,
            "password_confirms",
            "this account has a password: confirm the action with it",
        );
    let r = delete_account(&g, &s.access, json!({"password": PASSWORD})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
}
