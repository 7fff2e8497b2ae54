//! DynamoDB requests per auth route, counted by an SDK interceptor on the auth router running
//! against the local moto server (`BASTION_TEST_DYNAMODB_ENDPOINT`, started by `scripts/test`).
//!
//! Per route: `POST /auth/login` 7 (edge IP counter, login IP counter, account or device
//! counter, email lookup, second-factor lookup, audit, session); a failed login 5 (no session,
//! no second-factor lookup); `POST /auth/register` 6 (edge IP, register IP, profile + guard
//! transaction, audit, verification token, session). The recovery and second-factor routes are
//! counted in `every_issue_25_route_costs_a_fixed_number_of_dynamodb_requests`: a forgot request 6
//! for a known and for an unknown address alike (edge IP, recovery IP, address counter, address
//! lookup, the reset token's write or the decoy's conditional delete, audit).
//!
//! `every_issue_25_route_costs_a_fixed_number_of_dynamodb_requests` adds the rest (printed for
//! the notes): verify/send 7, mfa/verify 6 for a wrong code and 10 with a recovery code,
//! turning TOTP off 9, the administrator's removal 6.

use std::sync::Arc;

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{Credentials, Region, SharedInterceptor};
use bastion_store::conformance::RequestCounter;
use bastion_store::dynamodb::create_table;
use bastion_store::{DynamoStore, Stores};
use http::StatusCode;

use crate::helpers::{PASSWORD, TestApp};

async fn app_on_dynamodb() -> (TestApp, RequestCounter) {
    app_on_dynamodb_with(crate::helpers::base_env()).await
}

async fn app_on_dynamodb_with(
    env: std::collections::HashMap<String, String>,
) -> (TestApp, RequestCounter) {
    let (app, counter, _, _) = dynamodb_parts(env).await;
    (app, counter)
}

/// The app on a fresh moto table, with the counter, the client and the table's name (for tests
/// that read the items themselves).
async fn dynamodb_parts(
    env: std::collections::HashMap<String, String>,
) -> (TestApp, RequestCounter, Client, String) {
    let endpoint = std::env::var("BASTION_TEST_DYNAMODB_ENDPOINT")
        .expect("BASTION_TEST_DYNAMODB_ENDPOINT is not set: run scripts/test, which starts moto");
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await;
    let counter = RequestCounter::default();
    let client = Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config)
            .interceptor(SharedInterceptor::new(counter.clone()))
            .build(),
    );
    let table = format!("bastion-e2e-req-{}", bastion_core::RequestId::generate());
    create_table(&client, &table).await.unwrap();
    counter.take();
    let stores = Stores::from_adapter(Arc::new(DynamoStore::new(client.clone(), table.clone())));
    (
        TestApp::builder().env(env).stores(stores).build().await,
        counter,
        client,
        table,
    )
}

#[tokio::test]
async fn a_login_costs_at_most_seven_dynamodb_requests_and_a_known_or_unknown_email_the_same() {
    let (app, counter) = app_on_dynamodb().await;
    let r = app.register("counted@example.com").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(counter.take(), 6, "register");

    let r = app.login("counted@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(counter.take(), 7, "successful login");

    let r = app.login("counted@example.com", "wrong password!").await;
    r.assert_error(401, "invalid_credentials", "email or password is incorrect");
    let known = counter.take();
    let r = app.login("stranger@example.com", "wrong password!").await;
    r.assert_error(401, "invalid_credentials", "email or password is incorrect");
    let unknown = counter.take();
    assert_eq!((known, unknown), (5, 5), "failed logins");

    let device = app.login("counted@example.com", PASSWORD).await.body["device_token"]
        .as_str()
        .unwrap()
        .to_owned();
    counter.take();
    let r = app
        .post(
            "/auth/login",
            serde_json::json!({"email": "counted@example.com", "password": PASSWORD, "device_token": device}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(counter.take(), 7, "login with a device token");

    let r = app
        .call(http::Method::GET, "/auth/health", None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(counter.take(), 1, "a route's edge");
}

const ADMIN_KEY: &str = "adm_Zm9yLXRlc3RzLW9ubHktbm90LWEtcmVhbC1hZG1pbi1r";

/// Asserts the status and returns how many DynamoDB requests the call made.
fn took(counter: &RequestCounter, r: &crate::helpers::TestResponse, status: u16) -> usize {
    assert_eq!(r.status.as_u16(), status, "{}", r.text);
    counter.take()
}

/// Runs every route of issue 25 once, in the order a user meets them, and returns the requests
/// each made.
async fn recovery_and_mfa_counts(
    app: &TestApp,
    counter: &RequestCounter,
) -> (Vec<(&'static str, usize)>, String) {
    use http::Method;
    use serde_json::json;
    let email = "counted-mfa@example.com";
    let s = crate::helpers::session_of(&app.register(email).await);
    counter.take();
    let mut counts = Vec::new();
    let r = app
        .call(
            Method::POST,
            "/auth/email/verify/send",
            Some(&s.access),
            None,
        )
        .await;
    counts.push(("POST /auth/email/verify/send", took(counter, &r, 202)));
    let token = app.mailed_token(email, "verify-email");
    let r = app
        .post("/auth/email/verify", json!({"token": token}))
        .await;
    counts.push(("POST /auth/email/verify", took(counter, &r, 200)));
    let r = app
        .post("/auth/password/forgot", json!({"email": email}))
        .await;
    counts.push(("POST /auth/password/forgot (known)", took(counter, &r, 202)));
    let r = app
        .post(
            "/auth/password/forgot",
            json!({"email": "nobody@example.com"}),
        )
        .await;
    counts.push((
        "POST /auth/password/forgot (unknown)",
        took(counter, &r, 202),
    ));
    let token = app.mailed_token(email, "reset-password");
    let body = json!({"token": token, "password": PASSWORD});
    let r = app.post("/auth/password/reset", body).await;
    counts.push(("POST /auth/password/reset", took(counter, &r, 200)));

    let s = crate::helpers::session_of(&app.login(email, PASSWORD).await);
    counter.take();
    let r = app
        .call(
            Method::POST,
            "/auth/mfa/totp",
            Some(&s.access),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    counts.push(("POST /auth/mfa/totp", took(counter, &r, 200)));
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    let body = json!({"code": app.totp_code(&secret, 0)});
    let r = app
        .call(
            Method::POST,
            "/auth/mfa/totp/confirm",
            Some(&s.access),
            Some(body),
        )
        .await;
    counts.push(("POST /auth/mfa/totp/confirm", took(counter, &r, 200)));
    let recovery = r.body["recovery_codes"][0].as_str().unwrap().to_owned();
    app.clock.advance(30);

    let r = app.login(email, PASSWORD).await;
    counts.push(("POST /auth/login (mfa_required)", took(counter, &r, 200)));
    let body = json!({"mfa_token": r.body["mfa_token"], "code": app.totp_code(&secret, 0)});
    let r = app.post("/auth/mfa/verify", body).await;
    counts.push(("POST /auth/mfa/verify (code)", took(counter, &r, 200)));
    let mfa_token = app.login(email, PASSWORD).await.body["mfa_token"].clone();
    counter.take();
    let wrong = if app.totp_code(&secret, 0) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let r = app
        .post(
            "/auth/mfa/verify",
            json!({"mfa_token": mfa_token, "code": wrong}),
        )
        .await;
    counts.push(("POST /auth/mfa/verify (wrong code)", took(counter, &r, 400)));
    let body = json!({"mfa_token": mfa_token, "recovery_code": recovery});
    let r = app.post("/auth/mfa/verify", body).await;
    counts.push((
        "POST /auth/mfa/verify (recovery code)",
        took(counter, &r, 200),
    ));
    let r = app.get("/auth/me", &s.access).await;
    counts.push(("GET /auth/me", took(counter, &r, 200)));

    app.clock.advance(30);
    let body = json!({"code": app.totp_code(&secret, 0)});
    let r = app
        .call(
            Method::DELETE,
            "/auth/mfa/totp",
            Some(&s.access),
            Some(body),
        )
        .await;
    counts.push(("DELETE /auth/mfa/totp", took(counter, &r, 204)));
    (counts, s.access)
}

#[tokio::test]
async fn every_issue_25_route_costs_a_fixed_number_of_dynamodb_requests() {
    let mut env = crate::helpers::base_env();
    let hash = hex::encode(bastion_core::crypto::sha256(ADMIN_KEY.as_bytes()));
    env.insert("ADMIN_KEYS".into(), format!("ops:{hash}"));
    let (app, counter) = app_on_dynamodb_with(env).await;
    let (mut counts, access) = recovery_and_mfa_counts(&app, &counter).await;
    let r = app
        .call(
            http::Method::POST,
            "/auth/mfa/totp",
            Some(&access),
            Some(serde_json::json!({"password": PASSWORD})),
        )
        .await;
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    let confirm = serde_json::json!({"code": app.totp_code(&secret, 0)});
    let r = app
        .call(
            http::Method::POST,
            "/auth/mfa/totp/confirm",
            Some(&access),
            Some(confirm),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let me = app.get("/auth/me", &access).await;
    let path = format!(
        "/admin/users/{}/mfa",
        me.body["user"]["id"].as_str().unwrap()
    );
    counter.take();
    let r = app
        .call(http::Method::DELETE, &path, Some(ADMIN_KEY), None)
        .await;
    counts.push(("DELETE /admin/users/{id}/mfa", took(&counter, &r, 204)));
    println!("{counts:#?}");
    // A forgot request must not tell known from unknown addresses by its store traffic either.
    assert_eq!(counts[2].1, counts[3].1, "forgot, known and unknown");
    assert_eq!(
        counts,
        vec![
            ("POST /auth/email/verify/send", 7),
            ("POST /auth/email/verify", 7),
            ("POST /auth/password/forgot (known)", 6),
            ("POST /auth/password/forgot (unknown)", 6),
            ("POST /auth/password/reset", 18),
            ("POST /auth/mfa/totp", 7),
            ("POST /auth/mfa/totp/confirm", 8),
            ("POST /auth/login (mfa_required)", 5),
            ("POST /auth/mfa/verify (code)", 10),
            ("POST /auth/mfa/verify (wrong code)", 6),
            ("POST /auth/mfa/verify (recovery code)", 10),
            ("GET /auth/me", 5),
            ("DELETE /auth/mfa/totp", 9),
            ("DELETE /admin/users/{id}/mfa", 6),
        ]
    );
}

#[tokio::test]
async fn no_totp_secret_recovery_code_or_mailed_token_is_stored_in_plaintext_on_dynamodb() {
    use http::Method;
    use serde_json::json;
    let (app, _, client, table) = dynamodb_parts(crate::helpers::base_env()).await;
    let email = "at-rest-ddb@example.com";
    let s = crate::helpers::session_of(&app.register(email).await);
    let body = json!({"password": PASSWORD});
    let r = app
        .call(Method::POST, "/auth/mfa/totp", Some(&s.access), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    let body = json!({"code": app.totp_code(&secret, 0)});
    let r = app
        .call(
            Method::POST,
            "/auth/mfa/totp/confirm",
            Some(&s.access),
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let codes: Vec<String> = r.body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    let r = app
        .post("/auth/password/forgot", json!({"email": email}))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);

    let mut secrets = vec![
        secret.to_lowercase(),
        app.mailed_token(email, "reset-password").to_lowercase(),
        app.mailed_token(email, "verify-email").to_lowercase(),
    ];
    for c in &codes {
        secrets.push(c.to_lowercase());
        secrets.push(c.replace('-', "").to_lowercase());
    }
    let stored = scanned(&client, &table).await.to_lowercase();
    assert!(stored.contains(email), "the scan reads the account's items");
    for s in &secrets {
        assert!(!stored.contains(s.as_str()), "{s} is stored in plaintext");
    }
}

/// Every item of the table, every page, as text (each attribute's value appears in it as stored).
async fn scanned(client: &Client, table: &str) -> String {
    let mut text = String::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in page.items() {
            text.push_str(&format!("{item:?}\n"));
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return text;
        }
    }
}
