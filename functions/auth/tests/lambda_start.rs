//! The real `auth` binary started as Lambda starts it (a cleared environment, the `AWS_LAMBDA_*`
//! variables and a Runtime API address): it refuses secrets in its plain environment, and with
//! the secret document in Secrets Manager (moto, `BASTION_TEST_DYNAMODB_ENDPOINT`) it gets as far
//! as asking the Runtime API for work.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};

use aws_config::BehaviorVersion;
use aws_sdk_secretsmanager::config::{Credentials, Region};
use tokio::io::AsyncReadExt;

const LEAKED: &str = "k1:bGVha2VkLXZhbHVlLXRoYXQtbXVzdC1uZXZlci1iZS1wcmludGVk";

/// What Lambda sets, with a Runtime API at `runtime` and AWS at `endpoint`.
fn lambda_command(runtime: &str, endpoint: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_auth"));
    cmd.env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime)
        .env("AWS_LAMBDA_FUNCTION_NAME", "auth")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("TABLE_NAME", "bastion-start-test")
        .env("KMS_KEY_ID", "alias/bastion-start-test")
        .env("EMAIL_SENDER", "ses")
        .env("EMAIL_FROM", "no-reply@example.com")
        .env("EMAIL_LINK_BASE", "https://app.example.com")
        .stdin(Stdio::null());
    cmd
}

#[test]
fn a_secret_in_the_plain_lambda_environment_stops_the_binary_naming_it_never_its_value() {
    // Nothing listens at either address: the refusal comes before any network call.
    let out = lambda_command("127.0.0.1:9", "http://127.0.0.1:9")
        .env("BASTION_SECRET_ID", "bastion-secrets")
        .env("JWT_SIGNING_KEYS", LEAKED)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stderr.contains("JWT_SIGNING_KEYS"), "{stderr}");
    assert!(
        stderr.contains("must not be in the Lambda environment"),
        "{stderr}"
    );
    assert!(!stderr.contains("bGVha2Vk") && !stdout.contains("bGVha2Vk"));
}

#[test]
fn without_bastion_secret_id_the_binary_refuses_to_start_in_lambda() {
    let out = lambda_command("127.0.0.1:9", "http://127.0.0.1:9")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(r#"var: "BASTION_SECRET_ID", reason: "is required""#),
        "{stderr}"
    );
}

#[tokio::test]
async fn with_the_secret_document_in_secrets_manager_the_binary_polls_the_runtime_for_work() {
    let endpoint = std::env::var("BASTION_TEST_DYNAMODB_ENDPOINT").unwrap_or_else(|_| {
        panic!("BASTION_TEST_DYNAMODB_ENDPOINT is not set: run `scripts/test`, which starts moto")
    });
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .load()
        .await;
    let name = format!("bastion-start-{}", std::process::id());
    let document = serde_json::json!({
        "JWT_SIGNING_KEYS": "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "JWT_VERIFY_KEYS": "k1:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=",
        "PASSWORD_PEPPER": "1:ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=",
    });
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(&name)
        .secret_string(document.to_string())
        .send()
        .await
        .unwrap();
    let runtime = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = runtime.local_addr().unwrap().to_string();
    let mut child = tokio::process::Command::from({
        let mut cmd = lambda_command(&address, &endpoint);
        cmd.env("BASTION_SECRET_ID", &name)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    })
    .kill_on_drop(true)
    .spawn()
    .unwrap();
    let accepted = tokio::select! {
        conn = runtime.accept() => Some(conn.unwrap().0),
        _ = child.wait() => None,
    };
    let Some(mut conn) = accepted else {
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .await
            .unwrap();
        panic!("the binary exited before polling the runtime: {err}");
    };
    let mut head = vec![0u8; 256];
    let n = conn.read(&mut head).await.unwrap();
    let request = String::from_utf8_lossy(&head[..n]);
    assert!(
        request.starts_with("GET /2018-06-01/runtime/invocation/next "),
        "{request}"
    );
    child.kill().await.unwrap();
}
