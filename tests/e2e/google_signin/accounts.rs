//! Google accounts next to passwords: setting and changing a password, unlinking and deleting
//! (with the password, or without one a Google re-authentication grant). Linking is in `link`.

use http::{Method, StatusCode};
use serde_json::json;

use super::{Google, fragment, google_session, grant, valid};

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
