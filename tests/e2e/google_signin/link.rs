//! Linking a Google identity to an existing account (`POST /auth/google/link`): a linked
//! identity signs in for good and outlives a password change, so an account with a password
//! confirms the link with it, from a session opened in the last ten minutes. A stolen fresh
//! access token is not enough to plant the thief's Google account.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Google, Started, binding_cookie, fragment, google_session, grant, query_of, valid};
use crate::fake_google::{RETURN_TO, claims, sign};
use crate::helpers::{PASSWORD, TestResponse, session_of};

/// `POST /auth/google/link` from `access` with `body`.
async fn link(g: &Google, access: &str, body: Value) -> TestResponse {
    g.app
        .call(Method::POST, "/auth/google/link", Some(access), Some(body))
        .await
}

/// Starts a link from `access` with the account's password, asserting it starts.
async fn start_link(g: &Google, access: &str, password: Option<&str>) -> Started {
    let mut body = json!({"return_to": RETURN_TO});
    if let Some(p) = password {
        body["password"] = json!(p);
    }
    let r = link(g, access, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    Started {
        params: query_of(r.body["authorize_url"].as_str().unwrap()),
        cookie: binding_cookie(&r),
    }
}

/// Google logs `sub` in for the started link and the browser comes back to the callback.
async fn finish_link(g: &Google, started: &Started, sub: &str, email: &str) -> TestResponse {
    let code = format!("code-{}", &started.state()[..8]);
    let id_token = sign(&claims(sub, email, started.nonce()), "k1");
    g.fake.grant(&code, started.challenge(), id_token);
    g.callback(&code, started.state(), Some(&started.cookie))
        .await
}

#[tokio::test]
async fn a_stolen_fresh_token_of_a_password_account_cannot_link_the_thiefs_google_account() {
    let g = Google::new().await;
    // The thief holds the access token of a session the victim opened seconds ago.
    let victim = g.app.signed_up("victim@example.com").await;
    let without = link(&g, &victim.access, json!({"return_to": RETURN_TO})).await;
    without.assert_error(401, "invalid_password", "password is incorrect");
    assert!(without.header("set-cookie").is_none());
    assert_eq!(
        g.last_event().await,
        ("google_linked".to_owned(), Some("bad_password".to_owned()))
    );
    let guessed = json!({"return_to": RETURN_TO, "password": "a guess at the password 1"});
    link(&g, &victim.access, guessed).await.assert_error(
        401,
        "invalid_password",
        "password is incorrect",
    );
    assert_eq!(
        g.app.audit_kinds(&victim.user_id).await[..2],
        ["google_linked", "google_linked"]
    );
    // No link flow was started: the thief's Google account still opens only an account of its
    // own, never the victim's.
    let r = g.sign_in(valid("g-thief", "thief@example.com")).await;
    let tokens = g
        .exchange(fragment(&r).strip_prefix("code=").unwrap())
        .await;
    assert_ne!(session_of(&tokens).user_id, victim.user_id);
}

#[tokio::test]
async fn a_password_account_links_google_with_its_password_and_keeps_its_other_sessions() {
    let g = Google::new().await;
    let alice = g.app.signed_up("alice@example.com").await;
    let laptop = g.app.signed_in("alice@example.com").await;
    // Her Google account is not linked silently by signing in with it.
    let r = g.sign_in(valid("g-alice", "alice@example.com")).await;
    assert_eq!(fragment(&r), "error=account_exists");
    assert_eq!(
        g.app.audit_kinds(&alice.user_id).await[0],
        "google_login_failed"
    );

    let started = start_link(&g, &alice.access, Some(PASSWORD)).await;
    let r = finish_link(&g, &started, "g-alice", "alice@example.com").await;
    assert_eq!(fragment(&r), "linked=google");
    assert_eq!(g.last_event().await, ("google_linked".to_owned(), None));
    assert_eq!(g.app.audit_kinds(&alice.user_id).await[0], "google_linked");
    // The link ends no session: only the password holder could start it.
    let me = g
        .app
        .call(Method::GET, "/auth/me", Some(&laptop.access), None)
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);

    // Now Google sign-in reaches Alice's account.
    let r = g.sign_in(valid("g-alice", "alice@example.com")).await;
    let tokens = g
        .exchange(fragment(&r).strip_prefix("code=").unwrap())
        .await;
    assert_eq!(session_of(&tokens).user_id, alice.user_id);
}

#[tokio::test]
async fn wrong_link_passwords_count_against_the_accounts_login_limit() {
    let g = Google::new().await;
    let s = g.app.signed_up("guessed@example.com").await;
    let wrong = json!({"return_to": RETURN_TO, "password": "not the password at all"});
    for _ in 0..5 {
        link(&g, &s.access, wrong.clone()).await.assert_error(
            401,
            "invalid_password",
            "password is incorrect",
        );
    }
    let right = json!({"return_to": RETURN_TO, "password": PASSWORD});
    link(&g, &s.access, right).await.assert_error(
        429,
        "rate_limited",
        "too many requests; retry later",
    );
}

#[tokio::test]
async fn linking_google_needs_a_sign_in_from_the_last_ten_minutes() {
    let g = Google::new().await;
    let old = g.app.signed_up("stale@example.com").await;
    g.app.clock.advance(601);
    // A refreshed token of an old session (what a thief replays) cannot plant a link, even
    // with the password.
    let refreshed = session_of(&g.app.refresh(&old.refresh).await);
    let body = json!({"return_to": RETURN_TO, "password": PASSWORD});
    link(&g, &refreshed.access, body).await.assert_error(
        403,
        "reauthentication_required",
        "sign in again, then link Google within 10 minutes",
    );
    let fresh = g.app.signed_in("stale@example.com").await;
    start_link(&g, &fresh.access, Some(PASSWORD)).await;
}

#[tokio::test]
async fn a_link_whose_session_was_logged_out_before_the_callback_is_refused() {
    let g = Google::new().await;
    let bob = g.app.signed_up("bob@example.com").await;
    let started = start_link(&g, &bob.access, Some(PASSWORD)).await;
    // Bob notices a session he does not know and logs out everywhere while the link is open.
    let r = g
        .app
        .call(Method::POST, "/auth/logout-all", Some(&bob.access), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = finish_link(&g, &started, "g-mallory", "mallory@example.com").await;
    assert_eq!(fragment(&r), "error=session_gone");
    assert_eq!(
        g.last_event().await,
        ("google_linked".to_owned(), Some("session_gone".to_owned()))
    );
    // Mallory's Google account did not become a way into Bob's account.
    let r = g.sign_in(valid("g-mallory", "mallory@example.com")).await;
    let tokens = g
        .exchange(fragment(&r).strip_prefix("code=").unwrap())
        .await;
    assert_ne!(session_of(&tokens).user_id, bob.user_id);
}

#[tokio::test]
async fn a_google_created_account_cannot_link_a_second_google_account() {
    let g = Google::new().await;
    let s = google_session(&g, "g-first", "first@example.com").await;
    // No password to ask for; the account already holds its one Google identity.
    let started = start_link(&g, &s.access, None).await;
    let r = finish_link(&g, &started, "g-second", "second@example.com").await;
    assert_eq!(fragment(&r), "error=google_account_in_use");
    assert_eq!(
        g.last_event().await,
        (
            "google_linked".to_owned(),
            Some("identity_taken".to_owned())
        )
    );
    let again = google_session(&g, "g-first", "first@example.com").await;
    assert_eq!(again.user_id, s.user_id);
}

#[tokio::test]
async fn a_google_only_account_that_unlinked_google_links_again_only_from_a_fresh_sign_in() {
    let g = Google::new().await;
    let s = google_session(&g, "g-back", "back@example.com").await;
    let unlinking = grant(&g, &s.access, "unlink_google", "g-back").await;
    let r = g
        .app
        .call(
            Method::DELETE,
            "/auth/google/link",
            Some(&s.access),
            Some(json!({"reauth_grant": unlinking})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    // Without a password or a Google identity the account has no sign-in left: linking again
    // from the session that unlinked is its only way back, and only while that session is
    // fresh.
    let started = start_link(&g, &s.access, None).await;
    let r = finish_link(&g, &started, "g-back", "back@example.com").await;
    assert_eq!(fragment(&r), "linked=google");
    g.app.clock.advance(601);
    let refreshed = session_of(&g.app.refresh(&s.refresh).await);
    link(&g, &refreshed.access, json!({"return_to": RETURN_TO}))
        .await
        .assert_error(
            403,
            "reauthentication_required",
            "sign in again, then link Google within 10 minutes",
        );
}
