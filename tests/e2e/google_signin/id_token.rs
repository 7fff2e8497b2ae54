//! The ID token's checks at the callback: nonce, audience and authorized party, verified email,
//! expiry, issuer, algorithm and the JWKS key rotation.

use serde_json::{Value, json};

use super::{Google, fragment, valid, with};
use crate::fake_google::{self, CLIENT_ID, claims, sign};
use crate::helpers::START;

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
