//! The Google sign-in flow: start and its `return_to`, the state's single use and browser
//! binding, the callback's outcomes and the one-time login code.

use http::{Method, StatusCode};
use serde_json::json;

use super::{Google, RETURN_TO_ENCODED, fragment, valid};
use crate::fake_google::{CLIENT_ID, REDIRECT_URI, claims, sign};
use crate::helpers::{TestApp, session_of};

#[tokio::test]
async fn google_sign_in_goes_from_start_through_callback_and_exchange_to_auth_me() {
    let g = Google::new().await;
    let started = g.start().await;
    let p = &started.params;
    assert_eq!(p["response_type"], "code");
    assert_eq!(p["client_id"], CLIENT_ID);
    assert_eq!(p["redirect_uri"], REDIRECT_URI);
    assert_eq!(p["scope"], "openid email profile");
    assert_eq!(p["code_challenge_method"], "S256");
    assert_eq!(p["state"].len(), 43);
    assert_eq!(p["nonce"].len(), 43);
    assert_eq!(p["code_challenge"].len(), 43);
    assert_eq!(p.len(), 8);
    assert!(started.cookie.starts_with("__Host-bastion_oauth="));

    g.fake.grant(
        "code-1",
        started.challenge(),
        sign(&claims("g-1", "Gina@Example.com", started.nonce()), "k1"),
    );
    let r = g
        .callback("code-1", started.state(), Some(&started.cookie))
        .await;
    // The binding cookie stays until the exchange, which needs it.
    assert_eq!(r.header("set-cookie"), None);
    let back = fragment(&r);
    let code = back.strip_prefix("code=").unwrap();
    assert_eq!(code.len(), 43);
    assert!(!r.text.contains("access_token"));

    let tokens = g.exchange(code).await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    assert_eq!(
        tokens.header("set-cookie"),
        Some("__Host-bastion_oauth=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Lax")
    );
    let session = session_of(&tokens);
    let me = g.app.get("/auth/me", &session.access).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["user"]["email"], json!("gina@example.com"));
    assert_eq!(me.body["user"]["display_name"], json!("Gina Google"));
    assert_eq!(me.body["user"]["roles"], json!(["user"]));
    assert_eq!(
        g.app.audit_kinds(&session.user_id).await,
        vec!["google_login", "google_account_created"]
    );

    // The same Google account later signs in to the same user.
    let again = g.sign_in(valid("g-1", "gina@example.com")).await;
    let tokens = g
        .exchange(fragment(&again).strip_prefix("code=").unwrap())
        .await;
    assert_eq!(session_of(&tokens).user_id, session.user_id);
}

#[tokio::test]
async fn start_refuses_a_return_to_that_is_not_configured() {
    let g = Google::new().await;
    for path in [
        "/auth/google/start",
        "/auth/google/start?return_to=https%3A%2F%2Fevil.example.com%2F",
        "/auth/google/start?return_to=https%3A%2F%2Fapp.example.com%2Fsigned-in%2Fx",
        // Near misses of the configured URL: trailing slash, case, userinfo, port, query,
        // fragment, another scheme, a look-alike host and an empty value.
        "/auth/google/start?return_to=https%3A%2F%2Fapp.example.com%2Fsigned-in%2F",
        "/auth/google/start?return_to=https%3A%2F%2FAPP.example.com%2Fsigned-in",
        "/auth/google/start?return_to=https%3A%2F%2Fapp.example.com%2FSigned-in",
        "/auth/google/start?return_to=https%3A%2F%2Fevil%40app.example.com%2Fsigned-in",
        "/auth/google/start?return_to=https%3A%2F%2Fapp.example.com%40evil.com%2Fsigned-in",
        "/auth/google/start?return_to=https%3A%2F%2Fapp.example.com%3A8443%2Fsigned-in",
        "/auth/google/start?return_to=https%3A%2F%2Fapp.example.com%2Fsigned-in%3Fx%3D1",
        "/auth/google/start?return_to=https%3A%2F%2Fapp.example.com%2Fsigned-in%23x",
        "/auth/google/start?return_to=http%3A%2F%2Fapp.example.com%2Fsigned-in",
        "/auth/google/start?return_to=https%3A%2F%2Fapp.example.com.evil.com%2Fsigned-in",
        "/auth/google/start?return_to=%20https%3A%2F%2Fapp.example.com%2Fsigned-in",
        "/auth/google/start?return_to=",
    ] {
        g.app
            .call(Method::GET, path, None, None)
            .await
            .assert_error(
                400,
                "invalid_return_to",
                "return_to must be one of the configured frontend URLs",
            );
    }
}

#[tokio::test]
async fn google_routes_answer_503_when_google_is_not_configured() {
    let app = TestApp::new().await;
    let r = app
        .call(
            Method::GET,
            &format!("/auth/google/start?return_to={RETURN_TO_ENCODED}"),
            None,
            None,
        )
        .await;
    r.assert_error(
        503,
        "google_not_configured",
        "Google sign-in is not configured",
    );
    app.post("/auth/google/exchange", json!({"code": "x"}))
        .await
        .assert_error(
            503,
            "google_not_configured",
            "Google sign-in is not configured",
        );
}

const BAD_STATE: &str = "sign-in state is unknown, expired, already used or from another browser";

#[tokio::test]
async fn a_replayed_state_is_refused_with_400() {
    let g = Google::new().await;
    let started = g.start().await;
    g.fake.grant(
        "code-a",
        started.challenge(),
        sign(&claims("g-2", "r@example.com", started.nonce()), "k1"),
    );
    let first = g
        .callback("code-a", started.state(), Some(&started.cookie))
        .await;
    assert!(fragment(&first).starts_with("code="));
    g.callback("code-a", started.state(), Some(&started.cookie))
        .await
        .assert_error(400, "invalid_state", BAD_STATE);
}

#[tokio::test]
async fn an_expired_or_unknown_state_is_refused_with_400() {
    let g = Google::new().await;
    let started = g.start().await;
    g.app.clock.advance(601);
    g.callback("code-x", started.state(), Some(&started.cookie))
        .await
        .assert_error(400, "invalid_state", BAD_STATE);
    let unknown = "A".repeat(43);
    g.callback("code-x", &unknown, Some(&started.cookie))
        .await
        .assert_error(400, "invalid_state", BAD_STATE);
    g.callback("code-x", "short", Some(&started.cookie))
        .await
        .assert_error(400, "invalid_state", BAD_STATE);
}

#[tokio::test]
async fn a_state_from_another_browser_session_is_refused_and_audited() {
    let g = Google::new().await;
    let victim = g.start().await;
    let attacker = g.start().await;
    g.callback("code-v", victim.state(), Some(&attacker.cookie))
        .await
        .assert_error(400, "invalid_state", BAD_STATE);
    assert_eq!(
        g.last_event().await,
        (
            "google_login_failed".to_owned(),
            Some("foreign_browser".to_owned())
        )
    );
    g.callback("code-w", attacker.state(), None)
        .await
        .assert_error(400, "invalid_state", BAD_STATE);
}

#[tokio::test]
async fn a_login_code_works_once_and_only_for_sixty_seconds() {
    let g = Google::new().await;
    let r = g.sign_in(valid("g-9", "l@example.com")).await;
    let code = fragment(&r).strip_prefix("code=").unwrap().to_owned();
    assert_eq!(g.exchange(&code).await.status, StatusCode::OK);
    let msg = "login code is unknown, expired or already used";
    g.exchange(&code)
        .await
        .assert_error(400, "invalid_login_code", msg);
    let refused = || {
        (
            "google_exchange_refused".to_owned(),
            Some("unknown_expired_or_used_code".to_owned()),
        )
    };
    assert_eq!(g.last_event().await, refused());

    let r = g.sign_in(valid("g-9", "l@example.com")).await;
    let code = fragment(&r).strip_prefix("code=").unwrap().to_owned();
    g.app.clock.advance(60);
    g.exchange(&code)
        .await
        .assert_error(400, "invalid_login_code", msg);
    assert_eq!(g.last_event().await, refused());
    let events = g.app.audit_of_kind("google_exchange_refused").await;
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.user_id.is_none()));
}

#[tokio::test]
async fn a_login_code_of_a_user_disabled_since_the_callback_is_refused_and_audited_on_them() {
    let g = Google::new().await;
    let r = g.sign_in(valid("g-off", "off@example.com")).await;
    let code = fragment(&r).strip_prefix("code=").unwrap().to_owned();
    let user = g
        .app
        .stores
        .accounts
        .find_user_by_google("g-off")
        .await
        .unwrap()
        .unwrap();
    assert!(
        g.app
            .stores
            .accounts
            .set_disabled(&user.id, true)
            .await
            .unwrap()
    );
    g.exchange(&code).await.assert_error(
        400,
        "invalid_login_code",
        "login code is unknown, expired or already used",
    );
    let events = g.app.audit_of_kind("google_exchange_refused").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].user_id.as_ref(), Some(&user.id));
    assert_eq!(events[0].detail.as_deref(), Some("user_disabled_or_gone"));
}

#[tokio::test]
async fn a_google_refusal_sends_the_user_back_with_the_error_and_no_code() {
    let g = Google::new().await;
    let started = g.start().await;
    let path = format!(
        "/auth/google/callback?error=access_denied&state={}",
        started.state()
    );
    let r = g
        .app
        .call(Method::GET, &path, None, None)
        .header("cookie", &started.cookie)
        .await;
    assert_eq!(fragment(&r), "error=access_denied");
}

#[tokio::test]
async fn a_login_code_exchanged_without_the_starting_browsers_cookie_is_refused_and_audited() {
    let g = Google::new().await;
    let msg = "login code is unknown, expired or already used";
    // The attacker finishes their own sign-in and plants the code in the victim's frontend,
    // which exchanges it with no binding cookie, or with the cookie of its own started flow.
    let r = g.sign_in(valid("g-attacker", "attacker@example.com")).await;
    let planted = fragment(&r).strip_prefix("code=").unwrap().to_owned();
    g.exchange_from(&planted, None)
        .await
        .assert_error(400, "invalid_login_code", msg);
    let victim = g.start().await;
    let r = g.sign_in(valid("g-attacker", "attacker@example.com")).await;
    let planted = fragment(&r).strip_prefix("code=").unwrap().to_owned();
    g.exchange_from(&planted, Some(&victim.cookie))
        .await
        .assert_error(400, "invalid_login_code", msg);

    let events = g.app.audit_of_kind("google_exchange_refused").await;
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|e| e.detail.as_deref() == Some("foreign_browser") && e.user_id.is_some())
    );
    // The code is spent: not even the attacker's own browser can use it afterwards.
    g.exchange(&planted)
        .await
        .assert_error(400, "invalid_login_code", msg);
}
