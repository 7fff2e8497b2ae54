//! The Lambda entry point of the buffered functions: it refuses events lambda_http cannot
//! convert, or whose path it would rewrite (see `event_guard`), and it is the one place that
//! decides which path a request is routed on, whatever way API Gateway exposes the function,
//! before the router sees it. The streaming entry (`lambda_stream`, chat's) uses the same
//! admission, refusal and routing service.
//!
//! `lambda_http` rebuilds the URI from the event and, for a named stage, prefixes `/{stage}`
//! unless `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH` is set. Our routers know `/auth/login`, not
//! `/Prod/auth/login`, and routing must not hang on a variable an operator can forget, so the
//! path is recomputed here from the event itself:
//! - REST API (v1): the event's `path` never carries the stage (through the execute-api host
//!   or a custom domain), so it is the route as is.
//! - HTTP API (v2): `rawPath` carries a named stage when called on the execute-api host and
//!   not through a custom domain; `$default` is never in it. The stage is cut only where the
//!   host is an execute-api one, so a stage named like a route prefix (`auth`) never eats the
//!   first segment of a custom-domain path.
//!
//! Axum matches the route before any layer on the `Router` runs, so this is a service wrapped
//! around the router, not a layer inside it.

use std::task::{Context, Poll};

use axum::Router;
use bastion_core::RequestId;
use http::Uri;
use http::uri::PathAndQuery;
use lambda_http::aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayV2httpResponse};
use lambda_http::request::{LambdaRequest, RequestContext, RequestOrigin};
use lambda_http::{Adapter, BoxFuture, IntoResponse, LambdaEvent, Request, RequestExt, Service};
use serde_json::value::RawValue;
use tower::ServiceBuilder;
use tower::util::MapRequest;

use crate::error::{ApiError, ErrorKind};
use crate::event_guard::{self, Unconvertible};
use crate::side_events::Side;

/// Runs `router` as a Lambda function with the routing path normalised for every API Gateway
/// event shape, behind the guard against events lambda_http cannot convert. Replaces
/// `lambda_http::run(router)` in each function's `main.rs`.
pub async fn serve(router: Router) -> Result<(), lambda_http::Error> {
    serve_with(router, None).await
}

/// [`serve`], with the events `side` claims handled before the API Gateway path.
pub async fn serve_with(router: Router, side: Side) -> Result<(), lambda_http::Error> {
    lambda_http::lambda_runtime::run(Guarded::new(service(router)).with_side_events(side)).await
}

/// lambda_http's adapter, called only with events that [`event_guard::check`] admits; any other
/// is answered 400 here, so it never reaches the conversion that would panic (and, with
/// `panic = "abort"`, end the instance).
pub struct Guarded<A> {
    adapter: A,
    side: Side,
}

impl<A> Guarded<A> {
    pub fn with_side_events(mut self, side: Side) -> Self {
        self.side = side;
        self
    }
}

impl<S, R, E> Guarded<Adapter<'static, R, S>>
where
    S: Service<Request, Response = R, Error = E>,
    S::Future: Send + 'static,
    R: IntoResponse,
{
    pub fn new(service: S) -> Self {
        Self {
            adapter: Adapter::from(service),
            side: None,
        }
    }
}

impl<A> Service<LambdaEvent<Box<RawValue>>> for Guarded<A>
where
    A: Service<LambdaEvent<LambdaRequest>>,
    A::Response: serde::Serialize + Send + 'static,
    A::Future: Send + 'static,
    A::Error: Into<lambda_http::Error>,
{
    type Response = Answer<A::Response>;
    type Error = lambda_http::Error;
    type Future = BoxFuture<'static, Result<Self::Response, lambda_http::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.adapter.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, event: LambdaEvent<Box<RawValue>>) -> Self::Future {
        let LambdaEvent { payload, context } = event;
        if let Some(handled) = self.side.as_ref().and_then(|s| s.claim(payload.get())) {
            return Box::pin(async move { Ok(Answer::Side(handled.await?)) });
        }
        let request = match admit(payload.get()) {
            Ok(Admission::Admitted(request)) => request,
            Ok(Admission::Refused(origin, reason)) => {
                let answer = refusal(&origin, reason, &context.request_id);
                return Box::pin(std::future::ready(Ok(Answer::Refused(Box::new(answer)))));
            }
            Err(e) => return Box::pin(std::future::ready(Err(e.into()))),
        };
        let response = self.adapter.call(LambdaEvent::new(*request, context));
        Box::pin(async move { Ok(Answer::Routed(response.await.map_err(Into::into)?)) })
    }
}

/// What the guard makes of an API Gateway event, for both entry points.
pub(crate) enum Admission {
    /// Safe to convert: lambda_http's conversion neither panics on it nor rewrites its path.
    Admitted(Box<LambdaRequest>),
    /// To be answered 400 in the shape of the API Gateway that sent it.
    Refused(RequestOrigin, Unconvertible),
}

/// The event parsed as lambda_http's own runtime would parse it, then checked by
/// [`event_guard::check`]; a document that is no event stays an invocation error.
pub(crate) fn admit(raw: &str) -> Result<Admission, serde_json::Error> {
    let request: LambdaRequest = serde_json::from_str(raw)?;
    Ok(match event_guard::check(raw, &request) {
        Ok(()) => Admission::Admitted(Box::new(request)),
        Err(reason) => Admission::Refused(request.request_origin(), reason),
    })
}

/// What goes back to the Runtime API: lambda_http's response (a type private to it, so only
/// named through the adapter) or the guard's refusal, each serialised as it is.
#[derive(serde::Serialize)]
#[serde(untagged)]
pub enum Answer<R> {
    Routed(R),
    Refused(Box<Refusal>),
    Side(serde_json::Value),
}

/// The refusal in the shape of the API Gateway that sent the event.
#[derive(serde::Serialize)]
#[serde(untagged)]
pub enum Refusal {
    Rest(ApiGatewayProxyResponse),
    Http(ApiGatewayV2httpResponse),
}

/// The 400 for an event the guard refuses (one that cannot be converted, or whose path the
/// conversion would rewrite), in the envelope and with the headers every response carries,
/// shaped for the API Gateway that sent it.
fn refusal(origin: &RequestOrigin, reason: Unconvertible, aws_request_id: &str) -> Refusal {
    let (headers, body) = refused(reason, aws_request_id);
    let body = Some(lambda_http::Body::Text(body));
    match origin {
        RequestOrigin::ApiGatewayV2 => {
            let mut r = ApiGatewayV2httpResponse::default();
            r.status_code = 400;
            r.headers = headers;
            r.body = body;
            Refusal::Http(r)
        }
        _ => {
            let mut r = ApiGatewayProxyResponse::default();
            r.status_code = 400;
            r.multi_value_headers = headers;
            r.body = body;
            Refusal::Rest(r)
        }
    }
}

/// The headers and envelope of the 400 for a refused event, logged with both request ids.
pub(crate) fn refused(reason: Unconvertible, aws_request_id: &str) -> (http::HeaderMap, String) {
    let request_id = RequestId::generate();
    tracing::warn!(%request_id, aws_request_id, %reason, "API Gateway event refused before routing");
    let err = ApiError::new(ErrorKind::InvalidRequest, reason.client_message());
    crate::pipeline::outside_router(&err, &request_id)
}

/// The service `serve` runs: the router behind the path normalisation.
pub fn service(router: Router) -> MapRequest<Router, fn(Request) -> Request> {
    ServiceBuilder::new()
        .map_request(normalise as fn(Request) -> Request)
        .service(router)
}

/// The request with its URI path replaced by the route path the event names (query kept).
/// Requests that did not come from API Gateway are returned unchanged.
pub fn normalise(mut request: Request) -> Request {
    let Some(path) = route_path(&request) else {
        return request;
    };
    if let Some(uri) = with_path(request.uri(), &path) {
        *request.uri_mut() = uri;
    }
    request
}

/// The path the routers should match for this event, or `None` when it is not an API
/// Gateway event (local HTTP, tests).
pub fn route_path(request: &Request) -> Option<String> {
    let raw = request.raw_http_path();
    let raw = if raw.is_empty() { "/" } else { raw };
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV1(_) => Some(raw.to_owned()),
        RequestContext::ApiGatewayV2(ctx) => {
            let stage = ctx.stage.as_deref().unwrap_or("$default");
            let on_execute_api = ctx.domain_name.as_deref().is_none_or(is_execute_api_host);
            if stage == "$default" || !on_execute_api {
                return Some(raw.to_owned());
            }
            Some(strip_stage(raw, stage).to_owned())
        }
        // Other event sources are not wired to these functions.
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// `{api}.execute-api.{region}.amazonaws.com` (and the China partition's `.com.cn`): the
/// default endpoint, where a named HTTP API stage is part of the path.
fn is_execute_api_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    host.contains(".execute-api.")
        && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"))
}

fn strip_stage<'a>(path: &'a str, stage: &str) -> &'a str {
    match path.strip_prefix('/').and_then(|p| p.strip_prefix(stage)) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

/// `uri` with its path replaced, percent-encoding what a raw event path may hold (spaces).
fn with_path(uri: &Uri, path: &str) -> Option<Uri> {
    let mut encoded = url::Url::parse("http://localhost/").ok()?;
    encoded.set_path(path);
    let path_and_query = match uri.query() {
        Some(query) => format!("{}?{query}", encoded.path()),
        None => encoded.path().to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse::<PathAndQuery>().ok()?);
    Uri::from_parts(parts).ok()
}

#[cfg(test)]
#[path = "lambda_tests.rs"]
pub(crate) mod tests;
