//! What a sandbox escape in exec could take: everything exec's own secret document holds. Each
//! value is tried as token signing material (HS256 secret, Ed25519 seed, `alg: none`) and every
//! forged token must be refused by exec's and auth's keys; pointing exec at the main document
//! (which holds the signing keys) stops its start-up and its refresh.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bastion_core::crypto::JwtKeys;
use bastion_core::crypto::jwt::public_key_of;
use bastion_core::ids::{SessionId, UserId};
use bastion_core::{ManualClock, Timestamp};
use bastion_exec::config::SECRET_DOCUMENT_NAMES;
use bastion_http::config::{Env, SECRET_NAMES, map_env, parse_jwt, parse_jwt_signer};
use bastion_http::secrets::{
    OverlayEnv, RefreshError, SecretConfig, SecretDocument, SecretSource, SourceError,
};
use bastion_http::{ConfigError, EdgeConfig};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::SecretString;
use serde_json::{Value, json};

const NOW: i64 = 1_800_000_000;
/// Auth's signing key (seed 00 01 … 1f) and its public half: what infra/put-secret generates.
const SIGNING: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const VERIFY: &str = "k1:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
const SANDBOX_KEY: &str = "BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU=";

fn main_document() -> Value {
    json!({
        "JWT_SIGNING_KEYS": SIGNING,
        "JWT_VERIFY_KEYS": VERIFY,
        "PASSWORD_PEPPER": "1:CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=",
    })
}

fn exec_document() -> Value {
    json!({ "EXEC_SANDBOX_KEY": SANDBOX_KEY, "JWT_VERIFY_KEYS": VERIFY })
}

fn overlay(document: &Value) -> OverlayEnv {
    let doc = SecretDocument::parse_for(&document.to_string(), &SECRET_DOCUMENT_NAMES).unwrap();
    OverlayEnv::new(Arc::new(map_env(&[])), Arc::new(doc))
}

fn admin_claims() -> Value {
    json!({
        "iss": "bastion", "aud": "bastion-api",
        "sub": UserId::generate().to_string(), "sid": SessionId::generate().to_string(),
        "roles": ["admin"], "jti": "forged", "iat": NOW, "nbf": NOW, "exp": NOW + 600,
    })
}

fn hs256(kid: &str, secret: &[u8]) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, &admin_claims(), &EncodingKey::from_secret(secret)).unwrap()
}

/// An EdDSA token signed with `seed` as if it were a private key, naming `kid`.
fn eddsa(kid: &str, seed: &[u8]) -> Option<String> {
    let public = public_key_of(kid, seed).ok()?;
    let forger = JwtKeys::signer(
        "bastion",
        "bastion-api",
        vec![(kid.into(), seed.to_vec())],
        vec![(kid.into(), public.to_vec())],
    )
    .ok()?;
    let (token, _) = forger
        .issue(
            &UserId::generate(),
            &SessionId::generate(),
            &["admin".into()],
            Timestamp(NOW),
        )
        .ok()?;
    Some(token)
}

fn alg_none(kid: &str) -> String {
    let header =
        URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"at+jwt","kid":"{kid}"}}"#));
    let claims = URL_SAFE_NO_PAD.encode(admin_claims().to_string());
    format!("{header}.{claims}.")
}

/// Every byte string a value of the document could be used as: itself, each `id:base64` entry,
/// each entry's base64 text and its decoded bytes.
fn materials(value: &str) -> Vec<Vec<u8>> {
    let mut out = vec![value.as_bytes().to_vec()];
    for entry in value.split(',') {
        out.push(entry.as_bytes().to_vec());
        let b64 = entry.split_once(':').map_or(entry, |(_, b)| b);
        out.push(b64.as_bytes().to_vec());
        if let Ok(bytes) = STANDARD.decode(b64) {
            out.push(bytes);
        }
    }
    out
}

#[test]
fn nothing_in_execs_secret_document_mints_a_token_that_exec_chat_or_auth_accepts() {
    let exec_env = overlay(&exec_document());
    let exec = EdgeConfig::from_env(&exec_env).unwrap().jwt.load();
    let main_env = map_env(&[("JWT_SIGNING_KEYS", SIGNING), ("JWT_VERIFY_KEYS", VERIFY)]);
    let auth = parse_jwt_signer(&main_env).unwrap();
    let chat = parse_jwt(&main_env).unwrap();
    assert!(!exec.can_sign());

    // The control: a token auth issues is accepted, so the refusals below are the keys' doing.
    let (issued, _) = auth
        .issue(
            &UserId::generate(),
            &SessionId::generate(),
            &[],
            Timestamp(NOW),
        )
        .unwrap();
    assert!(exec.verify(&issued, Timestamp(NOW)).is_ok());
    assert!(chat.verify(&issued, Timestamp(NOW)).is_ok());

    let mut forged = 0;
    for name in exec_env.keys() {
        let Some(value) = exec_env.get(&name) else {
            continue;
        };
        for material in materials(&value) {
            let mut tokens = vec![hs256("k1", &material), alg_none("k1")];
            tokens.extend(eddsa("k1", &material));
            for token in tokens {
                forged += 1;
                for (who, keys) in [("exec", &*exec), ("auth", &auth), ("chat", &chat)] {
                    assert!(
                        keys.verify(&token, Timestamp(NOW)).is_err(),
                        "a token forged from {name} is accepted by {who}"
                    );
                }
            }
        }
    }
    // Per name: four materials, each an HS256 and an `alg: none` token, and the one 32-byte
    // material also an Ed25519 seed: nine forgeries.
    assert_eq!(forged, 18);
}

#[test]
fn exec_refuses_a_secret_document_holding_any_name_it_does_not_use() {
    let err = SecretDocument::parse_for(&main_document().to_string(), &SECRET_DOCUMENT_NAMES)
        .unwrap_err();
    assert_eq!(err.var, "JWT_SIGNING_KEYS");
    for name in SECRET_NAMES
        .iter()
        .filter(|n| !SECRET_DOCUMENT_NAMES.contains(n))
    {
        let mut doc = exec_document();
        doc[*name] = json!("s3cret-value");
        let err = SecretDocument::parse_for(&doc.to_string(), &SECRET_DOCUMENT_NAMES).unwrap_err();
        assert_eq!(
            err,
            ConfigError::new(
                *name,
                "is not used by this function and must not be in its secret document; it may hold only: EXEC_SANDBOX_KEY, JWT_VERIFY_KEYS"
            )
        );
        assert!(!err.to_string().contains("s3cret-value"));
    }
}

struct Source(Mutex<String>);

#[async_trait]
impl SecretSource for Source {
    async fn fetch(&self) -> Result<SecretString, SourceError> {
        Ok(SecretString::from(self.0.lock().unwrap().clone()))
    }
}

#[tokio::test]
async fn exec_pointed_at_the_main_document_fails_at_start_and_a_refresh_to_it_is_refused() {
    let plain = Arc::new(map_env(&[]));
    let clock = Arc::new(ManualClock::new(Timestamp(NOW)));
    let source = Arc::new(Source(Mutex::new(main_document().to_string())));
    let err = SecretConfig::load_scoped(
        plain.clone(),
        source.clone(),
        clock.clone(),
        &SECRET_DOCUMENT_NAMES,
    )
    .await
    .unwrap_err();
    assert_eq!(err.var, "JWT_SIGNING_KEYS");

    *source.0.lock().unwrap() = exec_document().to_string();
    let secrets = SecretConfig::load_scoped(plain, source.clone(), clock, &SECRET_DOCUMENT_NAMES)
        .await
        .unwrap();
    *source.0.lock().unwrap() = main_document().to_string();
    assert!(matches!(
        secrets.refresh().await,
        Err(RefreshError::Config(ref e)) if e.var == "JWT_SIGNING_KEYS"
    ));
    assert_eq!(secrets.env().get("JWT_SIGNING_KEYS"), None);
    assert_eq!(
        secrets.env().get("JWT_VERIFY_KEYS").as_deref(),
        Some(VERIFY)
    );
}
