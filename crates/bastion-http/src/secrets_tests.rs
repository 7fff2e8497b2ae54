//! Unit tests of the secret overlay against a fake source: refusal, malformed documents,
//! rotation through a refresh, and a failed refresh keeping the last good configuration.

use std::sync::Mutex;

use bastion_core::ManualClock;
use bastion_core::config::map_env;
use bastion_core::crypto::JwtKeys;

use super::*;
use crate::config::{EdgeConfig, parse_jwt, parse_jwt_signer};

/// Public keys (verify entries) of the seeds `K1_SEED` and `K2_SEED`.
const K1: &str = "k1:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
const K2: &str = "k2:Kay64UG8yvCyLhqU000LxzYeUm0L/hLIl5S8kyKWbdc=";
const K1_SEED: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const K2_SEED: &str = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

/// A source whose next answer the test sets.
struct FakeSource(Mutex<Result<String, SourceError>>);

impl FakeSource {
    fn new(doc: &str) -> Arc<Self> {
        Arc::new(Self(Mutex::new(Ok(doc.to_owned()))))
    }
    fn set(&self, next: Result<&str, &str>) {
        *self.0.lock().unwrap() = next
            .map(str::to_owned)
            .map_err(|e| SourceError(e.to_owned()));
    }
}

#[async_trait]
impl SecretSource for FakeSource {
    async fn fetch(&self) -> Result<SecretString, SourceError> {
        self.0.lock().unwrap().clone().map(SecretString::from)
    }
}

fn doc(pairs: &[(&str, &str)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

async fn load(
    plain: &[(&str, &str)],
    source: Arc<FakeSource>,
    clock: Arc<ManualClock>,
) -> Result<Arc<SecretConfig>, ConfigError> {
    SecretConfig::load(Arc::new(map_env(plain)), source, clock).await
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(bastion_core::Timestamp(1_000_000)))
}

#[tokio::test]
async fn each_secret_name_in_the_plain_lambda_environment_stops_start_up_naming_it_not_its_value() {
    for name in SECRET_NAMES {
        let source = FakeSource::new(&doc(&[("JWT_VERIFY_KEYS", K1)]));
        let err = load(&[(name, "leaked-value-42")], source, clock())
            .await
            .unwrap_err();
        assert_eq!(err.var, name);
        assert!(!err.to_string().contains("leaked-value-42"), "{err}");
    }
    // Present but empty is refused too: the name alone shows the template is wrong.
    let err = load(&[("ADMIN_KEYS", "")], FakeSource::new("{}"), clock())
        .await
        .unwrap_err();
    assert_eq!(err.var, "ADMIN_KEYS");
}

#[tokio::test]
async fn the_overlay_takes_secrets_from_the_document_and_everything_else_from_the_environment() {
    let source = FakeSource::new(&doc(&[("JWT_VERIFY_KEYS", K1)]));
    let secrets = load(
        &[("JWT_ISSUER", "iss"), ("TABLE_NAME", "t")],
        source,
        clock(),
    )
    .await
    .unwrap();
    let env = secrets.env();
    assert_eq!(env.get("JWT_VERIFY_KEYS").as_deref(), Some(K1));
    assert_eq!(env.get("TABLE_NAME").as_deref(), Some("t"));
    assert_eq!(env.get("PASSWORD_PEPPER"), None);
    let mut keys = env.keys();
    keys.sort();
    assert_eq!(keys, vec!["JWT_ISSUER", "JWT_VERIFY_KEYS", "TABLE_NAME"]);
}

#[tokio::test]
async fn a_malformed_document_stops_start_up_naming_the_field_never_the_value() {
    for (raw, field) in [
        ("not json", SECRET_ID_VAR),
        ("[\"JWT_KEYS\"]", SECRET_ID_VAR),
        (r#"{"JWT_VERIFY_KEYS": 42}"#, "JWT_VERIFY_KEYS"),
        (
            r#"{"JWT_VERIFY_KEYS": ["s3cret-in-a-list"]}"#,
            "JWT_VERIFY_KEYS",
        ),
        (r#"{"JWT_KEY": "s3cret-misspelt"}"#, "JWT_KEY"),
        (r#"{"TABLE_NAME": "t"}"#, "TABLE_NAME"),
    ] {
        let err = load(&[], FakeSource::new(raw), clock()).await.unwrap_err();
        assert_eq!(err.var, field, "{raw}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
    // A bad value for a known key is found by the parser of that configuration.
    let secrets = load(
        &[],
        FakeSource::new(&doc(&[("JWT_VERIFY_KEYS", "k1:AAEC")])),
        clock(),
    )
    .await
    .unwrap();
    let err = EdgeConfig::from_env(&secrets.env()).unwrap_err();
    assert_eq!(
        err,
        ConfigError::new(
            "JWT_VERIFY_KEYS",
            "JWT key \"k1\" must be 32 bytes (an Ed25519 private key seed or public key)"
        )
    );
}

#[tokio::test]
async fn an_unreadable_secret_or_a_bad_refresh_interval_stops_start_up() {
    let source = FakeSource::new("{}");
    source.set(Err("AccessDeniedException"));
    let err = load(&[], source, clock()).await.unwrap_err();
    assert_eq!(err.var, SECRET_ID_VAR);
    assert_eq!(err.reason, "cannot read the secret: AccessDeniedException");
    for bad in ["59", "3601", "soon"] {
        let err = load(&[(REFRESH_VAR, bad)], FakeSource::new("{}"), clock())
            .await
            .unwrap_err();
        assert_eq!(
            err,
            ConfigError::new(REFRESH_VAR, "must be a whole number 60..=3600")
        );
    }
}

/// A token auth signs with `seed` (a `JWT_SIGNING_KEYS` entry whose public half is `public`).
fn token_signed_with(seed: &str, public: &str, now: bastion_core::Timestamp) -> String {
    let keys = parse_jwt_signer(&map_env(&[
        ("JWT_SIGNING_KEYS", seed),
        ("JWT_VERIFY_KEYS", public),
    ]))
    .unwrap();
    let user = bastion_core::UserId::generate();
    let session = bastion_core::SessionId::generate();
    keys.issue(&user, &session, &[], now).unwrap().0
}

/// A token signed by an auth instance that already made `k2` current.
fn token_signed_with_k2(now: bastion_core::Timestamp) -> String {
    token_signed_with(K2_SEED, K2, now)
}

fn jwt_rotation(jwt: Live<JwtKeys>) -> impl Fn(&dyn Env) -> Result<(), ConfigError> {
    move |env: &dyn Env| {
        let keys = parse_jwt(env)?;
        jwt.store(keys);
        Ok(())
    }
}

#[tokio::test]
async fn a_jwt_key_added_verify_only_is_honoured_after_one_refresh_and_a_retired_one_is_not() {
    let clock = clock();
    let source = FakeSource::new(&doc(&[("JWT_VERIFY_KEYS", K1)]));
    let secrets = load(&[], source.clone(), clock.clone()).await.unwrap();
    let config = EdgeConfig::from_env(&secrets.env()).unwrap();
    secrets.on_refresh(jwt_rotation(config.jwt.clone()));
    let token = token_signed_with_k2(clock.now());
    let old = token_signed_with(K1_SEED, K1, clock.now());
    assert!(config.jwt.load().verify(&token, clock.now()).is_err());
    assert!(config.jwt.load().verify(&old, clock.now()).is_ok());

    source.set(Ok(&doc(&[("JWT_VERIFY_KEYS", &format!("{K1},{K2}"))])));
    secrets.refresh().await.unwrap();
    assert!(config.jwt.load().verify(&token, clock.now()).is_ok());
    assert!(config.jwt.load().verify(&old, clock.now()).is_ok());

    // Retired: k1 is gone from the list, so its tokens are refused.
    source.set(Ok(&doc(&[("JWT_VERIFY_KEYS", K2)])));
    secrets.refresh().await.unwrap();
    assert!(config.jwt.load().verify(&token, clock.now()).is_ok());
    assert!(config.jwt.load().verify(&old, clock.now()).is_err());
}

#[tokio::test]
async fn the_retired_hs256_jwt_keys_stop_start_up_in_the_document_and_the_plain_environment() {
    let source = FakeSource::new(&doc(&[("JWT_VERIFY_KEYS", K1), ("JWT_KEYS", K1_SEED)]));
    let e = load(&[], source, clock()).await.unwrap_err();
    assert_eq!(e.var, "JWT_KEYS");
    assert!(e.reason.contains("JWT_SIGNING_KEYS"), "{}", e.reason);
    assert!(!e.to_string().contains("AAECAw"));
    let source = FakeSource::new(&doc(&[("JWT_VERIFY_KEYS", K1)]));
    let e = load(&[("JWT_KEYS", K1_SEED)], source, clock())
        .await
        .unwrap_err();
    assert_eq!(e.var, "JWT_KEYS");
    assert!(!e.to_string().contains("AAECAw"));
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_last_good_configuration() {
    let clock = clock();
    let source = FakeSource::new(&doc(&[("JWT_VERIFY_KEYS", &format!("{K1},{K2}"))]));
    let secrets = load(&[], source.clone(), clock.clone()).await.unwrap();
    let config = EdgeConfig::from_env(&secrets.env()).unwrap();
    secrets.on_refresh(jwt_rotation(config.jwt.clone()));
    let token = token_signed_with_k2(clock.now());

    source.set(Err("ThrottlingException"));
    assert_eq!(
        secrets.refresh().await,
        Err(RefreshError::Fetch(SourceError(
            "ThrottlingException".into()
        )))
    );
    source.set(Ok("{\"JWT_VERIFY_KEYS\": 7}"));
    assert_eq!(
        secrets.refresh().await.unwrap_err().to_string(),
        "configuration JWT_VERIFY_KEYS: must be a string in the secret document"
    );
    // Parses as a document but not as configuration: nothing is swapped, not even the document.
    source.set(Ok(&doc(&[("JWT_VERIFY_KEYS", "k1:AAEC")])));
    assert!(matches!(
        secrets.refresh().await,
        Err(RefreshError::Config(ConfigError { ref var, .. })) if var == "JWT_VERIFY_KEYS"
    ));
    assert!(config.jwt.load().verify(&token, clock.now()).is_ok());
    assert_eq!(
        secrets.env().get("JWT_VERIFY_KEYS"),
        Some(format!("{K1},{K2}"))
    );
}

#[tokio::test]
async fn a_request_after_the_interval_starts_one_background_refresh_and_earlier_ones_none() {
    let clock = clock();
    let source = FakeSource::new(&doc(&[("JWT_VERIFY_KEYS", K1)]));
    let secrets = load(&[(REFRESH_VAR, "60")], source.clone(), clock.clone())
        .await
        .unwrap();
    source.set(Ok(&doc(&[("JWT_VERIFY_KEYS", K2)])));
    clock.advance(59);
    secrets.poke();
    tokio::task::yield_now().await;
    assert_eq!(secrets.env().get("JWT_VERIFY_KEYS").as_deref(), Some(K1));
    clock.advance(1);
    secrets.poke();
    for _ in 0..100 {
        if secrets.env().get("JWT_VERIFY_KEYS").as_deref() == Some(K2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(secrets.env().get("JWT_VERIFY_KEYS").as_deref(), Some(K2));
}

#[test]
fn the_document_debug_lists_names_only() {
    let d = SecretDocument::parse(&doc(&[("JWT_VERIFY_KEYS", "super-secret")])).unwrap();
    assert_eq!(format!("{d:?}"), "SecretDocument([\"JWT_VERIFY_KEYS\"])");
}
