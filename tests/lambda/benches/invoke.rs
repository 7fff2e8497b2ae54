//! The chat → exec invoke round trip as deployed, under the Lambda-shaped harness: chat's
//! `LambdaTools` (the shared SDK configuration, SigV4, one HTTP connection pool) through the
//! Lambda Invoke stand-in to a function's Runtime API and back.
//!
//! - `transport`: `tool_echo` answers at once, so the figure is the invoke path alone (SDK,
//!   stand-in, Runtime API, the function's own runtime loop);
//! - `exec list_files`: the real exec (its edge-free tool entry, the workspace listed from moto's
//!   S3) — skipped, saying so, when the exec binary does not take tool invocations.
//!
//! Build first: `cargo build --release --locked --bins -p bastion-exec -p bastion-lambda-tests`,
//! then with moto running and `BASTION_TEST_DYNAMODB_ENDPOINT` set: `cargo bench -p
//! bastion-lambda-tests --bench invoke` (`INVOKE_RUNS`, default 200; `INVOKE_PROFILE`, the
//! profile of the binaries, default `release`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bastion_chat::ToolRunner;
use bastion_chat_fn::tools::LambdaTools;
use bastion_core::tools::{ListFilesArgs, ToolCall, ToolInvocation, ToolOutcome};
use bastion_core::{RequestId, UserId};
use bastion_http::tls::Roots;
use bastion_lambda_tests::aws::REGION;
use bastion_lambda_tests::deployment::EXEC_FUNCTION;
use bastion_lambda_tests::function::{ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN};
use bastion_lambda_tests::{Deployment, Function, InvokeApi, LambdaEnv, binary};

const ECHO: &str = "bastion-tool-echo";
const BUDGET: Duration = Duration::from_secs(20);

fn runner(lambda: &InvokeApi, function: &str, moto: &str) -> LambdaTools {
    let env: HashMap<String, String> = [
        ("AWS_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
        ("AWS_SESSION_TOKEN", SESSION_TOKEN),
        ("AWS_ENDPOINT_URL", moto),
        ("AWS_ENDPOINT_URL_LAMBDA", &lambda.endpoint()),
        ("EXEC_FUNCTION_NAME", function),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let http = bastion_http::sdk::http_client(&Roots::from_certs(Vec::new())).unwrap();
    let sdk = bastion_http::sdk::from_env(&env, http).unwrap();
    LambdaTools::from_sdk(&sdk, &env).unwrap()
}

fn list_files() -> ToolInvocation {
    ToolInvocation {
        user_id: UserId::parse("0123456789abcdef0123456789abcdef").unwrap(),
        request_id: RequestId::generate(),
        call: ToolCall::ListFiles(ListFilesArgs { prefix: None }),
    }
}

/// Round trips of `runs` calls in ms, or `None` when the function does not answer outcomes.
async fn measure(tools: &LambdaTools, runs: usize) -> Option<Vec<f64>> {
    // One warm-up call: the first opens the connection and wakes the function.
    if !tools.run(&list_files(), BUDGET).await.is_ok() {
        return None;
    }
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let call = list_files();
        let started = Instant::now();
        let outcome = tools.run(&call, BUDGET).await;
        samples.push(started.elapsed().as_secs_f64() * 1e3);
        assert!(matches!(outcome, ToolOutcome::Ok(_)), "{outcome:?}");
    }
    Some(samples)
}

fn report(name: &str, mut samples: Vec<f64>) {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    let mean = samples.iter().sum::<f64>() / n as f64;
    let at = |q: f64| samples[((n as f64 * q).ceil() as usize).clamp(1, n) - 1];
    println!(
        "{name:<16} n={n:<5} mean={mean:>7.3} ms  p50={:>7.3} ms  p95={:>7.3} ms",
        at(0.5),
        at(0.95)
    );
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("INVOKE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let profile = std::env::var("INVOKE_PROFILE").unwrap_or_else(|_| "release".to_owned());
    let d = Deployment::new().await;
    let lambda = InvokeApi::start().await;

    let echo_env = LambdaEnv::lambda("tool-echo", &d.moto.endpoint, &std::env::temp_dir());
    let echo = Function::start(&binary(&profile, "tool_echo"), &echo_env).await;
    lambda.register(ECHO, &echo.runtime);
    let samples = measure(&runner(&lambda, ECHO, &d.moto.endpoint), runs)
        .await
        .expect("tool_echo answers outcomes");
    report("transport", samples);

    let exec = Function::start(&binary(&profile, "exec"), &d.env("exec")).await;
    lambda.register(EXEC_FUNCTION, &exec.runtime);
    match measure(&runner(&lambda, EXEC_FUNCTION, &d.moto.endpoint), runs).await {
        Some(samples) => report("exec list_files", samples),
        None => {
            println!("exec list_files: skipped, this exec binary does not take tool invocations")
        }
    }
}
