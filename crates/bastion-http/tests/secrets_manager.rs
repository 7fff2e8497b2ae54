//! The secret overlay through the real `aws-sdk-secretsmanager` client against the local moto
//! server named by `BASTION_TEST_DYNAMODB_ENDPOINT` (moto serves Secrets Manager on the same
//! port as DynamoDB): load at init, rotation through a refresh, a failed refresh.
// Fixtures outside `#[test]` fns are test code too; a failed setup should fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_secretsmanager::config::{Credentials, Region};
use bastion_core::config::{Env, map_env};
use bastion_core::{ManualClock, Timestamp};
use bastion_http::EdgeConfig;
use bastion_http::secrets::{RefreshError, SecretConfig, SecretsManagerSource};

const ENDPOINT_ENV: &str = "BASTION_TEST_DYNAMODB_ENDPOINT";
/// Verify entries (public keys); `K2_SEED` is the signing entry of `K2`.
const K1: &str = "k1:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
const K2: &str = "k2:Kay64UG8yvCyLhqU000LxzYeUm0L/hLIl5S8kyKWbdc=";
const K2_SEED: &str = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

async fn sdk() -> SdkConfig {
    let endpoint = match std::env::var(ENDPOINT_ENV) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!(
            "{ENDPOINT_ENV} is not set: these tests need a local moto server. Run `scripts/test`, \
             which starts one on 127.0.0.1 and sets the variable."
        ),
    };
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await
}

fn unique_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "bastion-test-secret-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn doc(jwt_keys: &str) -> String {
    serde_json::json!({ "JWT_VERIFY_KEYS": jwt_keys }).to_string()
}

async fn create(sdk: &SdkConfig, body: &str) -> String {
    let name = unique_name();
    aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(&name)
        .secret_string(body)
        .send()
        .await
        .unwrap();
    name
}

async fn put(sdk: &SdkConfig, name: &str, body: &str) {
    aws_sdk_secretsmanager::Client::new(sdk)
        .put_secret_value()
        .secret_id(name)
        .secret_string(body)
        .send()
        .await
        .unwrap();
}

async fn load(sdk: &SdkConfig, name: &str) -> Result<Arc<SecretConfig>, bastion_http::ConfigError> {
    let source = Arc::new(SecretsManagerSource::new(sdk, name));
    let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
    SecretConfig::load(Arc::new(map_env(&[("TABLE_NAME", "t")])), source, clock).await
}

#[tokio::test]
async fn the_document_is_read_with_one_get_secret_value_and_overlays_the_environment() {
    let sdk = sdk().await;
    let name = create(&sdk, &doc(K1)).await;
    let secrets = load(&sdk, &name).await.unwrap();
    let env = secrets.env();
    assert_eq!(env.get("JWT_VERIFY_KEYS").as_deref(), Some(K1));
    assert_eq!(env.get("TABLE_NAME").as_deref(), Some("t"));
}

#[tokio::test]
async fn a_missing_secret_or_a_malformed_document_stops_start_up_naming_the_field() {
    let sdk = sdk().await;
    let err = load(&sdk, &unique_name()).await.unwrap_err();
    assert_eq!(err.var, "BASTION_SECRET_ID");
    assert!(
        err.reason.starts_with(
            "cannot read the secret: GetSecretValue failed: ResourceNotFoundException"
        ),
        "{err}"
    );
    let name = create(
        &sdk,
        r#"{"JWT_VERIFY_KEYS": "k", "STRIPE_WEBHOOK_SECRETS": ["whsec_x"]}"#,
    )
    .await;
    let err = load(&sdk, &name).await.unwrap_err();
    assert_eq!(err.var, "STRIPE_WEBHOOK_SECRETS");
    assert_eq!(err.reason, "must be a string in the secret document");
}

#[tokio::test]
async fn a_new_secret_version_takes_effect_after_one_refresh_and_a_bad_one_is_ignored() {
    let sdk = sdk().await;
    let name = create(&sdk, &doc(K1)).await;
    let secrets = load(&sdk, &name).await.unwrap();
    let config = EdgeConfig::from_env(&secrets.env()).unwrap();
    let rotated = config.clone();
    secrets.on_refresh(move |env| rotated.rotate(env));
    let signer = bastion_http::config::parse_jwt_signer(&map_env(&[
        ("JWT_SIGNING_KEYS", K2_SEED),
        ("JWT_VERIFY_KEYS", K2),
    ]))
    .unwrap();
    let now = Timestamp(1_000_000);
    let (token, _) = signer
        .issue(
            &bastion_core::UserId::generate(),
            &bastion_core::SessionId::generate(),
            &[],
            now,
        )
        .unwrap();
    assert!(config.jwt.load().verify(&token, now).is_err());

    put(&sdk, &name, &doc(&format!("{K1},{K2}"))).await;
    secrets.refresh().await.unwrap();
    assert!(config.jwt.load().verify(&token, now).is_ok());

    put(&sdk, &name, &doc("k3:AAEC")).await;
    assert!(matches!(
        secrets.refresh().await,
        Err(RefreshError::Config(ref e)) if e.var == "JWT_VERIFY_KEYS"
    ));
    assert!(config.jwt.load().verify(&token, now).is_ok());
    assert_eq!(
        secrets.env().get("JWT_VERIFY_KEYS"),
        Some(format!("{K1},{K2}"))
    );
}
