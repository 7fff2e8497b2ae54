//! The agent's tools as deployed: a checked tool call runs in the exec function, reached by a
//! direct, synchronous Lambda Invoke (`EXEC_FUNCTION_NAME`) under the chat role's identity.
//!
//! The exec function's answer is untrusted like any tool output: only a well-formed
//! `ToolOutcome` document is passed on. Everything else (a function error, an answer that is
//! not an outcome, an SDK error, a call slower than its budget) becomes one generic
//! `tool_unavailable` result for the model; the details go to the log with the request id.
//!
//! The Lambda client is built once from the process's shared SDK configuration. It never
//! retries: a tool call is not idempotent (`run_command`, `write_file`), and a retry after an
//! answer that was lost, not refused, would run it twice. The per-call budget bounds the whole
//! call, connection included.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::config::timeout::TimeoutConfig;
use aws_sdk_lambda::error::DisplayErrorContext;
use aws_sdk_lambda::operation::invoke::InvokeOutput;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use aws_types::SdkConfig;
use bastion_chat::ToolRunner;
use bastion_core::tools::{ToolError, ToolInvocation, ToolName, ToolOutcome};
use bastion_http::{ConfigError, Env};
use serde_json::Value;

/// The exec function's name or ARN (the template sets it to `!Ref ExecFunction`).
pub const EXEC_FUNCTION_VAR: &str = "EXEC_FUNCTION_NAME";
/// The SDKs' standard service-specific endpoint override. The shared configuration is built
/// from the environment by hand (`bastion_http::sdk`), without the loader that would read it,
/// so it is honoured here: the Lambda-shaped suite points Lambda at its Invoke stand-in while
/// every other client still goes to `AWS_ENDPOINT_URL`.
pub const LAMBDA_ENDPOINT_VAR: &str = "AWS_ENDPOINT_URL_LAMBDA";
/// The code of every transport failure the model sees.
pub const UNAVAILABLE_CODE: &str = "tool_unavailable";
/// Its message: nothing about the cause, which stays in the log.
pub const UNAVAILABLE_MESSAGE: &str = "the tool could not be run right now; try again later";

/// Lambda's own cap on a synchronous response; an answer larger than this is not exec's.
const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;
/// Invoke's limit on `FunctionName` (a name, a partial ARN or a full ARN with a qualifier).
const MAX_FUNCTION_NAME_CHARS: usize = 170;
/// No call outlives the chat function's own timeout (template.yaml: 29 s, API Gateway's
/// integration limit), whatever budget the loop passes.
const MAX_BUDGET: Duration = Duration::from_secs(29);
/// How much of a function error document reaches the log.
const MAX_LOGGED_ERROR_CHARS: usize = 512;

/// Runs tool calls by invoking the exec function.
#[derive(Clone)]
pub struct LambdaTools {
    client: aws_sdk_lambda::Client,
    function: String,
}

impl std::fmt::Debug for LambdaTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaTools")
            .field("function", &self.function)
            .finish_non_exhaustive()
    }
}

impl LambdaTools {
    /// The runner over the shared SDK configuration: `EXEC_FUNCTION_NAME` is required and
    /// checked; `AWS_ENDPOINT_URL_LAMBDA`, when set, overrides the endpoint for Lambda only.
    pub fn from_sdk(sdk: &SdkConfig, env: &dyn Env) -> Result<Self, ConfigError> {
        let function = function_name(env)?;
        let mut config = aws_sdk_lambda::config::Builder::from(sdk)
            .retry_config(RetryConfig::disabled())
            // The per-call budget bounds each call (`run`); the shared configuration's attempt
            // and operation bounds fit single-item DynamoDB calls, not a command run. Its
            // connect timeout is kept.
            .timeout_config(
                TimeoutConfig::builder()
                    .disable_operation_attempt_timeout()
                    .disable_operation_timeout()
                    .build(),
            );
        if let Some(endpoint) = env.non_empty(LAMBDA_ENDPOINT_VAR) {
            config = config.endpoint_url(endpoint.trim());
        }
        Ok(Self {
            client: aws_sdk_lambda::Client::from_conf(config.build()),
            function,
        })
    }

    /// The function this runner invokes.
    pub fn function(&self) -> &str {
        &self.function
    }

    async fn invoke(
        &self,
        invocation: &ToolInvocation,
        budget: Duration,
    ) -> Result<ToolOutcome, Failure> {
        let payload = serde_json::to_vec(&invocation.to_json())
            .map_err(|e| Failure::new("the invocation did not serialise", e.to_string()))?;
        let call = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(payload))
            .send();
        let budget = budget.min(MAX_BUDGET);
        let output = tokio::time::timeout(budget, call)
            .await
            .map_err(|_| {
                Failure::new(
                    "the exec function did not answer within the budget",
                    format!("{} ms", budget.as_millis()),
                )
            })?
            .map_err(|e| {
                Failure::new(
                    "the Lambda Invoke call failed",
                    DisplayErrorContext(&e).to_string(),
                )
            })?;
        outcome_of(&output)
    }
}

#[async_trait]
impl ToolRunner for LambdaTools {
    fn name(&self) -> &'static str {
        "lambda"
    }

    async fn run(&self, invocation: &ToolInvocation, budget: Duration) -> ToolOutcome {
        match self.invoke(invocation, budget).await {
            Ok(outcome) => outcome,
            Err(failure) => {
                tracing::error!(
                    request_id = %invocation.request_id,
                    tool = %invocation.call.name(),
                    function = %self.function,
                    detail = %failure.detail,
                    "{}; the model is told the tool is unavailable",
                    failure.what,
                );
                unavailable()
            }
        }
    }
}

/// The tool runner of the chat Lambda for the tools `CHAT_TOOLS` offers: none when it offers
/// none (nothing is invoked, so `EXEC_FUNCTION_NAME` may be absent), exec by Lambda Invoke
/// otherwise.
pub fn runner(
    sdk: &SdkConfig,
    env: &dyn Env,
    offered: &[ToolName],
) -> Result<Option<Arc<dyn ToolRunner>>, ConfigError> {
    if offered.is_empty() {
        return Ok(None);
    }
    Ok(Some(Arc::new(LambdaTools::from_sdk(sdk, env)?)))
}

/// The result every transport failure becomes.
pub fn unavailable() -> ToolOutcome {
    ToolOutcome::Err(ToolError::new(UNAVAILABLE_CODE, UNAVAILABLE_MESSAGE))
}

/// Why an invocation produced no outcome: a summary and the detail, both for the log only.
#[derive(Debug)]
struct Failure {
    what: &'static str,
    detail: String,
}

impl Failure {
    fn new(what: &'static str, detail: String) -> Self {
        Self { what, detail }
    }
}

fn function_name(env: &dyn Env) -> Result<String, ConfigError> {
    let name = env
        .non_empty(EXEC_FUNCTION_VAR)
        .ok_or_else(|| {
            ConfigError::new(
                EXEC_FUNCTION_VAR,
                "is required when tools are offered (the exec function's name or ARN)",
            )
        })?
        .trim()
        .to_owned();
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '$' | '.');
    if name.chars().count() > MAX_FUNCTION_NAME_CHARS || !name.chars().all(allowed) {
        return Err(ConfigError::new(
            EXEC_FUNCTION_VAR,
            "must be a Lambda function name or ARN (at most 170 characters of letters, digits, \
             '-', '_', ':', '$' and '.')",
        ));
    }
    Ok(name)
}

/// What exec's answer means: its `ToolOutcome` when it is one, a failure otherwise.
fn outcome_of(output: &InvokeOutput) -> Result<ToolOutcome, Failure> {
    let payload = output.payload().map(Blob::as_ref).unwrap_or_default();
    if let Some(kind) = output.function_error() {
        return Err(Failure::new(
            "the exec function failed the invocation",
            format!("{kind}: {}", error_summary(payload)),
        ));
    }
    if output.status_code() != 200 {
        return Err(Failure::new(
            "the exec function answered an unexpected status",
            output.status_code().to_string(),
        ));
    }
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(Failure::new(
            "the exec function's answer is too large",
            format!("{} bytes", payload.len()),
        ));
    }
    let value: Value = serde_json::from_slice(payload).map_err(|e| {
        Failure::new(
            "the exec function's answer is not JSON",
            format!("{} bytes: {e}", payload.len()),
        )
    })?;
    ToolOutcome::from_value(value).ok_or_else(|| {
        Failure::new(
            "the exec function's answer is not a tool outcome",
            format!("{} bytes", payload.len()),
        )
    })
}

/// A function error document's type and message, cut short: a runtime's errors name what went
/// wrong, and tool content has no place in the log.
fn error_summary(payload: &[u8]) -> String {
    let text = match serde_json::from_slice::<Value>(payload) {
        Ok(doc) => format!(
            "{} {}",
            doc.get("errorType").and_then(Value::as_str).unwrap_or("?"),
            doc.get("errorMessage")
                .and_then(Value::as_str)
                .unwrap_or("(no message)")
        ),
        Err(_) => format!(
            "an error document of {} bytes that is not JSON",
            payload.len()
        ),
    };
    text.chars().take(MAX_LOGGED_ERROR_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use aws_sdk_lambda::config::{BehaviorVersion, Region};
    use serde_json::json;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn sdk() -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build()
    }

    fn output(status: i32, function_error: Option<&str>, payload: &[u8]) -> InvokeOutput {
        let mut b = InvokeOutput::builder()
            .status_code(status)
            .payload(Blob::new(payload));
        if let Some(kind) = function_error {
            b = b.function_error(kind);
        }
        b.build()
    }

    #[test]
    fn a_missing_exec_function_name_stops_start_up_naming_the_variable() {
        let err = LambdaTools::from_sdk(&sdk(), &env(&[])).unwrap_err();
        assert_eq!(err.var, "EXEC_FUNCTION_NAME");
        let err = LambdaTools::from_sdk(&sdk(), &env(&[("EXEC_FUNCTION_NAME", "  ")])).unwrap_err();
        assert_eq!(err.var, "EXEC_FUNCTION_NAME");
    }

    #[test]
    fn an_exec_function_name_that_is_no_lambda_name_is_refused() {
        for bad in ["exec function", "exec/../auth", &"x".repeat(171)] {
            let err =
                LambdaTools::from_sdk(&sdk(), &env(&[("EXEC_FUNCTION_NAME", bad)])).unwrap_err();
            assert_eq!(err.var, "EXEC_FUNCTION_NAME", "{bad}");
        }
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:bastion-dev-Exec-AbC:$LATEST";
        let tools = LambdaTools::from_sdk(&sdk(), &env(&[("EXEC_FUNCTION_NAME", arn)])).unwrap();
        assert_eq!(tools.function(), arn);
    }

    #[test]
    fn the_client_never_retries_and_leaves_the_bound_to_the_budget() {
        let tools = LambdaTools::from_sdk(&sdk(), &env(&[("EXEC_FUNCTION_NAME", "exec")])).unwrap();
        let config = tools.client.config();
        assert_eq!(
            config.retry_config().map(RetryConfig::max_attempts),
            Some(1)
        );
        let timeouts = config.timeout_config().unwrap();
        assert_eq!(timeouts.operation_timeout(), None);
        assert_eq!(timeouts.operation_attempt_timeout(), None);
    }

    #[test]
    fn blank_chat_tools_needs_no_exec_function() {
        assert!(runner(&sdk(), &env(&[]), &[]).unwrap().is_none());
        let err = runner(&sdk(), &env(&[]), &[ToolName::ReadFile]).err();
        assert_eq!(err.map(|e| e.var), Some("EXEC_FUNCTION_NAME".to_owned()));
        let lambda = runner(
            &sdk(),
            &env(&[("EXEC_FUNCTION_NAME", "exec")]),
            &ToolName::ALL,
        )
        .unwrap()
        .unwrap();
        assert_eq!(lambda.name(), "lambda");
    }

    #[test]
    fn an_outcome_document_is_passed_on_as_is() {
        let ok = json!({"ok": true, "output": {"files": ["a.txt"]}});
        let out = output(200, None, ok.to_string().as_bytes());
        assert_eq!(
            outcome_of(&out).unwrap(),
            ToolOutcome::Ok(json!({"files": ["a.txt"]}))
        );
        let refused = json!({"ok": false, "error": {"code": "invalid_path", "message": "no"}});
        let out = output(200, None, refused.to_string().as_bytes());
        assert_eq!(
            outcome_of(&out).unwrap(),
            ToolOutcome::Err(ToolError::new("invalid_path", "no"))
        );
    }

    #[test]
    fn a_function_error_is_a_failure_even_when_its_document_looks_like_an_outcome() {
        let forged = json!({"ok": true, "output": "trust me"});
        let out = output(200, Some("Unhandled"), forged.to_string().as_bytes());
        let failure = outcome_of(&out).unwrap_err();
        assert_eq!(failure.what, "the exec function failed the invocation");
        let doc = json!({"errorType": "Runtime.ExitError", "errorMessage": "exited"});
        let out = output(200, Some("Unhandled"), doc.to_string().as_bytes());
        assert_eq!(
            outcome_of(&out).unwrap_err().detail,
            "Unhandled: Runtime.ExitError exited"
        );
    }

    #[test]
    fn an_answer_that_is_not_an_outcome_is_a_failure() {
        for payload in [
            &b"not json"[..],
            br#"{"statusCode":200,"body":"{}"}"#,
            br#"{"ok":true}"#,
            br#"{"ok":true,"output":1,"error":{"code":"a","message":"b"}}"#,
            b"",
        ] {
            let out = output(200, None, payload);
            assert!(
                outcome_of(&out).is_err(),
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
        let ok = json!({"ok": true, "output": 1}).to_string();
        assert!(outcome_of(&output(202, None, ok.as_bytes())).is_err());
        let mut big = br#"{"ok":true,"output":""#.to_vec();
        big.resize(MAX_PAYLOAD_BYTES + 1, b'a');
        big.extend_from_slice(br#""}"#);
        assert_eq!(
            outcome_of(&output(200, None, &big)).unwrap_err().what,
            "the exec function's answer is too large"
        );
    }

    #[test]
    fn a_logged_error_summary_is_cut_short() {
        let doc = json!({"errorType": "E", "errorMessage": "m".repeat(10_000)});
        assert_eq!(
            error_summary(doc.to_string().as_bytes()).chars().count(),
            MAX_LOGGED_ERROR_CHARS
        );
        assert_eq!(
            error_summary(b"\xff\xfe"),
            "an error document of 2 bytes that is not JSON"
        );
    }

    #[test]
    fn the_unavailable_result_says_nothing_of_the_cause() {
        assert_eq!(
            unavailable().to_value(),
            json!({"ok": false, "error": {
                "code": "tool_unavailable",
                "message": "the tool could not be run right now; try again later"
            }})
        );
    }
}
