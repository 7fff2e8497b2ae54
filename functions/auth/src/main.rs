//! The auth Lambda: wiring only. In Lambda, secrets come from the Secrets Manager document
//! named by `BASTION_SECRET_ID`; a refresh rotates the JWT keys, peppers and admin keys. Mail
//! goes through SES; TOTP secrets are sealed with KMS data keys (`KMS_KEY_ID`).

use std::sync::Arc;

use axum::Router;
use bastion_auth::config::rotate;
use bastion_auth::ses::EmailSetup;
use bastion_auth::{AuthState, router};
use bastion_core::SystemClock;
use bastion_http::secrets::Runtime;
use bastion_http::{Edge, EdgeConfig};
use bastion_store::Stores;
use bastion_store::dynamodb::DynamoStore;
use bastion_store::kms::KmsContentKeys;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    bastion_http::logging::init_lambda();
    // A failure below is reported to the Runtime API as an init error before exiting.
    bastion_http::startup::start(init()).await
}

async fn init() -> Result<Router, lambda_http::Error> {
    let clock = Arc::new(SystemClock);
    let runtime = Runtime::init(clock.clone()).await?;
    let env = runtime.env();
    let edge_config = EdgeConfig::from_env(env.as_ref())?;
    let store = DynamoStore::from_sdk(&runtime.sdk, env.as_ref())?;
    // TOTP secrets are sealed like chat content, under the same key.
    let sealer = KmsContentKeys::sealer(&runtime.sdk, env.required("KMS_KEY_ID")?, clock.clone());
    let stores = Stores::from_adapter(Arc::new(store)).with_content_sealing(sealer);
    let email = EmailSetup::from_env(env.as_ref(), Some(&runtime.sdk), None, clock.clone(), None)?;
    let edge = Edge::new(edge_config, stores, clock).with_secrets(runtime.secrets.clone());
    let state = AuthState::from_env(edge, env.as_ref())?.with_email(email.sender, email.link_base);
    let rotated = state.clone();
    runtime.on_refresh(move |env| rotate(&rotated, env));
    Ok(router(state))
}
