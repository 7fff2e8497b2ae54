//! A stand-in for the Lambda Invoke API (`2015-03-31`) on 127.0.0.1, as the chat function
//! reaches it through `AWS_ENDPOINT_URL_LAMBDA`: a synchronous invoke of a registered function
//! queues the payload to that function's Runtime API stand-in and answers what the function
//! posted, the way the Lambda service does.
//!
//! - `200` with the response payload, or `200` with `X-Amz-Function-Error: Unhandled` and the
//!   error document when the function posted an invocation error or ran past its timeout;
//! - `404 ResourceNotFoundException` for a function that is not registered;
//! - `403` for a request that is not SigV4-signed; the signer's access key is recorded, so a
//!   test can tell whose identity invoked a function.
//!
//! Only `RequestResponse` invocations are served (the only kind chat makes); anything else is a
//! `400 InvalidParameterValueException`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::runtime::{Outcome, RuntimeApi};

/// Lambda's cap on a synchronous invocation's request payload.
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;
/// How long a function may take when registered without a timeout of its own.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const ACCOUNT: &str = "123456789012";

struct Registered {
    runtime: RuntimeApi,
    timeout: Duration,
}

/// One invocation as the stand-in received it.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The function name it resolved to.
    pub function: String,
    /// The access key id of the SigV4 credential that signed the request.
    pub access_key_id: String,
    pub payload: Value,
}

#[derive(Default)]
struct Shared {
    functions: Mutex<HashMap<String, Registered>>,
    seen: Mutex<Vec<Invocation>>,
}

/// The running stand-in; the server stops when the test's runtime ends.
pub struct InvokeApi {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl InvokeApi {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/2015-03-31/functions/{name}/invocations", post(invoke))
            // Lambda's own limit is checked in the handler, with Lambda's error; the extractor's
            // default would cut it at 2 MB.
            .layer(DefaultBodyLimit::max(MAX_PAYLOAD_BYTES + 1024 * 1024))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, shared }
    }

    /// The value of `AWS_ENDPOINT_URL_LAMBDA`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Routes invocations of `name` (or its ARN) to the function behind `runtime`.
    pub fn register(&self, name: &str, runtime: &RuntimeApi) {
        self.register_with_timeout(name, runtime, DEFAULT_TIMEOUT);
    }

    /// As [`register`](Self::register), with the function's timeout: an invocation it has not
    /// answered by then is a `Sandbox.Timedout` function error.
    pub fn register_with_timeout(&self, name: &str, runtime: &RuntimeApi, timeout: Duration) {
        self.shared.functions.lock().unwrap().insert(
            name.to_owned(),
            Registered {
                runtime: runtime.clone(),
                timeout,
            },
        );
    }

    /// The ARN the stand-in gives `name`.
    pub fn arn(name: &str) -> String {
        format!(
            "arn:aws:lambda:{}:{ACCOUNT}:function:{name}",
            crate::aws::REGION
        )
    }

    /// Every invocation of a registered function so far, in order.
    pub fn invocations(&self) -> Vec<Invocation> {
        self.shared.seen.lock().unwrap().clone()
    }
}

/// The function a `FunctionName` names: a name, `account:function:name` or a full ARN, each
/// optionally with a `:qualifier`.
fn resolve(raw: &str) -> &str {
    let name = match raw.rsplit_once(":function:") {
        Some((_, rest)) => rest,
        None => raw,
    };
    name.split(':').next().unwrap_or(name)
}

/// The access key id of a SigV4 `Authorization` header.
fn signer(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let credential = auth.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let scope = credential.split("Credential=").nth(1)?;
    let key = scope.split('/').next()?;
    (!key.is_empty()).then(|| key.to_owned())
}

fn service_error(status: StatusCode, kind: &str, message: &str) -> Response {
    let mut response = (
        status,
        [("content-type", "application/json")],
        json!({"Type": "User", "message": message}).to_string(),
    )
        .into_response();
    response.headers_mut().insert(
        "x-amzn-errortype",
        HeaderValue::from_str(kind).unwrap_or(HeaderValue::from_static("ServiceException")),
    );
    response
}

fn answer(payload: &Value, function_error: bool) -> Response {
    let mut response = (
        StatusCode::OK,
        [
            ("content-type", "application/json"),
            ("x-amz-executed-version", "$LATEST"),
        ],
        payload.to_string(),
    )
        .into_response();
    if function_error {
        response.headers_mut().insert(
            "x-amz-function-error",
            HeaderValue::from_static("Unhandled"),
        );
    }
    response
}

async fn invoke(
    State(shared): State<Arc<Shared>>,
    Path(raw_name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(access_key_id) = signer(&headers) else {
        return service_error(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        );
    };
    let kind = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse");
    if kind != "RequestResponse" {
        return service_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            "the stand-in serves RequestResponse invocations only",
        );
    }
    let name = resolve(&raw_name).to_owned();
    let target = shared
        .functions
        .lock()
        .unwrap()
        .get(&name)
        .map(|f| (f.runtime.clone(), f.timeout));
    let Some((runtime, timeout)) = target else {
        return service_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {}", InvokeApi::arn(&name)),
        );
    };
    if body.len() > MAX_PAYLOAD_BYTES {
        return service_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
        );
    }
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return service_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            "Could not parse request body into json",
        );
    };
    shared.seen.lock().unwrap().push(Invocation {
        function: name,
        access_key_id,
        payload: payload.clone(),
    });
    match runtime.invoke_within(payload, timeout).await {
        Some(Outcome::Response(v)) => answer(&v, false),
        Some(Outcome::Error(e)) => answer(&e, true),
        // Only chat streams, and nothing invokes chat.
        Some(Outcome::Streamed(_) | Outcome::Fault(_)) => answer(
            &json!({"errorType": "Stand-in.Streamed", "errorMessage": "the function streamed its response"}),
            true,
        ),
        None => answer(
            &json!({
                "errorType": "Sandbox.Timedout",
                "errorMessage": format!("Task timed out after {:.2} seconds", timeout.as_secs_f64()),
            }),
            true,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_name_resolves_from_a_name_a_partial_arn_or_an_arn() {
        for raw in [
            "bastion-exec",
            "bastion-exec:$LATEST",
            "123456789012:function:bastion-exec",
            "arn:aws:lambda:us-east-1:123456789012:function:bastion-exec",
            "arn:aws:lambda:us-east-1:123456789012:function:bastion-exec:7",
        ] {
            assert_eq!(resolve(raw), "bastion-exec", "{raw}");
        }
    }

    #[test]
    fn the_signer_is_read_from_the_sigv4_credential() {
        let mut headers = HeaderMap::new();
        assert_eq!(signer(&headers), None);
        headers.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261206/us-east-1/lambda/aws4_request, \
                 SignedHeaders=host, Signature=00",
            ),
        );
        assert_eq!(signer(&headers).as_deref(), Some("ASIAEXAMPLE"));
    }
}
