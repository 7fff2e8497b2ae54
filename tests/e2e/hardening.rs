//! Attacks from the adversarial review (issue 13), each shown failing against its control:
//! IPv6 address rotation, stranger lockout, injected Google login codes.

use http::StatusCode;

use crate::helpers::{PASSWORD, TestApp};

#[tokio::test]
async fn registrations_from_rotating_addresses_in_one_ipv6_64_share_one_limit() {
    let app = TestApp::new().await;
    for i in 1..=3 {
        let r = app
            .seen_from(&format!("[2001:db8:7:7:{i:x}::{i:x}]"))
            .register(&format!("v6-{i}@example.com"))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = app
        .seen_from("[2001:db8:7:7:ffff:ffff:ffff:fffe]")
        .register("v6-4@example.com")
        .await;
    r.assert_error(429, "rate_limited", "too many requests; retry later");
    // The neighbouring /64 is another subscriber.
    let r = app
        .seen_from("[2001:db8:7:8::1]")
        .register("v6-5@example.com")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

#[tokio::test]
async fn logins_from_rotating_addresses_in_one_ipv6_64_share_one_limit() {
    let app = TestApp::new().await;
    // 20 logins a minute per client; each from a new address of one /64, each for another
    // (unknown) account so the per-account limit never binds first.
    for i in 1..=20 {
        let r = app
            .seen_from(&format!("[2001:db8:9:9::{i:x}]"))
            .login(&format!("nobody{i}@example.com"), PASSWORD)
            .await;
        r.assert_error(401, "invalid_credentials", "email or password is incorrect");
    }
    let r = app
        .seen_from("[2001:db8:9:9:1234::77]")
        .login("nobody21@example.com", PASSWORD)
        .await;
    r.assert_error(429, "rate_limited", "too many requests; retry later");
}

#[tokio::test]
async fn an_ipv4_mapped_ipv6_client_is_limited_as_its_ipv4_address() {
    let app = TestApp::new().await;
    for i in 1..=3 {
        let r = app
            .seen_from("192.0.2.50")
            .register(&format!("mapped-{i}@example.com"))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let r = app
        .seen_from("[::ffff:192.0.2.50]")
        .register("mapped-4@example.com")
        .await;
    r.assert_error(429, "rate_limited", "too many requests; retry later");
}
