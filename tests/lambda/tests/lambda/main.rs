//! The Lambda-shaped suite: each real function binary runs under the Runtime API stand-in,
//! configured as the template and Lambda configure it (secrets only in the Secrets Manager
//! document, content under the KMS key), and answers API Gateway REST events for stage `Prod`
//! against moto.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent;
mod auth;
mod chat;
mod chat_sse;
mod chat_stream;
mod exec;
mod exec_purge;
mod exec_python;
mod exec_tool;
mod failover;
mod invoke;
mod mail;
mod paths;
mod startup;
mod stream_standin;
mod webhooks;

use bastion_lambda_tests::deployment::PASSWORD;
use bastion_lambda_tests::{Function, GatewayResponse, RestEvent};
use serde_json::json;

/// `PUT /exec/files/{path}` of `bytes` as `access`, the body base64 as API Gateway sends it.
pub fn put_file(path: &str, access: &str, bytes: &[u8]) -> RestEvent {
    RestEvent::new("PUT", &format!("/exec/files/{path}"))
        .bearer(access)
        .header("Content-Type", "application/octet-stream")
        .body(bytes.to_vec())
        .base64()
}

/// A user registered through the auth function: (user id, access token).
pub async fn signed_up(auth: &Function, email: &str) -> (String, String) {
    let r = auth
        .call(&RestEvent::post_json(
            "/auth/register",
            &json!({"email": email, "password": PASSWORD}),
        ))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let body = r.json();
    (
        body["user"]["id"].as_str().unwrap().to_owned(),
        body["access_token"].as_str().unwrap().to_owned(),
    )
}

/// Sends `event` `times` times from `source_ip`, each with a different spoofed
/// `X-Forwarded-For`, and returns the statuses.
pub async fn statuses_from(
    function: &Function,
    event: &RestEvent,
    source_ip: &str,
    times: usize,
) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in 0..times {
        let spoofed = format!("198.51.100.{}, 10.0.0.{i}", i + 1);
        let r = function
            .call(
                &event
                    .clone()
                    .source_ip(source_ip)
                    .set_header("X-Forwarded-For", &spoofed),
            )
            .await;
        statuses.push(r.status);
    }
    statuses
}

/// Asserts the 429 envelope the edge gives when a per-IP limit is spent.
pub fn assert_rate_limited(r: &GatewayResponse) {
    r.assert_error(429, "rate_limited", "too many requests; retry later");
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
}
