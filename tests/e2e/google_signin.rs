//! Google sign-in against a local fake OIDC provider: the whole flow, every refusal of the
//! state, of the ID token and of the login code, and explicit account linking.

use std::collections::HashMap;

use bastion_core::Clock as _;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fake_google::{self, CLIENT_ID, FakeGoogle, REDIRECT_URI, RETURN_TO, claims, sign};
use crate::helpers::{START, TestApp, TestResponse, base_env, session_of};

struct Google {
    app: TestApp,
    fake: FakeGoogle,
    /// The binding cookie of the last callback: the browser that then exchanges the code.
    browser: std::sync::Mutex<Option<String>>,
}

/// One started sign-in as the browser sees it.
struct Started {
    params: HashMap<String, String>,
    cookie: String,
}

impl Started {
    fn state(&self) -> &str {
        &self.params["state"]
    }
    fn nonce(&self) -> &str {
        &self.params["nonce"]
    }
    fn challenge(&self) -> &str {
        &self.params["code_challenge"]
    }
}

fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// The part of the redirect after `#`, asserting it goes back to the frontend.
fn fragment(r: &TestResponse) -> String {
    assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
    let location = r.header("location").unwrap();
    let (base, fragment) = location.split_once('#').unwrap();
    assert_eq!(base, RETURN_TO);
    fragment.to_owned()
}

/// `name=value` of the binding cookie set by a response.
fn binding_cookie(r: &TestResponse) -> String {
    let set = r.header("set-cookie").unwrap();
    set.split(';').next().unwrap().to_owned()
}

const RETURN_TO_ENCODED: &str = "https%3A%2F%2Fapp.example.com%2Fsigned-in";

impl Google {
    async fn new() -> Self {
        let fake = FakeGoogle::start().await;
        let mut env = base_env();
        for (k, v) in fake.env() {
            env.insert(k.to_owned(), v);
        }
        Self {
            app: TestApp::with_env(env).await,
            fake,
            browser: std::sync::Mutex::new(None),
        }
    }

    async fn start(&self) -> Started {
        let r = self
            .app
            .call(
                Method::GET,
                &format!("/auth/google/start?return_to={RETURN_TO_ENCODED}"),
                None,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::FOUND, "{}", r.text);
        Started {
            params: query_of(r.header("location").unwrap()),
            cookie: binding_cookie(&r),
        }
    }

    async fn callback(&self, code: &str, state: &str, cookie: Option<&str>) -> TestResponse {
        let path = format!("/auth/google/callback?code={code}&state={state}");
        let headers: Vec<(&str, &str)> = cookie.map(|c| ("cookie", c)).into_iter().collect();
        *self.browser.lock().unwrap() = cookie.map(str::to_owned);
        self.app
            .call_with(Method::GET, &path, None, None, &headers)
            .await
    }

    /// Starts, lets Google issue `id_token` (built from the started flow), and calls back.
    async fn sign_in(&self, id_token: impl FnOnce(&Started) -> String) -> TestResponse {
        let started = self.start().await;
        let code = format!("code-{}", &started.state()[..8]);
        self.fake
            .grant(&code, started.challenge(), id_token(&started));
        self.callback(&code, started.state(), Some(&started.cookie))
            .await
    }

    /// Exchanges `code` from the browser of the last callback.
    async fn exchange(&self, code: &str) -> TestResponse {
        let cookie = self.browser.lock().unwrap().clone();
        self.exchange_from(code, cookie.as_deref()).await
    }

    async fn exchange_from(&self, code: &str, cookie: Option<&str>) -> TestResponse {
        let headers: Vec<(&str, &str)> = cookie.map(|c| ("cookie", c)).into_iter().collect();
        self.app
            .call_with(
                Method::POST,
                "/auth/google/exchange",
                None,
                Some(json!({"code": code})),
                &headers,
            )
            .await
    }

    /// The newest audit event of the day: (kind, detail).
    async fn last_event(&self) -> (String, Option<String>) {
        let page = self
            .app
            .stores
            .audit_days
            .list_for_day(START, None, 1, self.app.clock.now())
            .await
            .unwrap()
            .unwrap();
        let e = &page.items[0];
        (e.kind.as_str().to_owned(), e.detail.clone())
    }
}

fn valid(sub: &str, email: &str) -> impl FnOnce(&Started) -> String {
    let (sub, email) = (sub.to_owned(), email.to_owned());
    move |s| sign(&claims(&sub, &email, s.nonce()), "k1")
}

fn with(sub: &str, change: impl FnOnce(&mut Value)) -> impl FnOnce(&Started) -> String {
    let sub = sub.to_owned();
    move |s| {
        let mut c = claims(&sub, "gina@example.com", s.nonce());
        change(&mut c);
        sign(&c, "k1")
    }
}

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
async fn a_wrong_nonce_sends_the_user_back_with_an_error_and_no_code() {
    let g = Google::new().await;
    let r = g
        .sign_in(with("g-3", |c| c["nonce"] = json!("not-the-nonce")))
        .await;
    assert_eq!(fragment(&r), "error=invalid_id_token");
    assert_eq!(
        g.last_event().await,
        (
            "google_login_failed".to_owned(),
            Some("nonce_mismatch".to_owned())
        )
    );
}

#[tokio::test]
async fn a_wrong_audience_is_refused() {
    let g = Google::new().await;
    let r = g
        .sign_in(with("g-4", |c| {
            c["aud"] = json!("someone-else.apps.googleusercontent.com")
        }))
        .await;
    assert_eq!(fragment(&r), "error=invalid_id_token");
    assert_eq!(g.last_event().await.1.as_deref(), Some("wrong_audience"));
}

#[tokio::test]
async fn a_token_for_several_audiences_needs_us_as_its_authorized_party() {
    let g = Google::new().await;
    for (aud, azp) in [
        (json!(["another-client", CLIENT_ID]), Value::Null),
        (
            json!(["another-client", CLIENT_ID]),
            json!("another-client"),
        ),
        (json!(CLIENT_ID), json!("another-client")),
    ] {
        let r = g
            .sign_in(with("g-multi", |c| {
                c["aud"] = aud.clone();
                if !azp.is_null() {
                    c["azp"] = azp.clone();
                }
            }))
            .await;
        assert_eq!(fragment(&r), "error=invalid_id_token", "{aud} {azp}");
        assert_eq!(
            g.last_event().await,
            (
                "google_login_failed".to_owned(),
                Some("wrong_audience".to_owned())
            )
        );
    }
    let r = g
        .sign_in(with("g-multi", |c| {
            c["aud"] = json!(["another-client", CLIENT_ID]);
            c["azp"] = json!(CLIENT_ID);
        }))
        .await;
    assert!(fragment(&r).starts_with("code="));
}

#[tokio::test]
async fn an_unverified_email_is_refused() {
    let g = Google::new().await;
    let r = g
        .sign_in(with("g-5", |c| c["email_verified"] = json!(false)))
        .await;
    assert_eq!(fragment(&r), "error=email_unverified");
    assert_eq!(g.last_event().await.1.as_deref(), Some("email_unverified"));
}

#[tokio::test]
async fn an_expired_id_token_or_a_wrong_issuer_is_refused() {
    let g = Google::new().await;
    let r = g.sign_in(with("g-6", |c| c["exp"] = json!(START.0))).await;
    assert_eq!(fragment(&r), "error=invalid_id_token");
    assert_eq!(g.last_event().await.1.as_deref(), Some("expired_id_token"));
    let r = g
        .sign_in(with("g-6", |c| {
            c["iss"] = json!("https://evil.example.com")
        }))
        .await;
    assert_eq!(fragment(&r), "error=invalid_id_token");
    assert_eq!(g.last_event().await.1.as_deref(), Some("wrong_issuer"));
}

#[tokio::test]
async fn an_id_token_signed_with_anything_but_rs256_is_refused() {
    let g = Google::new().await;
    let r = g
        .sign_in(|s| fake_google::sign_hs256(&claims("g-7", "h@example.com", s.nonce()), "k1"))
        .await;
    assert_eq!(fragment(&r), "error=invalid_id_token");
    assert_eq!(g.last_event().await.1.as_deref(), Some("bad_algorithm"));
}

#[tokio::test]
async fn an_unknown_kid_refreshes_the_jwks_once_and_then_verifies() {
    let g = Google::new().await;
    let r = g.sign_in(valid("g-8", "k@example.com")).await;
    assert!(fragment(&r).starts_with("code="));
    assert_eq!(g.fake.jwks_fetches(), 1);
    // Cached: a second sign-in with the same key costs no fetch.
    let r = g.sign_in(valid("g-8", "k@example.com")).await;
    assert!(fragment(&r).starts_with("code="));
    assert_eq!(g.fake.jwks_fetches(), 1);

    // Google rotates to k2; past the refresh floor the unknown kid triggers one refetch.
    g.fake.publish_kids(&["k2"]);
    g.app.clock.advance(61);
    let r = g
        .sign_in(|s| sign(&claims("g-8", "k@example.com", s.nonce()), "k2"))
        .await;
    assert!(fragment(&r).starts_with("code="), "{}", fragment(&r));
    assert_eq!(g.fake.jwks_fetches(), 2);

    // A kid Google never published fails, and within the floor costs no further fetch.
    let r = g
        .sign_in(|s| sign(&claims("g-8", "k@example.com", s.nonce()), "k9"))
        .await;
    assert_eq!(fragment(&r), "error=invalid_id_token");
    assert_eq!(g.last_event().await.1.as_deref(), Some("unknown_kid"));
    assert_eq!(g.fake.jwks_fetches(), 2);
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
        .call_with(
            Method::GET,
            &path,
            None,
            None,
            &[("cookie", &started.cookie)],
        )
        .await;
    assert_eq!(fragment(&r), "error=access_denied");
}

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
async fn a_google_account_has_no_password_to_change_and_deletes_only_after_a_recent_sign_in() {
    let g = Google::new().await;
    let r = g.sign_in(valid("g-10", "nopass@example.com")).await;
    let tokens = g
        .exchange(fragment(&r).strip_prefix("code=").unwrap())
        .await;
    let s = session_of(&tokens);
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
    // Ten minutes later the session is too old to delete the account with.
    g.app.clock.advance(601);
    let refreshed = g.app.refresh(&s.refresh).await;
    let access = refreshed.body["access_token"].as_str().unwrap().to_owned();
    g.app
        .call(
            Method::DELETE,
            "/auth/account",
            Some(&access),
            Some(json!({})),
        )
        .await
        .assert_error(
            403,
            "reauthentication_required",
            "sign in with Google again, then delete the account within 10 minutes",
        );
    let r = g.sign_in(valid("g-10", "nopass@example.com")).await;
    let fresh = session_of(
        &g.exchange(fragment(&r).strip_prefix("code=").unwrap())
            .await,
    );
    let r = g
        .app
        .call(
            Method::DELETE,
            "/auth/account",
            Some(&fresh.access),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
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

/// Signs in with Google as `sub` and returns the session.
async fn google_session(g: &Google, sub: &str, email: &str) -> crate::helpers::Session {
    let r = g.sign_in(valid(sub, email)).await;
    let tokens = g
        .exchange(fragment(&r).strip_prefix("code=").unwrap())
        .await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    session_of(&tokens)
}

const SET_PASSWORD: &str = "a freshly chosen passphrase 77";

#[tokio::test]
async fn a_google_account_sets_a_password_only_from_a_fresh_session_and_only_once() {
    let g = Google::new().await;
    let s = google_session(&g, "g-set", "setter@example.com").await;
    let set = |access: String| {
        let app = g.app.clone();
        async move {
            app.call(
                Method::POST,
                "/auth/password/set",
                Some(&access),
                Some(json!({"new_password": SET_PASSWORD})),
            )
            .await
        }
    };
    // Ten minutes on, a refreshed token of that sign-in is not enough.
    g.app.clock.advance(601);
    let refreshed = g.app.refresh(&s.refresh).await;
    let stale = refreshed.body["access_token"].as_str().unwrap().to_owned();
    set(stale).await.assert_error(
        403,
        "reauthentication_required",
        "sign in with Google again, then set a password within 10 minutes",
    );
    let fresh = google_session(&g, "g-set", "setter@example.com").await;
    assert_eq!(
        set(fresh.access.clone()).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(g.app.audit_kinds(&fresh.user_id).await[0], "password_set");
    assert_eq!(
        g.app.login("setter@example.com", SET_PASSWORD).await.status,
        StatusCode::OK
    );
    set(fresh.access.clone()).await.assert_error(
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
            Some(&fresh.access),
            Some(json!({"current_password": SET_PASSWORD, "new_password": "yet another passphrase 88"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let again = google_session(&g, "g-set", "setter@example.com").await;
    assert_eq!(again.user_id, fresh.user_id);
}

#[tokio::test]
async fn unlinking_google_needs_the_password_and_then_google_no_longer_signs_in() {
    let g = Google::new().await;
    let s = google_session(&g, "g-unlink", "unlinker@example.com").await;
    let r = g
        .app
        .call(
            Method::POST,
            "/auth/password/set",
            Some(&s.access),
            Some(json!({"new_password": SET_PASSWORD})),
        )
        .await;
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

#[tokio::test]
async fn a_google_only_account_unlinks_only_from_a_fresh_session() {
    let g = Google::new().await;
    let s = google_session(&g, "g-only", "only@example.com").await;
    g.app.clock.advance(601);
    let refreshed = g.app.refresh(&s.refresh).await;
    let stale = refreshed.body["access_token"].as_str().unwrap().to_owned();
    g.app
        .call(
            Method::DELETE,
            "/auth/google/link",
            Some(&stale),
            Some(json!({})),
        )
        .await
        .assert_error(
            403,
            "reauthentication_required",
            "sign in with Google again, then unlink Google within 10 minutes",
        );
    let fresh = google_session(&g, "g-only", "only@example.com").await;
    let r = g
        .app
        .call(
            Method::DELETE,
            "/auth/google/link",
            Some(&fresh.access),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
}
