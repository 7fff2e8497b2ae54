//! What a deployment provides, created in the local moto server: the table (through the
//! store's own table-creation code), the Secrets Manager document, a KMS key and the exec
//! workspace bucket.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::{Credentials, Region};
use serde_json::{Value, json};

/// The variable `scripts/test` exports with moto's address (it serves every AWS service).
pub const ENDPOINT_ENV: &str = "BASTION_TEST_DYNAMODB_ENDPOINT";
pub const REGION: &str = "us-east-1";

/// The moto server the suite runs against.
#[derive(Clone)]
pub struct Moto {
    pub endpoint: String,
    http: reqwest::Client,
}

/// A name no other test (or earlier run against the same moto) has used.
// Names must differ across runs against one moto, so this reads the real clock.
#[allow(clippy::disallowed_methods)]
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl Moto {
    /// The moto server `scripts/test` started; fails the test when there is none.
    pub fn from_env() -> Self {
        let endpoint = match std::env::var(ENDPOINT_ENV) {
            Ok(v) if !v.trim().is_empty() => v.trim().trim_end_matches('/').to_owned(),
            _ => panic!(
                "{ENDPOINT_ENV} is not set: the Lambda-shaped suite needs a local moto server. \
                 Run `scripts/test`, which starts one on 127.0.0.1 and sets the variable."
            ),
        };
        // The workspace's reqwest brings no TLS provider of its own; moto is plain HTTP, but the
        // client still wants one installed.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        Self {
            endpoint,
            http: reqwest::Client::new(),
        }
    }

    /// A fresh table made by `bastion_store::dynamodb::create_table`.
    pub async fn create_table(&self) -> String {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("test", "test", None, None, "static"))
            .load()
            .await;
        let client = aws_sdk_dynamodb::Client::new(&config);
        let name = unique("bastion-lambda");
        bastion_store::dynamodb::create_table(&client, &name)
            .await
            .expect("the table is created in moto");
        name
    }

    /// A JSON 1.1 call; moto reads the service from the credential scope.
    async fn call(&self, service: &str, target: &str, body: &Value) -> Value {
        let response = self
            .http
            .post(&self.endpoint)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", target)
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential=test/20260101/{REGION}/{service}/aws4_request, \
                     SignedHeaders=host, Signature=0"
                ),
            )
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{target} reached moto: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{target} failed with {status}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Verifies `identity` (a domain) for sending with SES v2 `CreateEmailIdentity`, as an
    /// operator does before a deploy; moto, like SES, refuses mail from an unverified sender.
    /// A second call for one identity (another test, an earlier run) finds it already there.
    pub async fn verify_sender_domain(&self, identity: &str) {
        let response = self
            .http
            .post(format!("{}/v2/email/identities", self.endpoint))
            .header("content-type", "application/json")
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential=test/20260101/{REGION}/ses/aws4_request, \
                     SignedHeaders=host, Signature=0"
                ),
            )
            .body(json!({"EmailIdentity": identity}).to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateEmailIdentity reached moto: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(
            status.is_success() || text.contains("AlreadyExists"),
            "CreateEmailIdentity failed with {status}: {text}"
        );
    }

    /// Every message moto's SES accepted for `to`, oldest first, as `{"source","subject","body"}`
    /// (read from moto's model dump, `/moto-api/data.json`, which lists SES's sent messages).
    pub async fn mails_to(&self, to: &str) -> Vec<Value> {
        let dump: Value = self
            .http
            .get(format!("{}/moto-api/data.json", self.endpoint))
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto-api reached moto: {e}"))
            .json()
            .await
            .unwrap_or(Value::Null);
        let messages = dump["ses"]["Message"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        messages
            .into_iter()
            .filter(|m| {
                m["destinations"]["ToAddresses"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|t| t == to))
            })
            .map(|m| json!({"source": m["source"], "subject": m["subject"], "body": m["body"]}))
            .collect()
    }

    /// Every item of `table` as DynamoDB JSON text (one Scan page: test tables are small).
    pub async fn scan_text(&self, table: &str) -> String {
        let answer = self
            .call(
                "dynamodb",
                "DynamoDB_20120810.Scan",
                &json!({"TableName": table}),
            )
            .await;
        answer["Items"].to_string()
    }

    /// Creates a secret whose `SecretString` is `document`; returns its ARN.
    pub async fn create_secret(&self, document: &Value) -> String {
        let name = unique("bastion/lambda-suite");
        let answer = self
            .call(
                "secretsmanager",
                "secretsmanager.CreateSecret",
                &json!({"Name": name, "SecretString": document.to_string()}),
            )
            .await;
        answer["ARN"].as_str().expect("an ARN").to_owned()
    }

    /// A new current version of the secret, as a rotation writes it.
    pub async fn put_secret(&self, secret_id: &str, document: &Value) {
        self.call(
            "secretsmanager",
            "secretsmanager.PutSecretValue",
            &json!({"SecretId": secret_id, "SecretString": document.to_string()}),
        )
        .await;
    }

    /// A fresh S3 bucket (path-style, as moto on 127.0.0.1 is reached); returns its name.
    pub async fn create_bucket(&self) -> String {
        let name = unique("bastion-ws").to_lowercase();
        let response = self
            .http
            .put(format!("{}/{name}", self.endpoint))
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential=test/20260101/{REGION}/s3/aws4_request, \
                     SignedHeaders=host, Signature=0"
                ),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateBucket reached moto: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "CreateBucket failed with {status}: {text}"
        );
        name
    }

    /// A path-style S3 request to moto (which checks no signature), answering its body.
    async fn s3(&self, method: reqwest::Method, path_and_query: &str, body: String) -> String {
        let response = self
            .http
            .request(method, format!("{}/{path_and_query}", self.endpoint))
            .header(
                "authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential=test/20260101/{REGION}/s3/aws4_request, \
                     SignedHeaders=host, Signature=0"
                ),
            )
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("S3 {path_and_query} reached moto: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "S3 {path_and_query} failed with {status}: {text}"
        );
        text
    }

    /// Turns versioning on, as the template's workspace bucket has it.
    pub async fn enable_versioning(&self, bucket: &str) {
        let config = "<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                      <Status>Enabled</Status></VersioningConfiguration>";
        self.s3(
            reqwest::Method::PUT,
            &format!("{bucket}?versioning"),
            config.to_owned(),
        )
        .await;
    }

    /// Every object version and delete marker in `bucket` (at most 1000): (key, is a marker),
    /// sorted.
    pub async fn object_versions(&self, bucket: &str) -> Vec<(String, bool)> {
        let xml = self
            .s3(
                reqwest::Method::GET,
                &format!("{bucket}?versions"),
                String::new(),
            )
            .await;
        let mut out = Vec::new();
        for (tag, marker) in [("<Version>", false), ("<DeleteMarker>", true)] {
            for entry in xml.split(tag).skip(1) {
                let key = entry
                    .split_once("<Key>")
                    .and_then(|(_, rest)| rest.split_once("</Key>"))
                    .map(|(key, _)| key.to_owned())
                    .expect("a listed version has a key");
                out.push((key, marker));
            }
        }
        out.sort();
        out
    }

    /// A symmetric KMS key; returns its id.
    pub async fn create_kms_key(&self) -> String {
        let answer = self
            .call(
                "kms",
                "TrentService.CreateKey",
                &json!({"Description": "bastion lambda suite", "KeySpec": "SYMMETRIC_DEFAULT"}),
            )
            .await;
        answer["KeyMetadata"]["KeyId"]
            .as_str()
            .expect("a key id")
            .to_owned()
    }
}
