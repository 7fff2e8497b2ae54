//! A function's start-up as Lambda expects it: build everything, then serve; and when building
//! fails (a configuration error, a secret refused in the plain environment, a malformed secret
//! document), tell the Runtime API through `/runtime/init/error` before exiting non-zero, so the
//! failure shows as an init error with its reason instead of a bare "Runtime exited".
//!
//! The reported message is the error's own text: configuration errors name the variable or
//! document key and never hold a value, and every start-up error is built the same way.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use bastion_core::config::{ConfigError, Env, ProcessEnv};
use lambda_runtime_api_client::PooledClient;
use lambda_runtime_api_client::body::Body;

use crate::secrets::LAMBDA_RUNTIME_VAR;
use crate::side_events::Side;

/// Where an init failure is posted, relative to `AWS_LAMBDA_RUNTIME_API`.
pub const INIT_ERROR_PATH: &str = "/2018-06-01/runtime/init/error";
/// The header naming the error's type.
pub const ERROR_TYPE_HEADER: &str = "Lambda-Runtime-Function-Error-Type";
/// A configuration error: a variable or a document key is missing, malformed or refused.
pub const CONFIG_ERROR_TYPE: &str = "Runtime.ConfigInvalid";
/// Any other start-up failure (a client that could not be built).
pub const INIT_ERROR_TYPE: &str = "Runtime.InitFailed";

/// How long the report may take: a Runtime API that does not answer must not keep a failed
/// start-up alive.
const REPORT_TIMEOUT: Duration = Duration::from_secs(2);

pub type InitError = lambda_http::Error;

/// Runs `init` and serves the router it builds (see [`crate::lambda::serve`]); on failure
/// logs it, reports it to the Runtime API and returns it, so `main` exits non-zero.
pub async fn start<F>(init: F) -> Result<(), lambda_http::Error>
where
    F: Future<Output = Result<Router, InitError>>,
{
    start_with_side_events(async { init.await.map(|router| (router, None)) }).await
}

/// [`start`] for a function that also handles non-API Gateway events (see
/// [`crate::side_events`]).
pub async fn start_with_side_events<F>(init: F) -> Result<(), lambda_http::Error>
where
    F: Future<Output = Result<(Router, Side), InitError>>,
{
    match init.await {
        Ok((router, side)) => crate::lambda::serve_with(router, side).await,
        Err(error) => Err(failed(error).await),
    }
}

/// [`start`] for a function whose responses are streamed (see [`crate::lambda_stream`]).
pub async fn start_streaming<F>(init: F) -> Result<(), lambda_http::Error>
where
    F: Future<Output = Result<Router, InitError>>,
{
    match init.await {
        Ok(router) => crate::lambda_stream::serve_streaming(router).await,
        Err(error) => Err(failed(error).await),
    }
}

/// Logs a failed start-up and reports it to the Runtime API; the error is handed back for
/// `main` to exit with.
async fn failed(error: InitError) -> InitError {
    let (error_type, body) = report(error.as_ref());
    tracing::error!(event = "init_failed", error_type, error = %error, "start-up failed");
    if let Some(api) = ProcessEnv.non_empty(LAMBDA_RUNTIME_VAR) {
        post_init_error(&api, error_type, body).await;
    }
    error
}

/// The error's type and the JSON document the Runtime API receives for it.
pub fn report(error: &(dyn std::error::Error + Send + Sync + 'static)) -> (&'static str, String) {
    let error_type = if error.downcast_ref::<ConfigError>().is_some() {
        CONFIG_ERROR_TYPE
    } else {
        INIT_ERROR_TYPE
    };
    let body = serde_json::json!({
        "errorMessage": error.to_string(),
        "errorType": error_type,
    });
    (error_type, body.to_string())
}

/// Posts the report; a failure to deliver it is logged, never masks the start-up error.
async fn post_init_error(api: &str, error_type: &str, body: String) {
    let endpoint = match format!("http://{api}").parse::<http::Uri>() {
        Ok(uri) => uri,
        Err(e) => {
            tracing::error!(event = "init_error_report", error = %e, "the Runtime API address is malformed");
            return;
        }
    };
    let request = http::Request::post(INIT_ERROR_PATH)
        .header(ERROR_TYPE_HEADER, error_type)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(body));
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(event = "init_error_report", error = %e, "the init error report could not be built");
            return;
        }
    };
    let client = PooledClient::builder().with_endpoint(endpoint).build();
    match tokio::time::timeout(REPORT_TIMEOUT, client.call(request)).await {
        Ok(Ok(response)) if response.status().is_success() => {}
        Ok(Ok(response)) => tracing::error!(
            event = "init_error_report",
            status = response.status().as_u16(),
            "the Runtime API refused the init error report"
        ),
        Ok(Err(e)) => {
            tracing::error!(event = "init_error_report", error = %e, "the init error report was not delivered")
        }
        Err(_) => tracing::error!(
            event = "init_error_report",
            "the Runtime API did not answer the init error report in time"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn a_configuration_error_is_reported_as_config_invalid_naming_the_variable() {
        let error: InitError = Box::new(ConfigError::new(
            "PASSWORD_PEPPER",
            "is a secret and must not be in the Lambda environment",
        ));
        let (error_type, body) = report(error.as_ref());
        assert_eq!(error_type, "Runtime.ConfigInvalid");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["errorType"], json!("Runtime.ConfigInvalid"));
        assert_eq!(body["errorMessage"], json!(error.to_string()));
        assert!(
            body["errorMessage"]
                .as_str()
                .unwrap()
                .contains("PASSWORD_PEPPER")
        );
    }

    #[test]
    fn any_other_start_up_error_is_reported_as_init_failed() {
        let error: InitError = "the sandbox root could not be created".into();
        let (error_type, body) = report(error.as_ref());
        assert_eq!(error_type, "Runtime.InitFailed");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            body,
            json!({"errorMessage": "the sandbox root could not be created", "errorType": "Runtime.InitFailed"})
        );
    }
}
