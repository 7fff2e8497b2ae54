//! Secrets in Lambda: one Secrets Manager JSON document (named by `BASTION_SECRET_ID`) overlaid
//! on the plain environment, fetched once at init and refreshed in the background so rotated
//! keys take effect without a redeploy. Outside Lambda the process environment is used as is.
//!
//! A refresh is bounded ([`REFRESH_TIMEOUT`], under the shortest interval) so one that hangs on
//! a connection a Lambda freeze left half-open ends, and the next is tried 30 s later (doubling
//! while it keeps failing, never later than the interval). Every refresh writes a metric line:
//! `SecretRefreshFailures` and `SecretAgeSeconds` (how old the document in force is), which the
//! template alarms on.
//!
//! A function may be confined to a document of its own holding only the names it uses (exec's:
//! [`Runtime::init_scoped`]); any other name in it stops start-up, so pointing that function at
//! the main document fails closed instead of handing it every key.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bastion_core::Clock;
use bastion_core::config::{
    ConfigError, Env, Live, ProcessEnv, SECRET_NAMES, bounded, is_secret_name, retired_secret,
};
use secrecy::{ExposeSecret, SecretString};
use tracing::Level;

use crate::logging::{LineSink, Metric, Metrics, Stdout};

/// Names the secret document; required in Lambda.
pub const SECRET_ID_VAR: &str = "BASTION_SECRET_ID";
/// Seconds between refreshes of the document.
pub const REFRESH_VAR: &str = "SECRET_REFRESH_SECS";
/// Set by the Lambda service in every function's environment.
pub const LAMBDA_RUNTIME_VAR: &str = "AWS_LAMBDA_RUNTIME_API";
/// The CloudWatch namespace of the refresh metrics; the template sets `Bastion/<env>`.
pub const METRICS_NAMESPACE_VAR: &str = "METRICS_NAMESPACE";
const DEFAULT_NAMESPACE: &str = "Bastion/local";
/// CloudWatch's limit on a namespace.
const MAX_NAMESPACE_CHARS: usize = 255;

/// The longest a read of the document (fetch, parse, apply) may take, at start-up or in a
/// refresh: under the shortest refresh interval (60 s), so a hung read ends before the next is
/// due. The SDK's own bound on `GetSecretValue` is shorter still ([`crate::sdk`]); this one also
/// covers whatever lies outside the SDK's timers.
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(10);
/// The bounds of `SECRET_REFRESH_SECS`.
const MIN_INTERVAL_SECS: i64 = 60;
const MAX_INTERVAL_SECS: i64 = 3600;
const _: () = assert!(REFRESH_TIMEOUT.as_secs() < MIN_INTERVAL_SECS.unsigned_abs());
// The SDK gives up on `GetSecretValue` first, with the more telling error.
const _: () = assert!(crate::sdk::SECRETS_OPERATION_TIMEOUT.as_secs() < REFRESH_TIMEOUT.as_secs());
/// After a failed refresh the next is due this much later, doubling with each further failure
/// and never later than the interval: a revoked key is not kept a whole interval longer for one
/// lost call.
const RETRY_AFTER_SECS: i64 = 30;

/// Why the secret could not be read; never holds a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// Where the secret document comes from: Secrets Manager, or a fake in tests.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The document's text (a JSON object).
    async fn fetch(&self) -> Result<SecretString, SourceError>;
}

/// `GetSecretValue` on the process's shared AWS configuration.
pub struct SecretsManagerSource {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

impl SecretsManagerSource {
    pub fn new(sdk: &aws_types::SdkConfig, secret_id: impl Into<String>) -> Self {
        Self {
            client: aws_sdk_secretsmanager::Client::from_conf(crate::sdk::secrets_manager_config(
                sdk,
            )),
            secret_id: secret_id.into(),
        }
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSource {
    async fn fetch(&self) -> Result<SecretString, SourceError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| {
                use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
                // The service's code and message only: the full context dumps the raw response.
                let why = match e.as_service_error() {
                    Some(se) => format!(
                        "{}: {}",
                        se.code().unwrap_or("unknown error"),
                        se.message().unwrap_or("")
                    ),
                    None => aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
                };
                SourceError(format!("GetSecretValue failed: {why}"))
            })?;
        out.secret_string()
            .map(|s| SecretString::from(s.to_owned()))
            .ok_or_else(|| {
                SourceError("the secret has no SecretString (binary secrets are not read)".into())
            })
    }
}

/// The parsed secret document: secret names to values. Debug shows the names only.
#[derive(Clone, Default)]
pub struct SecretDocument(HashMap<String, SecretString>);

impl std::fmt::Debug for SecretDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.0.keys().collect();
        names.sort();
        f.debug_tuple("SecretDocument").field(&names).finish()
    }
}

impl SecretDocument {
    /// A JSON object whose keys are secret names ([`SECRET_NAMES`]) and whose values are strings.
    /// An unknown key is refused too: a misspelt optional secret would otherwise silently turn a
    /// platform off. Errors name the key, never a value.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        Self::parse_for(raw, &SECRET_NAMES)
    }

    /// [`SecretDocument::parse`] for a function that uses only `allowed` (secret names): any
    /// other name, even a valid one, is refused naming it, never its value.
    pub fn parse_for(raw: &str, allowed: &[&str]) -> Result<Self, ConfigError> {
        let value: serde_json::Value = serde_json::from_str(raw).map_err(|_| {
            ConfigError::new(SECRET_ID_VAR, "the secret document is not valid JSON")
        })?;
        let serde_json::Value::Object(object) = value else {
            return Err(ConfigError::new(
                SECRET_ID_VAR,
                "the secret document must be a JSON object of string values",
            ));
        };
        let mut out = HashMap::new();
        for (key, value) in object {
            if let Some(why) = retired_secret(&key) {
                return Err(ConfigError::new(key, why));
            }
            if !is_secret_name(&key) {
                return Err(ConfigError::new(
                    key,
                    format!(
                        "is not a secret name the secret document may hold; known: {}",
                        SECRET_NAMES.join(", ")
                    ),
                ));
            }
            if !allowed.contains(&key.as_str()) {
                return Err(ConfigError::new(
                    key,
                    format!(
                        "is not used by this function and must not be in its secret document; it may hold only: {}",
                        allowed.join(", ")
                    ),
                ));
            }
            let serde_json::Value::String(s) = value else {
                return Err(ConfigError::new(
                    key,
                    "must be a string in the secret document",
                ));
            };
            out.insert(key, SecretString::from(s));
        }
        Ok(Self(out))
    }

    pub fn names(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }
}

/// The plain environment for every non-secret name, the document for every secret name.
#[derive(Clone)]
pub struct OverlayEnv {
    plain: Arc<dyn Env>,
    document: Arc<SecretDocument>,
}

impl OverlayEnv {
    pub fn new(plain: Arc<dyn Env>, document: Arc<SecretDocument>) -> Self {
        Self { plain, document }
    }
}

impl Env for OverlayEnv {
    fn get(&self, key: &str) -> Option<String> {
        if is_secret_name(key) {
            self.document
                .0
                .get(key)
                .map(|v| v.expose_secret().to_owned())
        } else {
            self.plain.get(key)
        }
    }

    fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .plain
            .keys()
            .into_iter()
            .filter(|k| !is_secret_name(k))
            .collect();
        keys.extend(self.document.names());
        keys
    }
}

/// Refuses a secret found in the plain Lambda environment (readable by anyone allowed
/// `lambda:GetFunctionConfiguration`), naming it and never echoing its value.
pub fn refuse_plain_secrets(plain: &dyn Env) -> Result<(), ConfigError> {
    let retired = bastion_core::config::RETIRED_SECRET_NAMES.map(|(name, _)| name);
    let mut names = SECRET_NAMES.iter().chain(retired.iter());
    match names.find(|name| plain.get(name).is_some()) {
        None => Ok(()),
        Some(name) => Err(ConfigError::new(
            *name,
            format!(
                "is a secret and must not be in the Lambda environment; put it in the Secrets Manager document named by {SECRET_ID_VAR}"
            ),
        )),
    }
}

/// Re-parses every rotatable configuration from a new overlay and swaps it in only when all of
/// it parsed; returns the first error otherwise (nothing swapped).
pub type Apply = dyn Fn(&dyn Env) -> Result<(), ConfigError> + Send + Sync;

/// Why a refresh was not applied; the last good configuration stays in force.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    #[error("cannot read the secret: {0}")]
    Fetch(#[from] SourceError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the secret was not read within {} s", .0.as_secs())]
    TimedOut(Duration),
}

/// The secret overlay in force and the machinery that refreshes it.
pub struct SecretConfig {
    plain: Arc<dyn Env>,
    source: Arc<dyn SecretSource>,
    document: Live<SecretDocument>,
    clock: Arc<dyn Clock>,
    interval_secs: i64,
    /// The names this function's document may hold.
    allowed: &'static [&'static str],
    last_attempt: AtomicI64,
    /// When the document in force was read.
    last_good: AtomicI64,
    /// Refreshes failed in a row since the last good one.
    failures: AtomicU32,
    refreshing: AtomicBool,
    apply: Mutex<Option<Arc<Apply>>>,
    metrics: Metrics,
}

impl std::fmt::Debug for SecretConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretConfig")
            .field("document", &self.document)
            .field("interval_secs", &self.interval_secs)
            .finish_non_exhaustive()
    }
}

impl SecretConfig {
    /// Refuses secrets in `plain`, reads `SECRET_REFRESH_SECS`, then fetches and parses the
    /// document once. Any failure stops start-up, naming the variable or document key. Metric
    /// lines go to stdout.
    pub async fn load(
        plain: Arc<dyn Env>,
        source: Arc<dyn SecretSource>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, ConfigError> {
        Self::load_scoped(plain, source, clock, &SECRET_NAMES).await
    }

    /// [`SecretConfig::load`] for a document that may hold only `allowed`, at start-up and on
    /// every refresh (a refreshed document with another name is refused, the last good kept).
    pub async fn load_scoped(
        plain: Arc<dyn Env>,
        source: Arc<dyn SecretSource>,
        clock: Arc<dyn Clock>,
        allowed: &'static [&'static str],
    ) -> Result<Arc<Self>, ConfigError> {
        Self::load_reporting(plain, source, clock, allowed, Arc::new(Stdout)).await
    }

    /// [`Self::load_scoped`], writing the metric lines to `sink`.
    pub async fn load_reporting(
        plain: Arc<dyn Env>,
        source: Arc<dyn SecretSource>,
        clock: Arc<dyn Clock>,
        allowed: &'static [&'static str],
        sink: Arc<dyn LineSink>,
    ) -> Result<Arc<Self>, ConfigError> {
        refuse_plain_secrets(plain.as_ref())?;
        let interval_secs = bounded(
            plain.as_ref(),
            REFRESH_VAR,
            300,
            MIN_INTERVAL_SECS..=MAX_INTERVAL_SECS,
        )?;
        let namespace = namespace(plain.as_ref())?;
        let unreadable =
            |why: String| ConfigError::new(SECRET_ID_VAR, format!("cannot read the secret: {why}"));
        let raw = tokio::time::timeout(REFRESH_TIMEOUT, source.fetch())
            .await
            .map_err(|_| unreadable(RefreshError::TimedOut(REFRESH_TIMEOUT).to_string()))?
            .map_err(|e| unreadable(e.to_string()))?;
        let document = SecretDocument::parse_for(raw.expose_secret(), allowed)?;
        let now = clock.now().secs();
        Ok(Arc::new(Self {
            plain,
            source,
            document: Live::new(document),
            metrics: Metrics::new(namespace, clock.clone(), sink),
            clock,
            interval_secs,
            allowed,
            last_attempt: AtomicI64::new(now),
            last_good: AtomicI64::new(now),
            failures: AtomicU32::new(0),
            refreshing: AtomicBool::new(false),
            apply: Mutex::new(None),
        }))
    }

    /// The configuration in force: the plain environment overlaid with the last good document.
    pub fn env(&self) -> OverlayEnv {
        OverlayEnv::new(self.plain.clone(), self.document.load())
    }

    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_secs.unsigned_abs())
    }

    /// What a refresh does with a new document (see [`Apply`]); set once the state exists.
    pub fn on_refresh(
        &self,
        apply: impl Fn(&dyn Env) -> Result<(), ConfigError> + Send + Sync + 'static,
    ) {
        *self.apply.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(apply));
    }

    /// Fetches and parses the document and applies it, within [`REFRESH_TIMEOUT`]. On any
    /// failure nothing changes. Either way the outcome is logged and counted (see
    /// [`Self::record`]).
    pub async fn refresh(&self) -> Result<(), RefreshError> {
        let outcome = tokio::time::timeout(REFRESH_TIMEOUT, self.fetch_and_apply())
            .await
            .unwrap_or(Err(RefreshError::TimedOut(REFRESH_TIMEOUT)));
        self.record(&outcome);
        outcome
    }

    async fn fetch_and_apply(&self) -> Result<(), RefreshError> {
        let raw = self.source.fetch().await?;
        let document = Arc::new(SecretDocument::parse_for(
            raw.expose_secret(),
            self.allowed,
        )?);
        let env = OverlayEnv::new(self.plain.clone(), document.clone());
        let apply = self
            .apply
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(apply) = apply {
            apply(&env)?;
        }
        self.document.store(Arc::unwrap_or_clone(document));
        Ok(())
    }

    /// Logs the outcome of a refresh and writes its metric line: one failure or none, and the
    /// age of the document in force (0 once a new one is in).
    fn record(&self, outcome: &Result<(), RefreshError>) {
        let now = self.clock.now().secs();
        let (level, label, failed, age) = match outcome {
            Ok(()) => {
                self.last_good.store(now, Ordering::Release);
                self.failures.store(0, Ordering::Release);
                tracing::info!(
                    event = "secret_refresh",
                    outcome = "applied",
                    "secret document refreshed"
                );
                (Level::INFO, "applied", 0.0, 0)
            }
            Err(e) => {
                let failures = self
                    .failures
                    .fetch_add(1, Ordering::AcqRel)
                    .saturating_add(1);
                let age = now
                    .saturating_sub(self.last_good.load(Ordering::Acquire))
                    .max(0);
                tracing::warn!(
                    event = "secret_refresh",
                    outcome = "kept_last_good",
                    error = %e,
                    failures,
                    age_secs = age,
                    "secret refresh failed; the last good configuration stays in force"
                );
                (Level::WARN, "kept_last_good", 1.0, age)
            }
        };
        self.metrics.emit(
            level,
            &[("metric", "secret_refresh"), ("outcome", label)],
            &[
                Metric {
                    name: "SecretRefreshFailures",
                    unit: "Count",
                    value: failed,
                },
                // Whole seconds: exact in an f64 for any age a process can reach.
                Metric {
                    name: "SecretAgeSeconds",
                    unit: "Seconds",
                    value: age as f64,
                },
            ],
        );
    }

    /// Seconds from one attempt to the next: the interval after a good refresh, a backoff from
    /// [`RETRY_AFTER_SECS`] after failures.
    fn wait_secs(&self) -> i64 {
        match self.failures.load(Ordering::Acquire) {
            0 => self.interval_secs,
            n => RETRY_AFTER_SECS
                .saturating_mul(1_i64 << (n - 1).min(6))
                .min(self.interval_secs),
        }
    }

    /// Starts a background refresh when the last attempt is older than the wait and none is
    /// running. Never waits: the request that notices staleness is served with what is in force.
    pub fn poke(self: &Arc<Self>) {
        let now = self.clock.now().secs();
        let last = self.last_attempt.load(Ordering::Acquire);
        if now.saturating_sub(last) < self.wait_secs()
            || self.refreshing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        self.last_attempt.store(now, Ordering::Release);
        let this = Arc::clone(self);
        tokio::spawn(async move {
            // Logged and counted by `refresh`; the last good configuration stays on failure.
            let _ = this.refresh().await;
            this.refreshing.store(false, Ordering::Release);
        });
    }

    /// A timer that pokes every [`RETRY_AFTER_SECS`] (the poke decides whether a refresh is
    /// due, so a backoff is honoured without requests). A frozen Lambda instance does not run
    /// it, so the edge also pokes on every request; together a thawed instance refreshes on its
    /// first request after the wait.
    pub fn spawn_timer(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let tick = Duration::from_secs(RETRY_AFTER_SECS.unsigned_abs());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(tick).await;
                match weak.upgrade() {
                    Some(this) => this.poke(),
                    None => return,
                }
            }
        });
    }
}

/// The metrics namespace: the template's `Bastion/<env>`, `Bastion/local` when unset.
fn namespace(plain: &dyn Env) -> Result<String, ConfigError> {
    match plain.non_empty(METRICS_NAMESPACE_VAR) {
        None => Ok(DEFAULT_NAMESPACE.to_owned()),
        Some(n) if n.chars().count() <= MAX_NAMESPACE_CHARS => Ok(n),
        Some(_) => Err(ConfigError::new(
            METRICS_NAMESPACE_VAR,
            format!("must be at most {MAX_NAMESPACE_CHARS} characters"),
        )),
    }
}

/// How a function binary gets its configuration: in Lambda the secret overlay, elsewhere the
/// process environment. Holds the one AWS configuration every client shares (one HTTPS client,
/// one trust store): pass `&runtime.sdk` to any `aws_sdk_*::Client::new`.
pub struct Runtime {
    pub sdk: aws_types::SdkConfig,
    pub secrets: Option<Arc<SecretConfig>>,
}

impl Runtime {
    /// Builds the AWS configuration from the Lambda environment (see [`crate::sdk`]) and, in
    /// Lambda (`AWS_LAMBDA_RUNTIME_API` set), loads the secret document named by
    /// `BASTION_SECRET_ID` (required there) with one `GetSecretValue`.
    pub async fn init(clock: Arc<dyn Clock>) -> Result<Self, ConfigError> {
        Self::init_scoped(clock, &SECRET_NAMES).await
    }

    /// [`Runtime::init`] for a function whose document may hold only `allowed` (see
    /// [`SecretConfig::load_scoped`]).
    pub async fn init_scoped(
        clock: Arc<dyn Clock>,
        allowed: &'static [&'static str],
    ) -> Result<Self, ConfigError> {
        let plain: Arc<dyn Env> = Arc::new(ProcessEnv);
        let in_lambda = plain.non_empty(LAMBDA_RUNTIME_VAR).is_some();
        if in_lambda {
            // Before any network call: a leaked secret must stop start-up even if AWS is down.
            refuse_plain_secrets(plain.as_ref())?;
        }
        let http = crate::sdk::http_client(crate::tls::roots())?;
        let sdk = crate::sdk::from_env(plain.as_ref(), http)?;
        let secrets = if in_lambda {
            let secret_id = plain.required(SECRET_ID_VAR)?;
            let source = Arc::new(SecretsManagerSource::new(&sdk, secret_id));
            Some(SecretConfig::load_scoped(plain, source, clock, allowed).await?)
        } else {
            None
        };
        Ok(Self { sdk, secrets })
    }

    /// The configuration to build every component from.
    pub fn env(&self) -> Box<dyn Env> {
        match &self.secrets {
            Some(s) => Box::new(s.env()),
            None => Box::new(ProcessEnv),
        }
    }

    /// Registers what a refresh re-parses and swaps, and starts the refresh timer. Outside
    /// Lambda there is nothing to refresh and `apply` is dropped.
    pub fn on_refresh(
        &self,
        apply: impl Fn(&dyn Env) -> Result<(), ConfigError> + Send + Sync + 'static,
    ) {
        if let Some(s) = &self.secrets {
            s.on_refresh(apply);
            s.spawn_timer();
        }
    }
}

#[cfg(test)]
#[path = "secrets_tests.rs"]
mod tests;
