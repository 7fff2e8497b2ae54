//! Routing-path tests for every API Gateway event shape, through the same service `serve` runs.

use axum::Router;
use axum::body::Body as AxumBody;
use axum::routing::get;
use http::{Request as HttpRequest, StatusCode};
use http_body_util::BodyExt;
use lambda_http::Request;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{normalise, route_path, service};

const EXECUTE_API: &str = "abc123.execute-api.us-east-1.amazonaws.com";
const CUSTOM_DOMAIN: &str = "api.example.com";

/// A REST API (v1) proxy event as API Gateway sends it: `path` is the resource path.
fn rest_event(path: &str, stage: &str, host: &str, query: Value) -> Request {
    let event = json!({
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": "GET",
        "headers": {"Host": host, "X-Forwarded-Proto": "https"},
        "multiValueHeaders": {"Host": [host], "X-Forwarded-Proto": ["https"]},
        "queryStringParameters": query.clone(),
        "multiValueQueryStringParameters": query_multi(&query),
        "requestContext": {
            "accountId": "123456789012",
            "resourceId": "r1",
            "stage": stage,
            "requestId": "req-1",
            "domainName": host,
            "path": format!("/{stage}{path}"),
            "identity": {"sourceIp": "203.0.113.7"},
            "resourcePath": "/{proxy+}",
            "httpMethod": "GET",
            "apiId": "abc123"
        },
        "body": null,
        "isBase64Encoded": false
    });
    parse(&event)
}

fn query_multi(query: &Value) -> Value {
    match query.as_object() {
        Some(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), json!([v]))).collect()),
        None => Value::Null,
    }
}

/// An HTTP API (v2) event: `rawPath` is what the caller asked for on that host.
fn http_api_event(raw_path: &str, stage: &str, host: &str, raw_query: &str) -> Request {
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": {"host": host, "x-forwarded-proto": "https"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": host,
            "domainPrefix": "abc123",
            "http": {
                "method": "GET",
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "test"
            },
            "requestId": "req-2",
            "routeKey": "$default",
            "stage": stage,
            "time": "02/Dec/2026:02:00:00 +0000",
            "timeEpoch": 1_796_176_800_000_u64
        },
        "isBase64Encoded": false
    });
    parse(&event)
}

fn parse(event: &Value) -> Request {
    lambda_http::request::from_str(&event.to_string()).expect("the event parses")
}

/// A router that echoes the matched path and the query, so a test sees what routing saw.
fn echo_router() -> Router {
    async fn echo(request: HttpRequest<AxumBody>) -> String {
        format!(
            "{}?{}",
            request.uri().path(),
            request.uri().query().unwrap_or("")
        )
    }
    Router::new()
        .route("/auth/login", get(echo))
        .route("/auth/{*rest}", get(echo))
        .route("/chat/conversations", get(echo))
}

async fn call(request: Request) -> (StatusCode, String) {
    let response = service(echo_router())
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn a_rest_event_with_the_stage_in_the_path_routes_without_the_stage() {
    let request = rest_event("/auth/login", "Prod", EXECUTE_API, json!({"next": "home"}));
    assert_eq!(
        request.uri().path(),
        "/Prod/auth/login",
        "lambda_http adds the stage"
    );
    assert_eq!(
        call(request).await,
        (StatusCode::OK, "/auth/login?next=home".to_owned())
    );
}

#[tokio::test]
async fn a_rest_event_through_a_custom_domain_routes_on_its_path() {
    let request = rest_event("/chat/conversations", "Prod", CUSTOM_DOMAIN, Value::Null);
    assert_eq!(
        call(request).await,
        (StatusCode::OK, "/chat/conversations?".to_owned())
    );
}

#[tokio::test]
async fn a_rest_stage_named_like_another_route_prefix_is_not_part_of_the_route() {
    let request = rest_event("/auth/login", "chat", EXECUTE_API, Value::Null);
    assert_eq!(request.uri().path(), "/chat/auth/login");
    assert_eq!(
        call(request).await,
        (StatusCode::OK, "/auth/login?".to_owned())
    );
}

#[tokio::test]
async fn a_rest_stage_named_like_the_route_prefix_keeps_the_whole_route() {
    let request = rest_event("/auth/auth/login", "auth", EXECUTE_API, Value::Null);
    assert_eq!(
        call(request).await,
        (StatusCode::OK, "/auth/auth/login?".to_owned())
    );
}

#[tokio::test]
async fn an_http_api_event_on_the_default_stage_routes_on_its_raw_path() {
    let request = http_api_event("/auth/login", "$default", EXECUTE_API, "a=1&b=two");
    assert_eq!(
        call(request).await,
        (StatusCode::OK, "/auth/login?a=1&b=two".to_owned())
    );
}

#[tokio::test]
async fn an_http_api_event_on_a_named_stage_drops_the_stage_and_keeps_the_query() {
    let request = http_api_event("/Prod/auth/login", "Prod", EXECUTE_API, "a=1&a=2");
    assert_eq!(
        call(request).await,
        (StatusCode::OK, "/auth/login?a=1&a=2".to_owned())
    );
}

#[tokio::test]
async fn an_http_api_stage_named_like_a_route_prefix_is_cut_only_on_the_execute_api_host() {
    let on_default_host = http_api_event("/auth/auth/login", "auth", EXECUTE_API, "");
    assert_eq!(
        call(on_default_host).await,
        (StatusCode::OK, "/auth/login?".to_owned())
    );
    let on_custom_domain = http_api_event("/auth/login", "auth", CUSTOM_DOMAIN, "");
    assert_eq!(
        call(on_custom_domain).await,
        (StatusCode::OK, "/auth/login?".to_owned())
    );
}

#[tokio::test]
async fn an_http_api_event_for_the_stage_root_routes_to_the_root() {
    let request = http_api_event("/Prod", "Prod", EXECUTE_API, "");
    assert_eq!(route_path(&request).as_deref(), Some("/"));
    let (status, _) = call(request).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_stage_that_only_starts_like_the_path_is_not_cut() {
    let request = http_api_event("/Production/auth/login", "Prod", EXECUTE_API, "");
    assert_eq!(
        route_path(&request).as_deref(),
        Some("/Production/auth/login")
    );
}

#[test]
fn a_raw_path_with_a_space_is_percent_encoded_in_the_uri() {
    let request = normalise(rest_event("/auth/a b", "Prod", EXECUTE_API, Value::Null));
    assert_eq!(request.uri().path(), "/auth/a%20b");
}

#[test]
fn a_request_that_did_not_come_from_api_gateway_is_left_alone() {
    let request: Request = HttpRequest::builder()
        .uri("/Prod/auth/login?x=1")
        .body(lambda_http::Body::Empty)
        .expect("request");
    assert_eq!(route_path(&request), None);
    assert_eq!(normalise(request).uri(), "/Prod/auth/login?x=1");
}
