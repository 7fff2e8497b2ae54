//! Unit tests of the secret overlay against a fake source: refusal, malformed documents,
//! rotation through a refresh, a failed refresh keeping the last good configuration; and against
//! a Secrets Manager on 127.0.0.1 that never answers: the refresh's bound, the SDK's, the metric
//! line and the backoff.

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

/// The metric lines a configuration wrote.
#[derive(Default)]
struct Lines(Mutex<Vec<String>>);

impl LineSink for Lines {
    fn write_line(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_owned());
    }
}

impl Lines {
    fn take(&self) -> Vec<serde_json::Value> {
        std::mem::take(&mut *self.0.lock().unwrap())
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

async fn load_counted(
    plain: &[(&str, &str)],
    source: Arc<dyn SecretSource>,
    clock: Arc<ManualClock>,
) -> Result<(Arc<SecretConfig>, Arc<Lines>), ConfigError> {
    let lines = Arc::new(Lines::default());
    let secrets = SecretConfig::load_reporting(
        Arc::new(map_env(plain)),
        source,
        clock,
        &SECRET_NAMES,
        lines.clone(),
    )
    .await?;
    Ok((secrets, lines))
}

async fn load(
    plain: &[(&str, &str)],
    source: Arc<dyn SecretSource>,
    clock: Arc<ManualClock>,
) -> Result<Arc<SecretConfig>, ConfigError> {
    Ok(load_counted(plain, source, clock).await?.0)
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

/// A Secrets Manager on 127.0.0.1 that accepts every connection and, until it is given a
/// document, never answers: the half-open connection a long Lambda freeze leaves behind.
struct FakeSecretsManager {
    addr: std::net::SocketAddr,
    answer: Arc<Mutex<Option<String>>>,
}

impl FakeSecretsManager {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = Arc::new(Mutex::new(None::<String>));
        let shared = answer.clone();
        std::thread::spawn(move || {
            // Held, never read or written: the peer's call waits for bytes that never come.
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                let next = shared.lock().unwrap().clone();
                match next {
                    None => held.push(stream),
                    Some(document) => {
                        std::thread::spawn(move || answer_get_secret_value(stream, &document));
                    }
                }
            }
        });
        Self { addr, answer }
    }

    fn hang(&self) {
        *self.answer.lock().unwrap() = None;
    }

    fn answer(&self, document: &str) {
        *self.answer.lock().unwrap() = Some(document.to_owned());
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Reads one request (headers, then `Content-Length` bytes) and answers it the way
/// `GetSecretValue` does (awsJson 1.1), then closes.
fn answer_get_secret_value(stream: std::net::TcpStream, document: &str) {
    use std::io::{BufRead, Read, Write};
    let mut reader = std::io::BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let reply = serde_json::json!({
        "ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:bastion-AbCdEf",
        "Name": "bastion",
        "VersionId": "00000000-0000-0000-0000-000000000002",
        "SecretString": document,
    })
    .to_string();
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    );
}

/// Asks the fake over a bare TCP connection with no timeout of its own, so only the refresh's
/// own bound can end a call the server never answers.
struct TcpSource(std::net::SocketAddr);

#[async_trait]
impl SecretSource for TcpSource {
    async fn fetch(&self) -> Result<SecretString, SourceError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let io = |e: std::io::Error| SourceError(e.to_string());
        let mut stream = tokio::net::TcpStream::connect(self.0).await.map_err(io)?;
        stream
            .write_all(b"POST / HTTP/1.1\r\nHost: secretsmanager\r\nContent-Length: 2\r\n\r\n{}")
            .await
            .map_err(io)?;
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.map_err(io)?;
        let (_, body) = raw.split_once("\r\n\r\n").unwrap();
        let reply: serde_json::Value = serde_json::from_str(body).unwrap();
        Ok(SecretString::from(
            reply["SecretString"].as_str().unwrap().to_owned(),
        ))
    }
}

/// Long enough for any bound the code sets; on the paused clock it costs no real time.
const NEVER: Duration = Duration::from_secs(24 * 3600);

/// The metric line of one refresh: `(outcome, level, failures, age)`, after checking it is EMF
/// under the configured namespace.
fn refresh_metrics(line: &serde_json::Value) -> (String, String, f64, f64) {
    assert_eq!(
        line["_aws"]["CloudWatchMetrics"],
        serde_json::json!([{
            "Namespace": "Bastion/test",
            "Dimensions": [[]],
            "Metrics": [
                {"Name": "SecretRefreshFailures", "Unit": "Count"},
                {"Name": "SecretAgeSeconds", "Unit": "Seconds"},
            ],
        }]),
        "{line}"
    );
    assert_eq!(line["metric"], "secret_refresh");
    (
        line["outcome"].as_str().unwrap().to_owned(),
        line["level"].as_str().unwrap().to_owned(),
        line["SecretRefreshFailures"].as_f64().unwrap(),
        line["SecretAgeSeconds"].as_f64().unwrap(),
    )
}

const NAMESPACE: (&str, &str) = (METRICS_NAMESPACE_VAR, "Bastion/test");

#[tokio::test]
async fn a_refresh_from_a_secrets_manager_that_never_answers_ends_by_itself_and_the_next_good_one_is_installed()
 {
    let server = FakeSecretsManager::start();
    server.answer(&doc(&[("JWT_VERIFY_KEYS", K1)]));
    let clock = clock();
    let source = Arc::new(TcpSource(server.addr));
    let (secrets, lines) = load_counted(&[NAMESPACE], source, clock.clone())
        .await
        .unwrap();

    server.hang();
    clock.advance(300);
    tokio::time::pause();
    let outcome = tokio::time::timeout(NEVER, secrets.refresh()).await;
    assert_eq!(
        outcome,
        Ok(Err(RefreshError::TimedOut(REFRESH_TIMEOUT))),
        "the refresh did not end by itself"
    );
    assert_eq!(secrets.env().get("JWT_VERIFY_KEYS").as_deref(), Some(K1));
    let counted = lines.take();
    assert_eq!(counted.len(), 1);
    assert_eq!(
        refresh_metrics(&counted[0]),
        ("kept_last_good".into(), "WARN".into(), 1.0, 300.0)
    );

    server.answer(&doc(&[("JWT_VERIFY_KEYS", K2)]));
    tokio::time::resume();
    clock.advance(30);
    secrets.refresh().await.unwrap();
    assert_eq!(secrets.env().get("JWT_VERIFY_KEYS").as_deref(), Some(K2));
    let counted = lines.take();
    assert_eq!(counted.len(), 1);
    assert_eq!(
        refresh_metrics(&counted[0]),
        ("applied".into(), "INFO".into(), 0.0, 0.0)
    );
}

#[tokio::test]
async fn the_age_of_the_document_in_force_grows_with_each_failed_refresh_and_restarts_at_a_good_one()
 {
    let clock = clock();
    let source = FakeSource::new(&doc(&[("JWT_VERIFY_KEYS", K1)]));
    let (secrets, lines) = load_counted(&[NAMESPACE], source.clone(), clock.clone())
        .await
        .unwrap();
    source.set(Err("ThrottlingException"));
    for _ in 0..3 {
        clock.advance(300);
        assert!(secrets.refresh().await.is_err());
    }
    source.set(Ok(&doc(&[("JWT_VERIFY_KEYS", K2)])));
    clock.advance(30);
    secrets.refresh().await.unwrap();
    let ages: Vec<_> = lines
        .take()
        .iter()
        .map(refresh_metrics)
        .map(|m| m.3)
        .collect();
    // The third is past two intervals (> 600 s): the template's alarm fires on it.
    assert_eq!(ages, vec![300.0, 600.0, 900.0, 0.0]);
}

#[tokio::test]
async fn after_a_failed_refresh_the_next_is_due_in_30_s_doubling_up_to_the_interval() {
    let clock = clock();
    let source = FakeSource::new(&doc(&[("JWT_VERIFY_KEYS", K1)]));
    let secrets = load(&[(REFRESH_VAR, "300")], source.clone(), clock.clone())
        .await
        .unwrap();
    assert_eq!(secrets.wait_secs(), 300);
    source.set(Err("ThrottlingException"));
    let mut waits = Vec::new();
    for _ in 0..6 {
        assert!(secrets.refresh().await.is_err());
        waits.push(secrets.wait_secs());
    }
    assert_eq!(waits, vec![30, 60, 120, 240, 300, 300]);
    source.set(Ok(&doc(&[("JWT_VERIFY_KEYS", K2)])));
    secrets.refresh().await.unwrap();
    assert_eq!(secrets.wait_secs(), 300);
}

#[tokio::test(start_paused = true)]
async fn the_timer_starts_a_due_refresh_within_30_s_without_any_request() {
    let clock = clock();
    let source = FakeSource::new(&doc(&[("JWT_VERIFY_KEYS", K1)]));
    let secrets = load(&[(REFRESH_VAR, "300")], source.clone(), clock.clone())
        .await
        .unwrap();
    secrets.spawn_timer();
    source.set(Ok(&doc(&[("JWT_VERIFY_KEYS", K2)])));
    clock.advance(300);
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert_eq!(secrets.env().get("JWT_VERIFY_KEYS").as_deref(), Some(K1));
    tokio::time::sleep(Duration::from_secs(2)).await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(secrets.env().get("JWT_VERIFY_KEYS").as_deref(), Some(K2));
}

#[tokio::test]
async fn a_request_30_s_after_a_timed_out_refresh_starts_the_next_one() {
    let server = FakeSecretsManager::start();
    server.answer(&doc(&[("JWT_VERIFY_KEYS", K1)]));
    let clock = clock();
    let source = Arc::new(TcpSource(server.addr));
    let secrets = load(&[(REFRESH_VAR, "60")], source, clock.clone())
        .await
        .unwrap();

    server.hang();
    clock.advance(60);
    tokio::time::pause();
    secrets.poke();
    // The poked refresh runs on this runtime; the paused clock jumps to its bound.
    tokio::time::sleep(REFRESH_TIMEOUT + Duration::from_secs(1)).await;
    assert_eq!(secrets.failures.load(Ordering::Acquire), 1);
    assert!(!secrets.refreshing.load(Ordering::Acquire));

    server.answer(&doc(&[("JWT_VERIFY_KEYS", K2)]));
    tokio::time::resume();
    clock.advance(29);
    secrets.poke();
    assert!(!secrets.refreshing.load(Ordering::Acquire));
    clock.advance(1);
    secrets.poke();
    assert!(secrets.refreshing.load(Ordering::Acquire));
    for _ in 0..1000 {
        if secrets.env().get("JWT_VERIFY_KEYS").as_deref() == Some(K2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(secrets.env().get("JWT_VERIFY_KEYS").as_deref(), Some(K2));
}

fn sdk_for(server: &FakeSecretsManager) -> aws_types::SdkConfig {
    let endpoint = server.endpoint();
    let env = map_env(&[
        ("AWS_REGION", "eu-west-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret-access-key-value"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
    ]);
    let http = crate::sdk::http_client(&crate::tls::Roots::from_certs(Vec::new())).unwrap();
    crate::sdk::from_env(&env, http).unwrap()
}

#[tokio::test]
async fn the_sdk_client_gives_up_on_a_secrets_manager_that_never_answers_and_reads_one_that_does() {
    let server = FakeSecretsManager::start();
    let source = SecretsManagerSource::new(&sdk_for(&server), "bastion");

    tokio::time::pause();
    let outcome = tokio::time::timeout(NEVER, source.fetch()).await;
    let Ok(Err(SourceError(why))) = outcome else {
        panic!("GetSecretValue did not end by itself: {outcome:?}");
    };
    assert!(
        why.contains("operation timeout (all attempts including retries) occurred after 8s"),
        "{why}"
    );

    server.answer(&doc(&[("JWT_VERIFY_KEYS", K2)]));
    tokio::time::resume();
    let read = source.fetch().await.unwrap();
    assert_eq!(read.expose_secret(), doc(&[("JWT_VERIFY_KEYS", K2)]));
}

#[tokio::test]
async fn a_client_of_the_shared_configuration_gives_up_on_a_server_that_never_answers() {
    // DynamoDB, KMS and S3 clients are built from this configuration as it is.
    let server = FakeSecretsManager::start();
    let client = aws_sdk_secretsmanager::Client::new(&sdk_for(&server));
    tokio::time::pause();
    let outcome =
        tokio::time::timeout(NEVER, client.get_secret_value().secret_id("x").send()).await;
    let Ok(Err(e)) = outcome else {
        panic!("the call did not end by itself: {outcome:?}");
    };
    let why = aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string();
    assert!(
        why.contains("operation timeout (all attempts including retries) occurred after 12s"),
        "{why}"
    );
}
