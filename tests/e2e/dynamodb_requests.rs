//! DynamoDB requests per auth route, counted by an SDK interceptor on the auth router running
//! against the local moto server (`BASTION_TEST_DYNAMODB_ENDPOINT`, started by `scripts/test`).
//!
//! Per route: `POST /auth/login` 6 (edge IP counter, login IP counter, account or device
//! counter, email lookup, audit, session); a failed login 5 (no session); `POST /auth/register`
//! 5 (edge IP, register IP, profile + guard transaction, audit, session).

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
    assert_eq!(counter.take(), 5, "register");

    let r = app.login("counted@example.com", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(counter.take(), 6, "successful login");

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
    assert_eq!(counter.take(), 6, "login with a device token");

    let r = app
        .call(http::Method::GET, "/auth/health", None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(counter.take(), 1, "a route's edge");
}
