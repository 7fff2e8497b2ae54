//! The auth function as a Lambda: routes under the `Prod` stage, per-IP limits on the
//! gateway's source IP, JWT key rotation through the secret document, and refusal of secrets
//! in the plain environment.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bastion_lambda_tests::deployment::{
    JWT_KEY, JWT_PUBLIC_B64, ORIGIN, PASSWORD, default_secrets,
};

/// The public half of the second signing key, the seed `[8; 32]`.
const K2_PUBLIC: &str = "E5j2LG0aRXxRumpLXz29L2n8qTIWIY3ImX5Ba9F9k8o=";
use bastion_lambda_tests::{Deployment, RestEvent};
use serde_json::json;

use crate::{assert_rate_limited, signed_up, statuses_from};

#[tokio::test]
async fn register_login_and_me_answer_rest_events_for_the_prod_stage() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let (user_id, access) = signed_up(&auth, "ada@example.com").await;

    let login = auth
        .call(&RestEvent::post_json(
            "/auth/login",
            &json!({"email": "ada@example.com", "password": PASSWORD}),
        ))
        .await;
    assert_eq!(login.status, 200, "{}", login.text());
    assert_eq!(login.json()["user"]["id"], json!(user_id));

    let me = auth
        .call(
            &RestEvent::get("/auth/me")
                .bearer(&access)
                .header("Origin", ORIGIN)
                .query("fields", "all"),
        )
        .await;
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["user"]["id"], json!(user_id));
    assert_eq!(me.header("access-control-allow-origin"), Some(ORIGIN));
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_the_exact_envelope() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    signed_up(&auth, "bob@example.com").await;
    let r = auth
        .call(&RestEvent::post_json(
            "/auth/login",
            &json!({"email": "bob@example.com", "password": "not the password at all 1"}),
        ))
        .await;
    r.assert_error(401, "invalid_credentials", "email or password is incorrect");
}

#[tokio::test]
async fn a_base64_encoded_json_body_is_read_like_a_plain_one() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let body = json!({"email": "b64@example.com", "password": PASSWORD});
    let r = auth
        .call(&RestEvent::post_json("/auth/register", &body).base64())
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["user"]["email"], json!("b64@example.com"));
}

#[tokio::test]
async fn registrations_are_limited_per_source_ip_whatever_x_forwarded_for_says() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let register = |n: usize| {
        RestEvent::post_json(
            "/auth/register",
            &json!({"email": format!("ip{n}@example.com"), "password": PASSWORD}),
        )
    };
    for n in 0..3 {
        assert_eq!(
            statuses_from(&auth, &register(n), "203.0.113.50", 1).await,
            vec![201]
        );
    }
    let spoofed = register(3)
        .source_ip("203.0.113.50")
        .set_header("X-Forwarded-For", "192.0.2.99");
    assert_rate_limited(&auth.call(&spoofed).await);
    assert_eq!(
        statuses_from(&auth, &register(4), "203.0.113.51", 1).await,
        vec![201],
        "another source IP has its own allowance"
    );
}

/// A second deployment of auth on the same table whose current JWT key is `k2`: the tokens it
/// issues are what the first instance sees once `k2` is rolled out.
async fn token_signed_with_k2(d: &Deployment, k2: &str) -> String {
    let mut document = default_secrets();
    document["JWT_SIGNING_KEYS"] = json!(format!("k2:{k2},k1:{}", B64.encode(JWT_KEY)));
    document["JWT_VERIFY_KEYS"] = json!(format!("k2:{K2_PUBLIC},k1:{JWT_PUBLIC_B64}"));
    let secret = d.moto.create_secret(&document).await;
    let issuer = d
        .start_with("auth", &d.env("auth").set("BASTION_SECRET_ID", &secret))
        .await;
    signed_up(&issuer, "rotated@example.com").await.1
}

#[tokio::test]
async fn a_jwt_key_added_verify_only_to_the_secret_is_honoured_after_one_refresh() {
    let d = Deployment::new().await;
    let auth = d
        .start_with("auth", &d.env("auth").set("SECRET_REFRESH_SECS", "60"))
        .await;
    let k2 = B64.encode([8u8; 32]);
    let token = token_signed_with_k2(&d, &k2).await;
    let me = || RestEvent::get("/auth/me").bearer(&token);

    auth.call(&me())
        .await
        .assert_error(401, "unauthorized", "invalid or expired access token");

    let mut rotated = default_secrets();
    rotated["JWT_SIGNING_KEYS"] = json!(format!("k1:{},k2:{k2}", B64.encode(JWT_KEY)));
    rotated["JWT_VERIFY_KEYS"] = json!(format!("k1:{JWT_PUBLIC_B64},k2:{K2_PUBLIC}"));
    d.moto.put_secret(&d.secret_id, &rotated).await;
    tokio::time::sleep(Duration::from_secs(65)).await;

    let r = auth.call(&me()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["user"]["email"], json!("rotated@example.com"));
}

#[tokio::test]
async fn a_secret_in_the_plain_lambda_environment_stops_start_up_naming_it_not_its_value() {
    let d = Deployment::new().await;
    let value = "plain-env-pepper-value-must-never-be-printed";
    let mut auth = d
        .start_with("auth", &d.env("auth").set("PASSWORD_PEPPER", value))
        .await;
    let status = auth.exit_within(Duration::from_secs(30)).await;
    let status = status.unwrap_or_else(|| panic!("start-up did not stop: {}", auth.output()));
    assert!(!status.success(), "{status:?}");
    let said = format!("{}{:?}", auth.output(), auth.runtime.init_error());
    assert!(said.contains("PASSWORD_PEPPER"), "{said}");
    assert!(!said.contains(value), "{said}");
}

#[tokio::test]
async fn start_up_without_a_secret_document_is_refused() {
    let d = Deployment::new().await;
    let mut auth = d
        .start_with("auth", &d.env("auth").remove("BASTION_SECRET_ID"))
        .await;
    let status = auth.exit_within(Duration::from_secs(30)).await;
    let status = status.unwrap_or_else(|| panic!("start-up did not stop: {}", auth.output()));
    assert!(!status.success(), "{status:?}");
    let said = format!("{}{:?}", auth.output(), auth.runtime.init_error());
    assert!(said.contains("BASTION_SECRET_ID"), "{said}");
}

/// The events lambda_http 1.3 panics on while converting them (the `apigw_event` fuzzing
/// findings, and a body flagged base64 that is not): the function answers each with the
/// envelope, before routing, and the same instance goes on serving. Unguarded, each one is an
/// invocation error here and, in a release build (`panic = "abort"`), the end of the instance.
#[tokio::test]
async fn events_lambda_http_cannot_convert_get_400_and_the_instance_keeps_serving() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let findings = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/findings");
    let mut events = Vec::new();
    for entry in std::fs::read_dir(findings).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("apigw-")
        {
            events.push(serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap());
        }
    }
    let mut bad_body = RestEvent::post_json("/auth/login", &json!({})).to_json();
    bad_body["body"] = json!("not base64 !");
    bad_body["isBase64Encoded"] = json!(true);
    events.push(bad_body);
    assert_eq!(events.len(), 6);
    for event in events {
        let r = auth.call_raw(event).await;
        r.assert_error(400, "invalid_request", "the request could not be read");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        let health = auth.call(&RestEvent::get("/auth/health")).await;
        assert_eq!(health.status, 200, "{}", health.text());
    }
}
