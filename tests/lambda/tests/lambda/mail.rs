//! Auth's mail through SES v2 (moto's, with the sender identity verified as an operator does):
//! the verification link of a registration, a password reset that ends the sessions, no mail
//! for an unknown address, and the TOTP secret sealed in the table.

use bastion_lambda_tests::deployment::{MAIL_FROM, ORIGIN, PASSWORD};
use bastion_lambda_tests::{Deployment, Function, GatewayResponse, RestEvent};
use serde_json::{Value, json};

use crate::signed_up;

/// The token of the newest `page` link in the mails moto's SES accepted for `to`.
async fn mailed_token(d: &Deployment, to: &str, page: &str) -> String {
    let prefix = format!("{ORIGIN}/{page}#token=");
    let mails = d.moto.mails_to(to).await;
    mails
        .iter()
        .rev()
        .find_map(|m| {
            let body = m["body"].as_str()?;
            let line = body.lines().find(|l| l.starts_with(&prefix))?;
            Some(line[prefix.len()..].to_owned())
        })
        .unwrap_or_else(|| panic!("no {page} link mailed to {to}: {mails:?}"))
}

async fn post(auth: &Function, path: &str, body: Value) -> GatewayResponse {
    auth.call(&RestEvent::post_json(path, &body)).await
}

#[tokio::test]
async fn registration_mails_a_verification_link_through_ses_that_works_once() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let to = format!(
        "{}@example.com",
        bastion_lambda_tests::aws::unique("verify")
    );
    signed_up(&auth, &to).await;
    let mails = d.moto.mails_to(&to).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0]["source"], MAIL_FROM);
    assert_eq!(mails[0]["subject"], "Verify your email address");
    let token = mailed_token(&d, &to, "verify-email").await;
    let r = post(&auth, "/auth/email/verify", json!({"token": token})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"email_verified": true}));
    post(&auth, "/auth/email/verify", json!({"token": token}))
        .await
        .assert_error(
            400,
            "invalid_token",
            "the link is unknown, used or expired; ask for a new one",
        );
}

#[tokio::test]
async fn a_password_reset_through_ses_ends_the_sessions_and_an_unknown_address_gets_no_mail() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let to = format!("{}@example.com", bastion_lambda_tests::aws::unique("reset"));
    signed_up(&auth, &to).await;
    let login = post(
        &auth,
        "/auth/login",
        json!({"email": to, "password": PASSWORD}),
    )
    .await;
    let refresh = login.json()["refresh_token"].as_str().unwrap().to_owned();

    let known = post(&auth, "/auth/password/forgot", json!({"email": to})).await;
    let stranger = format!(
        "{}@example.com",
        bastion_lambda_tests::aws::unique("nobody")
    );
    let unknown = post(&auth, "/auth/password/forgot", json!({"email": stranger})).await;
    assert_eq!((known.status, unknown.status), (202, 202));
    assert_eq!(known.json(), unknown.json());
    assert_eq!(d.moto.mails_to(&stranger).await, Vec::<Value>::new());

    let token = mailed_token(&d, &to, "reset-password").await;
    let r = post(
        &auth,
        "/auth/password/reset",
        json!({"token": token, "password": "a reset through ses 11"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = post(&auth, "/auth/refresh", json!({"refresh_token": refresh})).await;
    assert_eq!(r.status, 401, "{}", r.text());
    let subjects: Vec<Value> = d
        .moto
        .mails_to(&to)
        .await
        .into_iter()
        .map(|m| m["subject"].clone())
        .collect();
    assert_eq!(
        subjects,
        vec![
            json!("Verify your email address"),
            json!("Reset your password"),
            json!("Your password was reset")
        ]
    );
}

#[tokio::test]
async fn the_totp_secret_is_sealed_with_kms_in_the_table() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let to = format!("{}@example.com", bastion_lambda_tests::aws::unique("totp"));
    let (_, access) = signed_up(&auth, &to).await;
    let r = auth
        .call(
            &RestEvent::post_json("/auth/mfa/totp", &json!({"password": PASSWORD})).bearer(&access),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let secret = r.json()["secret"].as_str().unwrap().to_owned();
    let items = d.moto.scan_text(&d.table).await;
    assert!(
        items.contains("bastion-sealed:v1:"),
        "the secret item is there, sealed"
    );
    assert!(
        !items.contains(&secret),
        "the base32 secret is in the table in plaintext"
    );
    assert!(!items.to_lowercase().contains(&secret.to_lowercase()));
}
