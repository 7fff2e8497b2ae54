//! DynamoDB requests per auth route, counted by an SDK interceptor on the auth router running
//! against the local moto server (`BASTION_TEST_DYNAMODB_ENDPOINT`, started by `scripts/test`).
//!
//! Per route: `POST /auth/login` 7 (edge IP counter, login IP counter, account or device
//! counter, email lookup, second-factor lookup, audit, session); a failed login 5 (no session,
//! no second-factor lookup); `POST /auth/register` 6 (edge IP, register IP, profile + guard
//! transaction, audit, verification token, session). The recovery and second-factor routes are
//! counted in `recovery_and_second_factor_routes_cost_what_the_table_says`: a forgot request 6
//! for a known and for an unknown address alike (edge IP, recovery IP, address counter, address
//! lookup, the reset token's write or the decoy's conditional delete, audit).

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
    let stores = Stores::from_adapter(Arc::new(DynamoStore::new(client, table)));
    (TestApp::builder().stores(stores).build().await, counter)
}

#[tokio::test]
async fn a_login_costs_at_most_six_dynamodb_requests_and_a_known_or_unknown_email_the_same() {
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

#[tokio::test]
async fn recovery_and_second_factor_routes_cost_what_the_table_says() {
    use bastion_core::Clock as _;
    use bastion_core::crypto::totp::{TotpSecret, step_at};
    use serde_json::json;

    let (app, counter) = app_on_dynamodb().await;
    let s = app.signed_up("recover@example.com").await;
    let mut counts = Vec::new();
    let mut count = |route: &str, r: &crate::helpers::TestResponse, status: u16| {
        assert_eq!(r.status.as_u16(), status, "{route}: {}", r.text);
        counts.push((route.to_owned(), counter.take()));
    };
    counter.take();

    let r = app
        .post(
            "/auth/password/forgot",
            json!({"email": "recover@example.com"}),
        )
        .await;
    count("forgot, known address", &r, 202);
    let r = app
        .post(
            "/auth/password/forgot",
            json!({"email": "nobody@example.com"}),
        )
        .await;
    count("forgot, unknown address", &r, 202);
    let token = app.mailed_token("recover@example.com", "reset-password");
    let r = app
        .post(
            "/auth/password/reset",
            json!({"token": token, "password": "fresh passphrase for dynamo 3"}),
        )
        .await;
    count("reset", &r, 200);
    let verify = app.mailed_token("recover@example.com", "verify-email");
    let r = app
        .post("/auth/email/verify", json!({"token": verify}))
        .await;
    // The reset verified the address already, so the link finds it verified and still works.
    count("verify email", &r, 200);

    let s = app
        .signed_in_with("recover@example.com", "fresh passphrase for dynamo 3")
        .await;
    counter.take();
    let r = app
        .call(
            http::Method::POST,
            "/auth/mfa/totp",
            Some(&s.access),
            Some(json!({"password": "fresh passphrase for dynamo 3"})),
        )
        .await;
    count("enrol TOTP", &r, 200);
    let secret = TotpSecret::from_base32(r.body["secret"].as_str().unwrap()).unwrap();
    let code = |app: &TestApp| secret.code_at(step_at(app.clock.now()));
    let r = app
        .call(
            http::Method::POST,
            "/auth/mfa/totp/confirm",
            Some(&s.access),
            Some(json!({"code": code(&app)})),
        )
        .await;
    count("confirm TOTP", &r, 200);
    app.clock.advance(30);
    let r = app
        .login("recover@example.com", "fresh passphrase for dynamo 3")
        .await;
    count("login, second factor due", &r, 200);
    let mfa_token = r.body["mfa_token"].as_str().unwrap().to_owned();
    let r = app
        .post(
            "/auth/mfa/verify",
            json!({"mfa_token": mfa_token, "code": code(&app)}),
        )
        .await;
    count("mfa verify (TOTP)", &r, 200);
    let r = app.get("/auth/me", &s.access).await;
    count("me", &r, 200);

    let expected: Vec<(String, usize)> = [
        ("forgot, known address", 6),
        ("forgot, unknown address", 6),
        ("reset", 18),
        ("verify email", 7),
        ("enrol TOTP", 7),
        ("confirm TOTP", 8),
        ("login, second factor due", 5),
        ("mfa verify (TOTP)", 10),
        ("me", 5),
    ]
    .into_iter()
    .map(|(r, n)| (r.to_owned(), n))
    .collect();
    assert_eq!(counts, expected);
}
