//! Cold start of each release function binary against the hello-world `lambda_http` binary
//! built with the same profile, under the same Runtime API stand-in and moto: spawn → first
//! `invocation/next` poll (init) and spawn → first response (init + first request), several
//! runs, medians and ratios.
//!
//! Build first: `cargo build --release --locked --bins -p bastion-auth -p bastion-webhooks
//! -p bastion-chat-fn -p bastion-exec -p bastion-lambda-tests`, then with moto running and
//! `BASTION_TEST_DYNAMODB_ENDPOINT` set: `cargo bench -p bastion-lambda-tests --bench
//! cold_start` (`COLD_START_RUNS`, default 15; `COLD_START_PROFILE`, default `release`;
//! `COLD_START_PLAIN_SECRETS=1` for binaries that predate Secrets Manager loading).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bastion_lambda_tests::{Deployment, Function, GatewayResponse, RestEvent, binary};

/// Each function's cheapest route that still goes through its whole edge (per-IP counter in
/// DynamoDB included), and the status it answers without a token.
const TARGETS: [(&str, &str, u16); 5] = [
    ("hello", "/hello", 200),
    ("auth", "/auth/health", 200),
    ("webhooks", "/webhooks/health", 200),
    ("chat", "/chat/health", 200),
    ("exec", "/exec/health", 401),
];

struct Sample {
    init_ms: f64,
    first_response_ms: f64,
}

async fn once(d: &Deployment, profile: &str, (name, path, status): (&str, &str, u16)) -> Sample {
    let function_env = if name == "hello" { "auth" } else { name };
    let env = if std::env::var_os("COLD_START_PLAIN_SECRETS").is_some() {
        d.env_with_plain_secrets(function_env)
    } else {
        d.env(function_env)
    };
    let function = Function::start(&binary(profile, name), &env).await;
    let polled = function
        .runtime
        .first_poll_within(Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("{name} never polled: {}", function.output()));
    let outcome = function
        .runtime
        .invoke(RestEvent::get(path).to_json())
        .await;
    let response = GatewayResponse::read(outcome).await;
    let answered = std::time::Instant::now();
    assert_eq!(response.status, status, "{name}: {}", response.text());
    Sample {
        init_ms: (polled - function.spawned_at).as_secs_f64() * 1e3,
        first_response_ms: (answered - function.spawned_at).as_secs_f64() * 1e3,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("COLD_START_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let profile = std::env::var("COLD_START_PROFILE").unwrap_or_else(|_| "release".to_owned());
    let d = Deployment::new().await;
    // Warm the page cache and moto once per binary before measuring.
    for target in TARGETS {
        once(&d, &profile, target).await;
    }
    let mut medians = Vec::new();
    for target in TARGETS {
        let mut init = Vec::new();
        let mut first = Vec::new();
        for _ in 0..runs {
            let s = once(&d, &profile, target).await;
            init.push(s.init_ms);
            first.push(s.first_response_ms);
        }
        medians.push((target.0, median(init), median(first)));
    }
    let (_, hello_init, hello_first) = medians[0];
    println!("cold start, {profile} binaries, {runs} runs each, medians (ratio to hello world)");
    println!(
        "{:<10} {:>16} {:>24}",
        "function", "init ms", "first response ms"
    );
    for (name, init, first) in &medians {
        println!(
            "{name:<10} {init:>8.2} ({:>4.2}x) {first:>14.2} ({:>4.2}x)",
            init / hello_init,
            first / hello_first
        );
    }
}
