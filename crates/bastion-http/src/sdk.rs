//! The AWS configuration every client of a function shares, built from what Lambda itself puts
//! in the environment (`AWS_REGION` and the execution role's `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) instead of the SDK's default provider chain:
//! that chain reads profile files and may probe IMDS or STS at start-up, none of which exists
//! in Lambda, and linking it made every bootstrap larger. One HTTPS client over the process's
//! one trust store ([`crate::tls`]) serves every SDK client.
//!
//! `AWS_ENDPOINT_URL` (the SDK's standard override) is honoured for tests against moto.
//!
//! Every call is bounded. Lambda freezes an instance with calls in flight; after a long freeze a
//! pooled connection can be half-open (the peer gave up on it, nothing tells this side), and a
//! call on it waits for bytes that never come. The attempt timeout drops such an attempt and the
//! standard retry makes the next one on a new connection; the operation timeout bounds the whole
//! call, retries included.

use std::time::Duration;

use aws_sdk_secretsmanager::config::retry::RetryConfig;
use aws_sdk_secretsmanager::config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::config::{
    BehaviorVersion, Credentials, Region, SharedCredentialsProvider, SharedHttpClient,
};
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};
use aws_types::SdkConfig;
use bastion_core::config::{ConfigError, Env};

use crate::tls::Roots;

pub const REGION_VAR: &str = "AWS_REGION";
pub const ACCESS_KEY_VAR: &str = "AWS_ACCESS_KEY_ID";
pub const SECRET_KEY_VAR: &str = "AWS_SECRET_ACCESS_KEY";
pub const SESSION_TOKEN_VAR: &str = "AWS_SESSION_TOKEN";
pub const ENDPOINT_VAR: &str = "AWS_ENDPOINT_URL";

/// The SDK's own default for a connection attempt (what `aws-config` sets).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// One attempt of a DynamoDB, KMS or S3 call. Their calls here are single items, pages of at
/// most 1 MB, transactions of a few items and objects of at most 1 MiB: milliseconds in the
/// region. An attempt cut short that had in fact committed would be retried and fail its own
/// condition, so the bound sits far above any real answer: 5 s means a dead connection, and the
/// retry on a new one still fits auth's 15 s function timeout.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole DynamoDB, KMS or S3 call, retries and backoff included: two full attempts, and under
/// the shortest function timeout (auth's 15 s) so a client gets the 503 envelope rather than a
/// Lambda timeout.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(12);
/// One `GetSecretValue` attempt: a small document, usually tens of milliseconds.
const SECRETS_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// A whole `GetSecretValue`, retries included: under the secret refresh's own bound (checked
/// there) so the SDK's error, naming the timeout, is what is logged.
pub(crate) const SECRETS_OPERATION_TIMEOUT: Duration = Duration::from_secs(8);

/// The bounds of the clients built from the shared configuration (DynamoDB, KMS, S3).
fn shared_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The bounds of the Secrets Manager client (see [`secrets_manager_config`]).
fn secrets_manager_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(SECRETS_ATTEMPT_TIMEOUT)
        .operation_timeout(SECRETS_OPERATION_TIMEOUT)
        .build()
}

/// The Secrets Manager client's configuration: the shared one with tighter bounds, since a
/// refresh runs in the background and must end well before the next one is due.
pub fn secrets_manager_config(sdk: &SdkConfig) -> aws_sdk_secretsmanager::Config {
    aws_sdk_secretsmanager::config::Builder::from(sdk)
        .timeout_config(secrets_manager_timeouts())
        .build()
}

/// The one HTTPS client for every SDK client of the process, trusting exactly `roots`.
pub fn http_client(roots: &Roots) -> Result<SharedHttpClient, ConfigError> {
    let trust = TrustStore::empty().with_pem_certificate(roots.pem().to_vec());
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| ConfigError::new("SSL_CERT_FILE", format!("trust store: {e}")))?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https())
}

/// The shared configuration from the Lambda environment. Region and credentials are required:
/// without them every AWS call would fail later and less clearly. Errors name the variable,
/// never a value.
pub fn from_env(env: &dyn Env, http: SharedHttpClient) -> Result<SdkConfig, ConfigError> {
    let region = env
        .non_empty(REGION_VAR)
        .or_else(|| env.non_empty("AWS_DEFAULT_REGION"))
        .ok_or_else(|| ConfigError::new(REGION_VAR, "is required (Lambda sets it)"))?;
    let access_key = env.required(ACCESS_KEY_VAR)?;
    let secret_key = env.required(SECRET_KEY_VAR)?;
    let session_token = env.non_empty(SESSION_TOKEN_VAR);
    let credentials = Credentials::new(
        access_key,
        secret_key,
        session_token,
        None,
        "lambda-environment",
    );
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .retry_config(RetryConfig::standard())
        .timeout_config(shared_timeouts())
        .http_client(http);
    if let Some(endpoint) = env.non_empty(ENDPOINT_VAR) {
        builder = builder.endpoint_url(endpoint);
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use aws_sdk_secretsmanager::config::ProvideCredentials;

    struct MapEnv(HashMap<String, String>);

    impl Env for MapEnv {
        fn get(&self, key: &str) -> Option<String> {
            self.0.get(key).cloned()
        }
        fn keys(&self) -> Vec<String> {
            self.0.keys().cloned().collect()
        }
    }

    fn env(pairs: &[(&str, &str)]) -> MapEnv {
        MapEnv(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    fn client() -> SharedHttpClient {
        http_client(&Roots::from_certs(Vec::new())).unwrap()
    }

    const LAMBDA: [(&str, &str); 4] = [
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret-access-key-value"),
        ("AWS_SESSION_TOKEN", "session-token-value"),
    ];

    #[tokio::test]
    async fn the_configuration_carries_lambdas_region_and_role_credentials() {
        let sdk = from_env(&env(&LAMBDA), client()).unwrap();
        assert_eq!(sdk.region().map(Region::as_ref), Some("eu-west-1"));
        assert_eq!(sdk.endpoint_url(), None);
        let creds = sdk
            .credentials_provider()
            .unwrap()
            .provide_credentials()
            .await
            .unwrap();
        assert_eq!(creds.access_key_id(), "ASIAEXAMPLE");
        assert_eq!(creds.secret_access_key(), "secret-access-key-value");
        assert_eq!(creds.session_token(), Some("session-token-value"));
        assert_eq!(sdk.timeout_config(), Some(&shared_timeouts()));
    }

    #[test]
    fn every_call_is_bounded_and_a_secret_read_more_tightly_than_the_refresh() {
        let t = shared_timeouts();
        assert_eq!(t.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert_eq!(t.operation_attempt_timeout(), Some(Duration::from_secs(5)));
        assert_eq!(t.operation_timeout(), Some(Duration::from_secs(12)));
        let sdk = from_env(&env(&LAMBDA), client()).unwrap();
        let sm = secrets_manager_config(&sdk);
        let t = sm.timeout_config().unwrap();
        assert_eq!(t.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert_eq!(t.operation_attempt_timeout(), Some(Duration::from_secs(3)));
        assert_eq!(t.operation_timeout(), Some(Duration::from_secs(8)));
        assert_eq!(sm.region().map(Region::as_ref), Some("eu-west-1"));
    }

    #[test]
    fn aws_endpoint_url_points_every_client_elsewhere() {
        let mut pairs = LAMBDA.to_vec();
        pairs.push(("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"));
        let sdk = from_env(&env(&pairs), client()).unwrap();
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:5000"));
    }

    #[test]
    fn missing_role_credentials_stop_start_up_naming_the_variable() {
        let pairs: Vec<_> = LAMBDA
            .iter()
            .copied()
            .filter(|(k, _)| *k != "AWS_SECRET_ACCESS_KEY")
            .collect();
        let err = from_env(&env(&pairs), client()).unwrap_err();
        assert_eq!(err.var, "AWS_SECRET_ACCESS_KEY");
        assert!(!format!("{err:?}").contains("ASIAEXAMPLE"));
    }

    #[test]
    fn a_missing_region_stops_start_up_naming_aws_region() {
        let pairs: Vec<_> = LAMBDA[1..].to_vec();
        let err = from_env(&env(&pairs), client()).unwrap_err();
        assert_eq!(err.var, "AWS_REGION");
    }
}
