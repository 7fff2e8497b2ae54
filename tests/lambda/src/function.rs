//! A real function binary started as Lambda starts it: a cleared environment holding only the
//! `AWS_LAMBDA_*` variables, the execution role's credentials, the template's configuration
//! and the Runtime API address; its output kept for assertions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::event::{GatewayResponse, RestEvent};
use crate::runtime::{Outcome, RuntimeApi};
use crate::stream::Streamed;

/// The execution role's credentials a function receives (test values, distinctive so a test
/// can look for them where they must not be).
pub const ACCESS_KEY_ID: &str = "ASIALAMBDASUITETEST01";
pub const SECRET_ACCESS_KEY: &str = "lambda-suite-secret-access-key-0123456789";
pub const SESSION_TOKEN: &str = "lambda-suite-session-token-abcdefghijklmnop";

/// `target/<profile>/<name>`, failing the test when the binary was not built: `scripts/test`
/// builds the debug binaries first, the bench builds the release ones.
pub fn binary(profile: &str, name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let path = target.join(profile).join(name);
    assert!(
        path.is_file(),
        "{} is missing: build the function binaries first \
         (`cargo build --locked --bins -p bastion-auth -p bastion-webhooks -p bastion-chat-fn \
         -p bastion-exec -p bastion-lambda-tests`, which `scripts/test` runs)",
        path.display()
    );
    path
}

/// The environment a function process gets, and nothing else.
#[derive(Debug, Clone, Default)]
pub struct LambdaEnv {
    vars: BTreeMap<String, String>,
}

impl LambdaEnv {
    /// What Lambda itself sets for `function` (minus the Runtime API address, added at start),
    /// with the AWS endpoint pointed at moto.
    pub fn lambda(function: &str, aws_endpoint: &str, task_root: &Path) -> Self {
        Self::default()
            .set("AWS_LAMBDA_FUNCTION_NAME", &format!("bastion-{function}"))
            .set("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .set("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .set(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                &format!("/aws/lambda/bastion-{function}"),
            )
            .set(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/12/02/[$LATEST]0123456789abcdef",
            )
            .set("AWS_REGION", crate::aws::REGION)
            .set("AWS_DEFAULT_REGION", crate::aws::REGION)
            .set("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
            .set("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
            .set("AWS_SESSION_TOKEN", SESSION_TOKEN)
            .set("AWS_ENDPOINT_URL", aws_endpoint)
            .set("LAMBDA_TASK_ROOT", &task_root.display().to_string())
            .set("_HANDLER", "bootstrap")
            .set("TZ", ":UTC")
    }

    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_owned(), value.to_owned());
        self
    }

    pub fn remove(mut self, name: &str) -> Self {
        self.vars.remove(name);
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }
}

/// A running function process behind its own Runtime API stand-in; killed on drop.
pub struct Function {
    pub runtime: RuntimeApi,
    pub spawned_at: Instant,
    pub pid: u32,
    child: Child,
    output: Arc<Mutex<String>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Function {
    /// Starts `binary` with exactly `env` plus `AWS_LAMBDA_RUNTIME_API`.
    pub async fn start(binary: &Path, env: &LambdaEnv) -> Self {
        let runtime = RuntimeApi::start().await;
        let mut command = Command::new(binary);
        command
            .env_clear()
            .envs(&env.vars)
            .env("AWS_LAMBDA_RUNTIME_API", runtime.endpoint())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(root) = env.get("LAMBDA_TASK_ROOT") {
            command.current_dir(root);
        }
        let spawned_at = Instant::now();
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{} started: {e}", binary.display()));
        let output = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(collect(out, output.clone()));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(collect(err, output.clone()));
        }
        let pid = child.id().unwrap_or(0);
        Self {
            runtime,
            spawned_at,
            pid,
            child,
            output,
            readers,
        }
    }

    /// Sends one REST event and reads the response (a streamed one to its end), failing on an
    /// invocation error.
    pub async fn call(&self, event: &RestEvent) -> GatewayResponse {
        let outcome = self.runtime.invoke(event.to_json()).await;
        GatewayResponse::read(outcome).await
    }

    /// Sends any event document (a malformed one, say) and reads the response, failing on an
    /// invocation error.
    pub async fn call_raw(&self, event: serde_json::Value) -> GatewayResponse {
        GatewayResponse::read(self.runtime.invoke(event).await).await
    }

    /// Sends one REST event to a streaming function and answers once the prelude is in: the
    /// status and headers, then the body chunk by chunk. Fails on any other outcome.
    pub async fn stream(&self, event: &RestEvent) -> Streamed {
        match self.runtime.invoke(event.to_json()).await {
            Outcome::Streamed(streamed) => streamed,
            other => panic!("not a streamed answer: {other:?}"),
        }
    }

    /// Sends any event document and answers what the function returned, whatever its shape
    /// (a stream batch's partial batch response), or the invocation error.
    pub async fn invoke(&self, event: serde_json::Value) -> crate::runtime::Outcome {
        self.runtime.invoke(event).await
    }

    /// How the process ended, if it did within `timeout`; its output is then complete.
    pub async fn exit_within(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()?
            .ok()?;
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        }
        Some(status)
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

fn collect(
    stream: impl AsyncRead + Unpin + Send + 'static,
    into: Arc<Mutex<String>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut all = into.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
        }
    })
}
