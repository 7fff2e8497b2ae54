//! Google sign-in against a local fake OIDC provider: the browser-and-Google harness shared by
//! the flow (state, callback, login code), ID token and account (link, password, unlink) tests.

mod accounts;
mod flow;
mod id_token;
mod link;
mod reauth;

use std::collections::HashMap;

use bastion_core::Clock as _;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fake_google::{FakeGoogle, RETURN_TO, claims, sign};
use crate::helpers::{Call, START, Session, TestApp, TestResponse, base_env, session_of};

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
            app: TestApp::builder().env(env).build().await,
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
        *self.browser.lock().unwrap() = cookie.map(str::to_owned);
        with_cookie(self.app.call(Method::GET, &path, None, None), cookie).await
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
        let body = Some(json!({"code": code}));
        with_cookie(
            self.app
                .call(Method::POST, "/auth/google/exchange", None, body),
            cookie,
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

/// The request as a browser holding `cookie` (or none) sends it.
fn with_cookie<'a>(call: Call<'a>, cookie: Option<&str>) -> Call<'a> {
    match cookie {
        Some(c) => call.header("cookie", c),
        None => call,
    }
}

/// Signs in with Google as `sub` and returns the session.
async fn google_session(g: &Google, sub: &str, email: &str) -> Session {
    let r = g.sign_in(valid(sub, email)).await;
    let tokens = g
        .exchange(fragment(&r).strip_prefix("code=").unwrap())
        .await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.text);
    session_of(&tokens)
}

/// `POST /auth/google/reauth` for `action` from `access`, asserting it starts.
async fn start_reauth(g: &Google, access: &str, action: &str) -> Started {
    let body = json!({"action": action, "return_to": RETURN_TO});
    let r = g
        .app
        .call(
            Method::POST,
            "/auth/google/reauth",
            Some(access),
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    Started {
        params: query_of(r.body["authorize_url"].as_str().unwrap()),
        cookie: binding_cookie(&r),
    }
}

/// Google confirms `sub` with an ID token whose `auth_time` is `auth_time` (absent for
/// `None`), and the browser that started `started` comes back to the callback.
async fn confirm(g: &Google, started: &Started, sub: &str, auth_time: Option<i64>) -> TestResponse {
    let mut c = claims(sub, "someone@example.com", started.nonce());
    if let Some(t) = auth_time {
        c["auth_time"] = json!(t);
    }
    let code = format!("code-{}", &started.state()[..8]);
    g.fake.grant(&code, started.challenge(), sign(&c, "k1"));
    g.callback(&code, started.state(), Some(&started.cookie))
        .await
}

/// A grant for `action`: started with `access`, confirmed by Google as `sub` just now.
async fn grant(g: &Google, access: &str, action: &str, sub: &str) -> String {
    let started = start_reauth(g, access, action).await;
    let now = g.app.clock.now().0;
    let r = confirm(g, &started, sub, Some(now)).await;
    fragment(&r).strip_prefix("reauth=").unwrap().to_owned()
}
