//! A function the transport tests invoke in place of exec: it takes only a tool invocation
//! event and answers a tool outcome carrying the event it received, so a test sees exactly what
//! crossed Lambda Invoke. A `run_command` picks a misbehaviour instead: `fail` (an invocation
//! error), `not-an-outcome` (a payload that is no outcome) or `sleep <ms>` (a slow answer).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bastion_core::tools::{ToolCall, ToolInvocation};
use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn handle(event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
    let raw = event.payload.to_string();
    let invocation = match ToolInvocation::decode(&raw) {
        Some(Ok(invocation)) => invocation,
        Some(Err(e)) => return Err(e.into()),
        None => return Err("not a tool invocation".into()),
    };
    if let ToolCall::RunCommand(args) = &invocation.call {
        let command = args.command.as_str();
        if command == "fail" {
            return Err("the tool echo was asked to fail".into());
        }
        if command == "not-an-outcome" {
            return Ok(json!({"statusCode": 200, "body": "{}"}));
        }
        if let Some(ms) = command.strip_prefix("sleep ") {
            tokio::time::sleep(Duration::from_millis(ms.parse()?)).await;
        }
    }
    Ok(json!({"ok": true, "output": {"received": event.payload}}))
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(handle)).await
}
