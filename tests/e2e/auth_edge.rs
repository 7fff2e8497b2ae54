//! The shared edge as seen through the auth function: envelope, headers, CORS, bodies, JWTs,
//! and failing closed.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bastion_core::crypto::JwtKeys;
use bastion_core::{SessionId, Timestamp, UserId};
use bastion_store::{CounterStore, StoreError, WindowCounts};
use http::{Method, Request, StatusCode};
use serde_json::json;

use crate::helpers::{JWT_KEY_B64, JWT_PUBLIC_B64, TestApp, signer};

#[tokio::test]
async fn health_returns_200_ok_with_every_security_header() {
    let app = TestApp::new().await;
    let r = app.call(Method::GET, "/auth/health", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"status": "ok"}));
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        (
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        ),
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        ),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
        ("ratelimit-limit", "100"),
        ("ratelimit-remaining", "99"),
    ] {
        assert_eq!(r.header(name), Some(value), "{name}");
    }
    assert_eq!(r.header("x-request-id").unwrap().len(), 32);
}

#[tokio::test]
async fn unknown_route_returns_404_envelope_with_security_headers() {
    let app = TestApp::new().await;
    let r = app.call(Method::GET, "/auth/nope", None, None).await;
    r.assert_error(404, "not_found", "no such resource");
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn wrong_method_returns_405_envelope() {
    let app = TestApp::new().await;
    let r = app.call(Method::GET, "/auth/login", None, None).await;
    r.assert_error(
        405,
        "method_not_allowed",
        "method not allowed on this resource",
    );
}

#[tokio::test]
async fn malformed_json_returns_400() {
    let app = TestApp::new().await;
    let req = Request::post("/auth/login")
        .header("content-type", "application/json")
        .body(Body::from("{\"email\": "))
        .unwrap();
    app.send(req)
        .await
        .assert_error(400, "invalid_request", "body is not valid JSON");
}

#[tokio::test]
async fn unknown_json_field_returns_400_naming_it() {
    let app = TestApp::new().await;
    let r = app
        .post(
            "/auth/login",
            json!({"email": "a@example.com", "password": "x", "is_admin": true}),
        )
        .await;
    r.assert_error(
        400,
        "invalid_request",
        "invalid body: unknown field `is_admin`, expected one of `email`, `password`, `device_token`",
    );
}

#[tokio::test]
async fn wrong_content_type_returns_415() {
    let app = TestApp::new().await;
    let req = Request::post("/auth/login")
        .header("content-type", "text/plain")
        .body(Body::from(r#"{"email":"a@example.com","password":"x"}"#))
        .unwrap();
    app.send(req).await.assert_error(
        415,
        "unsupported_media_type",
        "Content-Type must be application/json",
    );
    let req = Request::post("/auth/login").body(Body::from("{}")).unwrap();
    assert_eq!(
        app.send(req).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
}

#[tokio::test]
async fn oversized_body_returns_413_with_content_length() {
    let app = TestApp::new().await;
    let big = vec![b' '; 1024 * 1024 + 1];
    let req = Request::post("/auth/register")
        .header("content-type", "application/json")
        .header("content-length", big.len().to_string())
        .body(Body::from(big))
        .unwrap();
    app.send(req)
        .await
        .assert_error(413, "payload_too_large", "request body exceeds 1 MiB");
}

#[tokio::test]
async fn oversized_declared_body_returns_413_even_on_a_route_that_reads_no_body() {
    let app = TestApp::new().await;
    let s = app.signed_up("big@example.com").await;
    let big = vec![b'x'; 1024 * 1024 + 1];
    let req = Request::post("/auth/logout")
        .header("authorization", format!("Bearer {}", s.access))
        .header("content-length", big.len().to_string())
        .body(Body::from(big))
        .unwrap();
    app.send(req)
        .await
        .assert_error(413, "payload_too_large", "request body exceeds 1 MiB");
    assert_eq!(app.get("/auth/me", &s.access).await.status, StatusCode::OK);
}

#[tokio::test]
async fn oversized_streamed_body_without_content_length_returns_413() {
    let app = TestApp::new().await;
    let chunks =
        (0..17).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 64 * 1024])));
    let body = Body::from_stream(futures_util::stream::iter(chunks));
    let req = Request::post("/auth/register")
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    assert!(req.headers().get("content-length").is_none());
    app.send(req)
        .await
        .assert_error(413, "payload_too_large", "request body exceeds 1 MiB");
}

#[tokio::test]
async fn cors_preflight_from_an_allowed_origin_gets_exact_origin_and_vary() {
    let app = TestApp::new().await;
    let req = Request::builder()
        .method(Method::OPTIONS)
        .uri("/auth/login")
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .body(Body::empty())
        .unwrap();
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET, POST, PUT, DELETE, OPTIONS")
    );
    assert_eq!(r.header("vary"), Some("Origin"));
}

#[tokio::test]
async fn cors_gives_nothing_to_an_unlisted_origin() {
    let app = TestApp::new().await;
    for method in [Method::OPTIONS, Method::GET] {
        let req = Request::builder()
            .method(method)
            .uri("/auth/health")
            .header("origin", "https://evil.example")
            .header("access-control-request-method", "GET")
            .body(Body::empty())
            .unwrap();
        let r = app.send(req).await;
        assert_eq!(r.header("access-control-allow-origin"), None);
        assert_eq!(r.header("access-control-allow-credentials"), None);
        assert_eq!(r.header("vary"), Some("Origin"));
    }
}

#[tokio::test]
async fn x_forwarded_for_does_not_change_the_rate_limited_client() {
    let app = TestApp::new().await;
    for i in 0..3 {
        let req = Request::post("/auth/register")
            .header("content-type", "application/json")
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .body(Body::from(json!({"email": format!("xff{i}@example.com"), "password": crate::helpers::PASSWORD}).to_string()))
            .unwrap();
        assert_eq!(app.send(req).await.status, StatusCode::CREATED);
    }
    let req = Request::post("/auth/register")
        .header("content-type", "application/json")
        .header("x-forwarded-for", "198.51.100.99")
        .body(Body::from(
            json!({"email": "xff9@example.com", "password": crate::helpers::PASSWORD}).to_string(),
        ))
        .unwrap();
    let r = app.send(req).await;
    r.assert_error(429, "rate_limited", "too many requests; retry later");
}

#[derive(Debug)]
struct DownCounters;

#[async_trait]
impl CounterStore for DownCounters {
    async fn hit(&self, _: &str, _: i64, _: Timestamp) -> Result<WindowCounts, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
}

#[tokio::test]
async fn unreachable_counter_store_fails_closed_with_503() {
    let app = TestApp::new()
        .await
        .replacing(|s| s.counters = Arc::new(DownCounters));
    let r = app.login("a@example.com", "whatever-password").await;
    r.assert_error(503, "unavailable", "service temporarily unavailable");
    assert!(!r.text.contains("connection refused"));
}

fn forge(keys: &JwtKeys, user: &str, sid: &str, at: i64) -> String {
    keys.issue(
        &UserId::parse(user).unwrap(),
        &SessionId::parse(sid).unwrap(),
        &["admin".into()],
        Timestamp(at),
    )
    .unwrap()
    .0
}

fn sid_of(access: &str) -> String {
    let payload = access.split('.').nth(1).unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["sid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn expired_access_token_returns_401() {
    let app = TestApp::new().await;
    let s = app.signed_up("exp@example.com").await;
    assert_eq!(app.get("/auth/me", &s.access).await.status, StatusCode::OK);
    app.clock.advance(15 * 60);
    app.get("/auth/me", &s.access).await.assert_error(
        401,
        "unauthorized",
        "invalid or expired access token",
    );
}

#[tokio::test]
async fn forged_wrong_audience_and_alg_none_tokens_return_401() {
    let app = TestApp::new().await;
    let s = app.signed_up("forge@example.com").await;
    let sid = sid_of(&s.access);
    let now = crate::helpers::START.secs();
    let other_secret = signer("bastion-test", "bastion-test-api", "k1", &[7; 32]);
    let secret = base64::engine::general_purpose::STANDARD
        .decode(JWT_KEY_B64)
        .unwrap();
    let wrong_aud = signer("bastion-test", "someone-else", "k1", &secret);
    let wrong_iss = signer("evil", "bastion-test-api", "k1", &secret);
    // Algorithm confusion and the retired scheme: HS256 over the real claims, MACed with the
    // verify key everyone holds or with the signing key's bytes.
    let public = base64::engine::general_purpose::STANDARD
        .decode(JWT_PUBLIC_B64)
        .unwrap();
    let hs256 = |key: &[u8]| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some("k1".into());
        let claims: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(s.access.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(key),
        )
        .unwrap()
    };
    let payload = s.access.split('.').nth(1).unwrap();
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt","kid":"k1"}"#);
    let tampered = {
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        claims["roles"] = json!(["admin"]);
        let parts: Vec<&str> = s.access.split('.').collect();
        format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            parts[2]
        )
    };
    for token in [
        forge(&other_secret, &s.user_id, &sid, now),
        forge(&wrong_aud, &s.user_id, &sid, now),
        forge(&wrong_iss, &s.user_id, &sid, now),
        format!("{none_header}.{payload}."),
        hs256(&public),
        hs256(JWT_PUBLIC_B64.as_bytes()),
        hs256(&secret),
        tampered,
        "garbage".to_owned(),
    ] {
        app.get("/auth/me", &token).await.assert_error(
            401,
            "unauthorized",
            "invalid or expired access token",
        );
    }
    let r = app.call(Method::GET, "/auth/me", None, None).await;
    r.assert_error(401, "unauthorized", "missing bearer token");
}
