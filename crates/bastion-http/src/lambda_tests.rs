//! Routing-path tests for every API Gateway event shape, through the same service `serve` runs,
//! and the guarded entry's refusal of paths that routing would see rewritten.

use axum::Router;
use axum::body::Body as AxumBody;
use axum::routing::get;
use http::{Request as HttpRequest, StatusCode};
use http_body_util::BodyExt;
use lambda_http::Request;
use serde_json::{Value, json};
use tower::{Service, ServiceExt};

use lambda_http::lambda_runtime::{Context, LambdaEvent};
use serde_json::value::RawValue;

use super::{Guarded, normalise, route_path, service};

pub(crate) const EXECUTE_API: &str = "abc123.execute-api.us-east-1.amazonaws.com";
const CUSTOM_DOMAIN: &str = "api.example.com";

/// A REST API (v1) proxy event as API Gateway sends it: `path` is the resource path.
fn rest_event(path: &str, stage: &str, host: &str, query: Value) -> Request {
    parse(&rest_event_json(path, stage, host, query))
}

pub(crate) fn rest_event_json(path: &str, stage: &str, host: &str, query: Value) -> Value {
    json!({
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
    })
}

fn query_multi(query: &Value) -> Value {
    match query.as_object() {
        Some(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), json!([v]))).collect()),
        None => Value::Null,
    }
}

/// An HTTP API (v2) event: `rawPath` is what the caller asked for on that host.
fn http_api_event(raw_path: &str, stage: &str, host: &str, raw_query: &str) -> Request {
    parse(&http_api_event_json(raw_path, stage, host, raw_query))
}

pub(crate) fn http_api_event_json(
    raw_path: &str,
    stage: &str,
    host: &str,
    raw_query: &str,
) -> Value {
    json!({
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
    })
}

fn parse(event: &Value) -> Request {
    lambda_http::request::from_str(&event.to_string()).expect("the event parses")
}

/// A router that echoes the matched path and the query, so a test sees what routing saw.
pub(crate) fn echo_router() -> Router {
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

/// The answer the guarded entry `serve` runs gives the Runtime API for `event`, as JSON.
async fn serve_event(event: &Value) -> Value {
    let mut guarded = Guarded::new(service(echo_router()));
    let payload = RawValue::from_string(event.to_string()).expect("raw JSON");
    let answer = guarded
        .ready()
        .await
        .expect("ready")
        .call(LambdaEvent::new(payload, Context::default()))
        .await
        .expect("an answer");
    serde_json::to_value(answer).expect("serialisable")
}

/// The status and body of an answer, the body's request id checked against the header.
fn answered(answer: &Value) -> (u64, Value) {
    let status = answer["statusCode"].as_u64().expect("a status");
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap_or("null"))
        .unwrap_or_else(|_| Value::String(answer["body"].as_str().unwrap_or("").to_owned()));
    let header = answer["multiValueHeaders"]["x-request-id"][0]
        .as_str()
        .or_else(|| answer["headers"]["x-request-id"].as_str());
    if status >= 400 {
        assert_eq!(body["error"]["request_id"].as_str(), header, "{answer}");
    }
    (status, body)
}

pub(crate) const REFUSED: &str = "the path must not hold '.' or '..' segments, backslashes, control characters, or encoded dots, slashes or backslashes";

pub(crate) fn refused_envelope(body: &Value) -> Value {
    json!({"error": {"code": "invalid_request", "message": REFUSED,
                     "request_id": body["error"]["request_id"]}})
}

/// `/v1/admin/..\auth\login` and kin as the REST event path: the URL parse under routing makes
/// `/auth/login` of them (matched as that by any router), which the WAF never saw.
pub(crate) const CLIMBS_TO_LOGIN: [&str; 7] = [
    "/admin/..\\auth\\login",
    "/admin/%2e%2e/auth/login",
    "/admin/%2E%2E/auth/login",
    "/admin/.%2e/auth/login",
    "/admin/./../auth/login",
    "/admin/../auth/login",
    "/admin/.\t./auth/login",
];

#[tokio::test]
async fn without_the_guard_an_admin_path_that_climbs_is_routed_to_auth_login() {
    for path in CLIMBS_TO_LOGIN {
        let request = rest_event(path, "v1", EXECUTE_API, Value::Null);
        assert_eq!(
            call(request).await,
            (StatusCode::OK, "/auth/login?".to_owned()),
            "{path:?}"
        );
    }
}

#[tokio::test]
async fn the_guarded_entry_refuses_every_rewritten_rest_path_with_400_before_routing() {
    let mut paths = CLIMBS_TO_LOGIN.to_vec();
    paths.extend([
        "/admin/..%5Cauth%5Clogin",
        "/admin/..%5cauth%5clogin",
        "/admin/..%2Fauth%2Flogin",
        "/exec/files/./x",
        "/exec/files/.",
        "/..%2fadmin/x",
    ]);
    for path in paths {
        let answer = serve_event(&rest_event_json(path, "v1", EXECUTE_API, Value::Null)).await;
        let (status, body) = answered(&answer);
        assert_eq!(status, 400, "{path:?}: {answer}");
        assert_eq!(body, refused_envelope(&body), "{path:?}");
        assert!(
            body["error"]["request_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty()),
            "{path:?}"
        );
    }
}

#[tokio::test]
async fn the_stage_cut_of_an_http_api_cannot_be_climbed_around() {
    for raw_path in [
        "/Prod/../auth/login",
        "/Prod/..%2fauth/login",
        "/Prod/%2e%2e/Prod/auth/login",
        "/Prod/.\\auth/login",
        "/Prod%2f../auth/login",
    ] {
        let answer = serve_event(&http_api_event_json(raw_path, "Prod", EXECUTE_API, "")).await;
        let (status, body) = answered(&answer);
        assert_eq!(status, 400, "{raw_path:?}: {answer}");
        assert_eq!(body, refused_envelope(&body), "{raw_path:?}");
    }
}

#[tokio::test]
async fn paths_with_dots_inside_names_and_other_escapes_are_served_unchanged() {
    for path in [
        "/auth/a.b/c..d",
        "/auth/.env",
        "/auth/...",
        "/auth/notes%20v2.txt",
        "/auth/%41bc",
        "/auth/%252e%252e",
    ] {
        let answer = serve_event(&rest_event_json(path, "v1", EXECUTE_API, Value::Null)).await;
        let (status, body) = answered(&answer);
        assert_eq!(status, 200, "{path:?}: {answer}");
        assert_eq!(body, Value::String(format!("{path}?")), "{path:?}");
    }
}
