//! A small local stand-in for Google's OIDC endpoints (authorize is never called: tests read
//! the redirect instead), bound to 127.0.0.1:0: a token endpoint that checks the PKCE
//! verifier, client credentials and redirect URI, and a JWKS endpoint that counts its fetches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::START;
use crate::test_only_oidc_key::{EXPONENT_B64URL, MODULUS_B64URL, PRIVATE_PKCS1_DER_B64};

pub const CLIENT_ID: &str = "bastion-test-client.apps.googleusercontent.com";
pub const CLIENT_SECRET: &str = "test-client-secret";
pub const REDIRECT_URI: &str = "https://api.example.com/auth/google/callback";
pub const RETURN_TO: &str = "https://app.example.com/signed-in";

struct Grant {
    challenge: String,
    id_token: String,
}

#[derive(Default)]
struct Inner {
    grants: HashMap<String, Grant>,
    /// Key ids the JWKS endpoint currently publishes (all for the one test key).
    kids: Vec<String>,
    jwks_fetches: usize,
}

#[derive(Clone)]
pub struct FakeGoogle {
    inner: Arc<Mutex<Inner>>,
    pub base: String,
}

impl FakeGoogle {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            kids: vec!["k1".to_owned()],
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/token", post(token))
            .route("/jwks", get(jwks))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            inner,
            base: format!("http://{addr}"),
        }
    }

    /// The `GOOGLE_*` and `OAUTH_RETURN_TO` configuration pointing at this fake.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("GOOGLE_CLIENT_ID", CLIENT_ID.to_owned()),
            ("GOOGLE_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
            ("GOOGLE_REDIRECT_URI", REDIRECT_URI.to_owned()),
            ("GOOGLE_AUTH_URL", format!("{}/authorize", self.base)),
            ("GOOGLE_TOKEN_URL", format!("{}/token", self.base)),
            ("GOOGLE_JWKS_URL", format!("{}/jwks", self.base)),
            ("OAUTH_RETURN_TO", RETURN_TO.to_owned()),
        ]
    }

    /// Makes `code` redeemable once, with the verifier matching `challenge`, for `id_token`.
    pub fn grant(&self, code: &str, challenge: &str, id_token: String) {
        self.inner.lock().unwrap().grants.insert(
            code.to_owned(),
            Grant {
                challenge: challenge.to_owned(),
                id_token,
            },
        );
    }

    pub fn publish_kids(&self, kids: &[&str]) {
        self.inner.lock().unwrap().kids = kids.iter().map(|k| (*k).to_owned()).collect();
    }

    pub fn jwks_fetches(&self) -> usize {
        self.inner.lock().unwrap().jwks_fetches
    }
}

/// Claims of a valid ID token for `sub`/`email` with `nonce`, at the tests' start time.
pub fn claims(sub: &str, email: &str, nonce: &str) -> Value {
    json!({
        "iss": "https://accounts.google.com",
        "aud": CLIENT_ID,
        "sub": sub,
        "email": email,
        "email_verified": true,
        "name": "Gina Google",
        "nonce": nonce,
        "iat": START.0,
        "exp": START.0 + 3600,
    })
}

/// `claims` signed RS256 with the test key under `kid`.
pub fn sign(claims: &Value, kid: &str) -> String {
    let der = STANDARD.decode(PRIVATE_PKCS1_DER_B64).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(&der)).unwrap()
}

/// `claims` signed HS256 (a key-confusion attempt) under `kid`.
pub fn sign_hs256(claims: &Value, kid: &str) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(MODULUS_B64URL.as_bytes()),
    )
    .unwrap()
}

fn form(body: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

async fn token(State(inner): State<Arc<Mutex<Inner>>>, body: String) -> Response {
    let f = form(&body);
    let refuse = || {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant"})),
        )
    };
    let field = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let client_ok = field("client_id") == CLIENT_ID
        && field("client_secret") == CLIENT_SECRET
        && field("redirect_uri") == REDIRECT_URI
        && field("grant_type") == "authorization_code";
    let grant = inner.lock().unwrap().grants.remove(field("code"));
    let Some(grant) = grant.filter(|_| client_ok) else {
        return refuse().into_response();
    };
    let computed = URL_SAFE_NO_PAD.encode(bastion_core::crypto::sha256(
        field("code_verifier").as_bytes(),
    ));
    if computed != grant.challenge {
        return refuse().into_response();
    }
    axum::Json(json!({
        "access_token": "ya29.fake",
        "token_type": "Bearer",
        "expires_in": 3599,
        "id_token": grant.id_token,
    }))
    .into_response()
}

async fn jwks(State(inner): State<Arc<Mutex<Inner>>>) -> axum::Json<Value> {
    let mut inner = inner.lock().unwrap();
    inner.jwks_fetches += 1;
    let keys: Vec<Value> = inner
        .kids
        .iter()
        .map(|kid| {
            json!({"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
                   "n": MODULUS_B64URL, "e": EXPONENT_B64URL})
        })
        .collect();
    axum::Json(json!({ "keys": keys }))
}
