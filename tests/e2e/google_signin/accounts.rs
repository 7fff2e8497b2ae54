//! Google accounts next to passwords: explicit linking (from a recent sign-in), setting and
//! changing a password, unlinking and deleting (with the password, or without one a Google
//! re-authentication grant).

use http::{Method, StatusCode};
use serde_json::json;

use super::{Google, Started, binding_cookie, fragment, google_session, grant, query_of, valid};
use crate::fake_google::{RETURN_TO, claims, sign};
use crate::helpers::session_of;

#[tokio::test]
async fn an_existing_password_account_is_not_linked_silently_but_can_link_explicitly() {
    let g = Google::new().await;
    let alice = g.app.signed_up("alice@example.com").await;
    let r = g.sign_in(valid("g-alice", "alice@example.com")).await;
    assert_eq!(fragment(&r), "error=account_exists");
    assert_eq!(
        g.app.audit_kinds(&alice.user_id).await[0],
        "google_login_failed"
    );

    // Signed in with her password, Alice links her Google account.
    let r = g
        .app
        .call(
            Method::POST,
            "/auth/google/link",
            Some(&alice.access),
            Some(json!({"return_to": RETURN_TO})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let started = Started {
        params: query_of(r.body["authorize_url"].as_str().unwrap()),
        cookie: binding_cookie(&r),
    };
    g.fake.grant(
        "code-link",
        started.challenge(),
        sign(
            &claims("g-alice", "alice@example.com", started.nonce()),
            "k1",
        ),
    );
    let r = g
        .callback("code-link", started.state(), Some(&started.cookie))
        .await;
    assert_eq!(fragment(&r), "linked=google");
    assert_eq!(g.app.audit_kinds(&alice.user_id).await[0], "google_linked");

    // Now Google sign-in reaches Alice's account.
    let r = g.sign_in(valid("g-alice", "alice@example.com")).await;
    let tokens = g
        .exchange(fragment(&r).strip_prefix("code=").unwrap())
        .await;
    assert_eq!(session_of(&tokens).user_id, alice.user_id);
}

#[tokio::test]
async fn linking_google_needs_a_sign_in_from_the_last_ten_minutes() {
    let g = Google::new().await;
    let old = g.app.signed_up("stale@example.com").await;
    g.app.clock.advance(601);
    // A refreshed token of an old session (what a thief replays) cannot plant a link.
    let refreshed = session_of(&g.app.refresh(&old.refresh).await);
    let link = |access: String| {
        let app = &g.app;
        async move {
            app.call(
                Method::POST,
                "/auth/google/link",
                Some(&access),
                Some(json!({"return_to": RETURN_TO})),
            )
            .await
        }
    };
    link(refreshed.access).await.assert_error(
        403,
        "reauthentication_required",
        "sign in again, then link Google within 10 minutes",
    );
    let fresh = g.app.signed_in("stale@example.com").await;
    let r = link(fresh.access).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["authorize_url"].as_str().is_some());
}

#[tokio::test]
async fn a_link_whose_session_was_logged_out_before_the_callback_is_refused() {
    let g = Google::new().await;
    let bob = g.app.signed_up("bob@example.com").await;
    let r = g
        .app
        .call(
            Method::POST,
            "/auth/google/link",
            Some(&bob.access),
            Some(json!({"return_to": RETURN_TO})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let started = Started {
        params: query_of(r.body["authorize_url"].as_str().unwrap()),
        cookie: binding_cookie(&r),
    };
    // Bob notices a session he does not know and logs out everywhere while the link is open.
    let r = g
        .app
        .call(Method::POST, "/auth/logout-all", Some(&bob.access), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    g.fake.grant(
        "code-late",
        started.challenge(),
        sign(
            &claims("g-mallory", "mallory@example.com", started.nonce()),
            "k1",
        ),
    );
    let r = g
        .callback("code-late", started.state(), Some(&started.cookie))
        .await;
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
async fn a_google_account_has_no_password_to_change_and_deletes_only_with_a_reauthentication_grant()
{
    let g = Google::new().await;
    let s = google_session(&g, "g-10", "nopass@example.com").await;
    g.app
        .call(
            Method::POST,
            "/auth/password",
            Some(&s.access),
            Some(json!({"current_password": "", "new_password": "a much better passphrase 9"})),
        )
        .await
        .assert_error(
            409,
            "no_password",
            "this account signs in with Google and has no password to change",
        );
    let delete = |body: serde_json::Value| {
        let (app, access) = (g.app.clone(), s.access.clone());
        async move {
            app.call(Method::DELETE, "/auth/account", Some(&access), Some(body))
                .await
        }
    };
    // A session opened seconds ago is not enough on its own.
    delete(json!({})).await.assert_error(
        403,
        "reauthentication_required",
        "re-authenticate with Google to delete the account (POST /auth/google/reauth with action delete_account)",
    );
    let grant = grant(&g, &s.access, "delete_account", "g-10").await;
    let r = delete(json!({"reauth_grant": grant})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(g.app.audit_kinds(&s.user_id).await[0], "account_deleted");
}

const SET_PASSWORD: &str = "a freshly chosen passphrase 77";

/// `POST /auth/password/set` of `SET_PASSWORD` from `access` with `grant`.
async fn set_password(
    g: &Google,
    access: &str,
    grant: Option<&str>,
) -> crate::helpers::TestResponse {
    let mut body = json!({"new_password": SET_PASSWORD});
    if let Some(grant) = grant {
        body["reauth_grant"] = json!(grant);
    }
    g.app
        .call(Method::POST, "/auth/password/set", Some(access), Some(body))
        .await
}

#[tokio::test]
async fn a_google_account_sets_a_password_only_with_a_reauthentication_grant_and_only_once() {
    let g = Google::new().await;
    let s = google_session(&g, "g-set", "setter@example.com").await;
    set_password(&g, &s.access, None).await.assert_error(
        403,
        "reauthentication_required",
        "re-authenticate with Google to set a password (POST /auth/google/reauth with action set_password)",
    );
    let grant = grant(&g, &s.access, "set_password", "g-set").await;
    let r = set_password(&g, &s.access, Some(&grant)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(g.app.audit_kinds(&s.user_id).await[0], "password_set");
    assert_eq!(
        g.app.login("setter@example.com", SET_PASSWORD).await.status,
        StatusCode::OK
    );
    set_password(&g, &s.access, None).await.assert_error(
        409,
        "password_already_set",
        "this account has a password; change it with the current one",
    );
    // The account is still linked, and a password change works for it like for any other.
    let r = g
        .app
        .call(
            Method::POST,
            "/auth/password",
            Some(&s.access),
            Some(json!({"current_password": SET_PASSWORD, "new_password": "yet another passphrase 88"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let again = google_session(&g, "g-set", "setter@example.com").await;
    assert_eq!(again.user_id, s.user_id);
}

#[tokio::test]
async fn unlinking_google_needs_the_password_and_then_google_no_longer_signs_in() {
    let g = Google::new().await;
    let s = google_session(&g, "g-unlink", "unlinker@example.com").await;
    let grant = grant(&g, &s.access, "set_password", "g-unlink").await;
    let r = set_password(&g, &s.access, Some(&grant)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let unlink = |password: &str| {
        let (app, access, body) = (
            g.app.clone(),
            s.access.clone(),
            json!({ "password": password }),
        );
        async move {
            app.call(
                Method::DELETE,
                "/auth/google/link",
                Some(&access),
                Some(body),
            )
            .await
        }
    };
    unlink("not the password at all").await.assert_error(
        401,
        "invalid_password",
        "password is incorrect",
    );
    assert_eq!(unlink(SET_PASSWORD).await.status, StatusCode::NO_CONTENT);
    assert_eq!(g.app.audit_kinds(&s.user_id).await[0], "google_unlinked");
    unlink(SET_PASSWORD)
        .await
        .assert_error(404, "not_linked", "no Google account is linked");
    // The Google identity no longer opens the account (it is not linked silently either).
    let r = g.sign_in(valid("g-unlink", "unlinker@example.com")).await;
    assert_eq!(fragment(&r), "error=account_exists");
    assert_eq!(
        g.app
            .login("unlinker@example.com", SET_PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
}
