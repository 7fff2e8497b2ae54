//! One deployment of the four functions against moto: the table, the two secret documents (the
//! main one, and exec's own holding only `EXEC_SANDBOX_KEY` and the verify keys), the KMS key and
//! a fake LLM, and the environment the template gives each function (non-secret configuration
//! only; every secret is in the document named by `BASTION_SECRET_ID`). [`Deployment::start_agent`]
//! starts exec and chat together, chat invoking exec through the Lambda Invoke stand-in.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bastion_chat::testing::{FAKE_KEY, FakeLlm};
use serde_json::{Value, json};

use crate::aws::{Moto, unique};
use crate::function::{Function, LambdaEnv, binary};
use crate::invoke::InvokeApi;

/// The exec function's name (`AWS_LAMBDA_FUNCTION_NAME` of its process), which the template
/// gives chat as `EXEC_FUNCTION_NAME`.
pub const EXEC_FUNCTION: &str = "bastion-exec";

/// The host toolset `scripts/toolset` builds (what `scripts/test` builds before the suite).
const HOST_TOOLS_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../target/toolset/host/tools"
);

/// Auth's Ed25519 signing key (the seed) and its public half, the verifiers' key.
pub const JWT_KEY: [u8; 32] = [7; 32];
pub const JWT_PUBLIC_B64: &str = "6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw=";
pub const EXEC_SANDBOX_KEY: [u8; 32] = [5; 32];
pub const STRIPE_SECRET: &str = "whsec_lambda_suite_0123456789abcdef";
pub const ORIGIN: &str = "https://app.example.com";
pub const PASSWORD: &str = "correct horse battery staple 42";
/// The SES identity the suite verifies in moto and auth's `EMAIL_FROM` on it.
pub const MAIL_DOMAIN: &str = "mail.bastion-lambda.example.com";
pub const MAIL_FROM: &str = "no-reply@mail.bastion-lambda.example.com";

/// The main secret document every test deployment starts with (auth, webhooks, chat).
pub fn default_secrets() -> Value {
    json!({
        "JWT_SIGNING_KEYS": format!("k1:{}", B64.encode(JWT_KEY)),
        "JWT_VERIFY_KEYS": format!("k1:{JWT_PUBLIC_B64}"),
        "PASSWORD_PEPPER": format!("1:{}", B64.encode([9u8; 32])),
        "LLM_API_KEY": FAKE_KEY,
        "STRIPE_WEBHOOK_SECRETS": STRIPE_SECRET,
    })
}

/// exec's document beside the main document `main`, as infra/put-secret writes it: the sandbox
/// key and the same verify keys (absent when `main` has none, so exec fails like the others).
pub fn exec_secrets(main: &Value) -> Value {
    let mut doc = json!({ "EXEC_SANDBOX_KEY": B64.encode(EXEC_SANDBOX_KEY) });
    if let Some(verify) = main.get("JWT_VERIFY_KEYS") {
        doc["JWT_VERIFY_KEYS"] = verify.clone();
    }
    doc
}

/// exec and chat running together, chat's Lambda client pointed at `lambda`, which routes
/// [`EXEC_FUNCTION`] to `exec`.
pub struct Agent {
    pub lambda: InvokeApi,
    pub exec: Function,
    pub chat: Function,
}

pub struct Deployment {
    pub moto: Moto,
    pub table: String,
    pub secret_id: String,
    /// exec's own document (its `BASTION_SECRET_ID`).
    pub exec_secret_id: String,
    pub kms_key: String,
    /// The exec workspace bucket (`WORKSPACE_BUCKET`).
    pub bucket: String,
    pub llm: FakeLlm,
    pub scratch: PathBuf,
    document: Value,
    exec_document: Value,
}

impl Deployment {
    pub async fn new() -> Self {
        Self::with_secrets(&default_secrets()).await
    }

    pub async fn with_secrets(document: &Value) -> Self {
        let moto = Moto::from_env();
        let table = moto.create_table().await;
        let secret_id = moto.create_secret(document).await;
        let exec_document = exec_secrets(document);
        let exec_secret_id = moto.create_secret(&exec_document).await;
        let kms_key = moto.create_kms_key().await;
        let bucket = moto.create_bucket().await;
        moto.verify_sender_domain(MAIL_DOMAIN).await;
        let llm = FakeLlm::start().await;
        let scratch = std::env::temp_dir().join(unique("bastion-lambda"));
        std::fs::create_dir_all(scratch.join("task")).unwrap();
        Self {
            moto,
            table,
            secret_id,
            exec_secret_id,
            kms_key,
            bucket,
            llm,
            scratch,
            document: document.clone(),
            exec_document,
        }
    }

    /// Where an exec function of this deployment makes its run directories.
    pub fn sandbox_root(&self) -> PathBuf {
        self.scratch.join("sandbox")
    }

    /// The environment Lambda and the template give `function` (auth, webhooks, chat, exec).
    pub fn env(&self, function: &str) -> LambdaEnv {
        let env = LambdaEnv::lambda(function, &self.moto.endpoint, &self.scratch.join("task"))
            .set("BASTION_SECRET_ID", &self.secret_id)
            .set("KMS_KEY_ID", &self.kms_key)
            .set("TABLE_NAME", &self.table)
            .set("ALLOWED_ORIGINS", ORIGIN)
            .set("RUST_LOG", "info");
        match function {
            // Lambda calls go to moto unless a test points them at an Invoke stand-in
            // (`start_agent`).
            "chat" => env
                .set("LLM_BASE_URL", &self.llm.base_url)
                .set("LLM_MODEL", "fake-small")
                .set("EXEC_FUNCTION_NAME", EXEC_FUNCTION),
            "auth" => env
                .set("EMAIL_SENDER", "ses")
                .set("EMAIL_FROM", MAIL_FROM)
                .set("EMAIL_LINK_BASE", ORIGIN),
            "webhooks" => env
                .set("LLM_BASE_URL", &self.llm.base_url)
                .set("LLM_MODEL", "fake-small"),
            // The template's layer puts the toolset at /opt/tools; here it is the host build of
            // the same sources (scripts/toolset), named the way an operator would override it.
            "exec" => env
                .set("BASTION_SECRET_ID", &self.exec_secret_id)
                .set("SANDBOX_ROOT", &self.sandbox_root().display().to_string())
                .set("WORKSPACE_BUCKET", &self.bucket)
                .set("EXEC_TOOLS_DIR", HOST_TOOLS_DIR),
            _ => env,
        }
    }

    /// `env(function)` with every secret of the document also in the plain environment: only
    /// for measuring binaries built before Secrets Manager loading existed (the bench's
    /// baseline); a current binary refuses to start like this.
    pub fn env_with_plain_secrets(&self, function: &str) -> LambdaEnv {
        let mut env = self.env(function);
        let document = if function == "exec" {
            &self.exec_document
        } else {
            &self.document
        };
        for (name, value) in document.as_object().into_iter().flatten() {
            env = env.set(name, value.as_str().unwrap_or_default());
        }
        env
    }

    /// Starts the debug binary of `function` with its deployment environment.
    pub async fn start(&self, function: &str) -> Function {
        self.start_with(function, &self.env(function)).await
    }

    pub async fn start_with(&self, function: &str, env: &LambdaEnv) -> Function {
        Function::start(&binary("debug", function), env).await
    }

    /// exec and chat as deployed together: chat's `AWS_ENDPOINT_URL_LAMBDA` is an Invoke
    /// stand-in that routes `EXEC_FUNCTION_NAME` to the running exec; every other AWS call of
    /// both still goes to moto.
    pub async fn start_agent(&self) -> Agent {
        self.start_agent_with(&self.env("exec"), &self.env("chat"))
            .await
    }

    /// [`start_agent`](Self::start_agent) with the given environments (chat's Lambda endpoint
    /// and exec function name are set on `chat_env`).
    pub async fn start_agent_with(&self, exec_env: &LambdaEnv, chat_env: &LambdaEnv) -> Agent {
        let lambda = InvokeApi::start().await;
        let exec = self.start_with("exec", exec_env).await;
        lambda.register(EXEC_FUNCTION, &exec.runtime);
        let chat_env = chat_env
            .clone()
            .set("EXEC_FUNCTION_NAME", EXEC_FUNCTION)
            .set("AWS_ENDPOINT_URL_LAMBDA", &lambda.endpoint());
        let chat = self.start_with("chat", &chat_env).await;
        Agent { lambda, exec, chat }
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}
