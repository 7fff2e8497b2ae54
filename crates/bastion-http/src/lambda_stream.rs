//! The streaming Lambda entry point (the chat function's): the guard and the routing path of
//! [`crate::lambda::serve`], but every answer goes back to the Runtime API as a Lambda streamed
//! response (a JSON prelude with status, headers and cookies, eight NUL bytes, then the body as
//! the router writes it), which API Gateway REST with `responseTransferMode: STREAM` passes on
//! to the client as it comes.
//!
//! There is one response type for every answer. A buffered JSON answer is a body of one frame,
//! an SSE answer a body of one frame per event, and the guard's refusal is built as an HTTP
//! response and converted the same way, so none of them can come out empty or half-converted.
//! The conversion is the one lambda_http's `StreamAdapter` makes (the event becomes a
//! `Request` carrying the Lambda context and the X-Ray trace header; `Set-Cookie` values move
//! to `cookies`), with one difference: a header named more than once is folded into one
//! comma-separated value. lambda_runtime serialises a repeated header as a JSON array, and API
//! Gateway reads the prelude's headers as a map of strings (a list there makes it answer 502).

use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderName, HeaderValue, Response};
use http_body_util::BodyDataStream;
use lambda_http::lambda_runtime::{MetadataPrelude, StreamResponse};
use lambda_http::{BoxFuture, LambdaEvent, Request, RequestExt, Service};
use serde_json::value::RawValue;

use crate::lambda::{Admission, admit, refused, service};

/// The body chunks of a streamed answer, in the order the router writes them.
pub type Chunks = BodyDataStream<Body>;
/// What the Runtime API receives for every invocation of a streaming function.
pub type Streamed = StreamResponse<Chunks>;

/// Runs `router` as a Lambda function whose responses are streamed, behind the same guard and
/// path normalisation as [`crate::lambda::serve`]. Replaces `lambda_http::run_with_streaming_response`.
pub async fn serve_streaming(router: Router) -> Result<(), lambda_http::Error> {
    lambda_http::lambda_runtime::run(Streaming::new(service(router))).await
}

/// The guarded entry for a streaming function: events the guard refuses are answered 400 here,
/// streamed like any other answer, and never reach lambda_http's conversion.
pub struct Streaming<S> {
    service: S,
}

impl<S> Streaming<S> {
    pub fn new(service: S) -> Self {
        Self { service }
    }
}

impl<S> Service<LambdaEvent<Box<RawValue>>> for Streaming<S>
where
    S: Service<Request, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Into<lambda_http::Error>,
{
    type Response = Streamed;
    type Error = lambda_http::Error;
    type Future = BoxFuture<'static, Result<Streamed, lambda_http::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.service.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, event: LambdaEvent<Box<RawValue>>) -> Self::Future {
        let LambdaEvent { payload, context } = event;
        let request = match admit(payload.get()) {
            Ok(Admission::Admitted(request)) => request,
            // The prelude has one shape whichever API Gateway sent the event.
            Ok(Admission::Refused(_, reason)) => {
                let (headers, body) = refused(reason, &context.request_id);
                let mut response = Response::new(Body::from(body));
                *response.status_mut() = http::StatusCode::BAD_REQUEST;
                *response.headers_mut() = headers;
                return Box::pin(std::future::ready(Ok(streamed(response))));
            }
            Err(e) => return Box::pin(std::future::ready(Err(e.into()))),
        };
        let mut request: Request = (*request).into();
        if let Some(trace) = context.xray_trace_id.as_deref()
            && let Ok(value) = HeaderValue::from_str(trace)
        {
            request
                .headers_mut()
                .insert(HeaderName::from_static("x-amzn-trace-id"), value);
        }
        let response = self.service.call(request.with_lambda_context(context));
        Box::pin(async move { Ok(streamed(response.await.map_err(Into::into)?)) })
    }
}

/// `response` as a streamed answer: status, folded headers and cookies in the prelude, the
/// body's data frames as the chunks.
pub fn streamed(response: Response<Body>) -> Streamed {
    let (parts, body) = response.into_parts();
    let mut headers = parts.headers;
    let cookies = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|c| String::from_utf8_lossy(c.as_bytes()).into_owned())
        .collect();
    headers.remove(SET_COOKIE);
    StreamResponse {
        metadata_prelude: MetadataPrelude {
            status_code: parts.status,
            headers: folded(&headers),
            cookies,
        },
        stream: BodyDataStream::new(body),
    }
}

/// One value per header name, repeated values joined with `, ` (their meaning for every
/// list-valued header; `Set-Cookie`, the exception, is taken out before). A value that is not
/// visible ASCII would serialise as an empty list, so it is left out.
fn folded(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.keys_len());
    for name in headers.keys() {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            continue;
        }
        if let Ok(value) = HeaderValue::from_str(&values.join(", ")) {
            out.insert(name.clone(), value);
        }
    }
    out
}

#[cfg(test)]
#[path = "lambda_stream_tests.rs"]
mod tests;
