//! The streaming entry on its own: a buffered JSON answer and a streamed one from the same
//! service, the prelude API Gateway reads (one string per header, cookies apart), the guard's
//! refusal as a streamed 400, and the routing path normalised as `serve` normalises it.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::response::IntoResponse;
use axum::routing::get;
use futures_util::StreamExt;
use http::{HeaderValue, StatusCode, header};
use lambda_http::lambda_runtime::{Context, LambdaEvent};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tower::{Service, ServiceExt};

use super::{Streamed, Streaming, folded};
use crate::lambda::service;
use crate::lambda::tests::{
    CLIMBS_TO_LOGIN, EXECUTE_API, echo_router, http_api_event_json, refused_envelope,
    rest_event_json,
};

type Feed = Arc<Mutex<Option<mpsc::Receiver<Bytes>>>>;

/// `/chat/health` answers JSON whole, with a repeated `Vary` and two cookies; `/chat/stream`
/// writes each chunk the test feeds it, when it is fed.
fn mixed_router(feed: Feed) -> Router {
    async fn health() -> impl IntoResponse {
        let mut response = axum::Json(json!({"status": "ok"})).into_response();
        let headers = response.headers_mut();
        headers.insert("x-request-id", HeaderValue::from_static("req-42"));
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        headers.append(header::SET_COOKIE, HeaderValue::from_static("a=1; Secure"));
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_static("b=2; HttpOnly"),
        );
        response
    }
    let stream = move || {
        let feed = feed.clone();
        async move {
            let rx = feed.lock().unwrap().take().expect("one stream per feed");
            let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
            });
            (
                [(header::CONTENT_TYPE, "text/event-stream")],
                Body::from_stream(chunks),
            )
        }
    };
    Router::new()
        .route("/chat/health", get(health))
        .route("/chat/stream", get(stream))
}

async fn answer<S>(entry: &mut Streaming<S>, event: &Value) -> Result<Streamed, lambda_http::Error>
where
    Streaming<S>:
        Service<LambdaEvent<Box<RawValue>>, Response = Streamed, Error = lambda_http::Error>,
{
    let payload = RawValue::from_string(event.to_string()).unwrap();
    entry
        .ready()
        .await?
        .call(LambdaEvent::new(payload, Context::default()))
        .await
}

async fn collect(streamed: &mut Streamed) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(chunk) = streamed.stream.next().await {
        body.extend_from_slice(&chunk.unwrap());
    }
    body
}

/// The prelude as lambda_runtime writes it to the Runtime API.
fn prelude_json(streamed: &Streamed) -> Value {
    serde_json::to_value(&streamed.metadata_prelude).unwrap()
}

#[tokio::test]
async fn a_json_answer_and_a_streamed_one_from_the_same_entry_both_come_out_whole() {
    let (tx, rx) = mpsc::channel(4);
    let mut entry = Streaming::new(service(mixed_router(Arc::new(Mutex::new(Some(rx))))));

    let event = rest_event_json("/chat/health", "Prod", EXECUTE_API, Value::Null);
    let mut health = answer(&mut entry, &event).await.unwrap();
    assert_eq!(health.metadata_prelude.status_code, StatusCode::OK);
    assert_eq!(collect(&mut health).await, br#"{"status":"ok"}"#);

    let event = rest_event_json("/chat/stream", "Prod", EXECUTE_API, Value::Null);
    let mut streamed = answer(&mut entry, &event).await.unwrap();
    assert_eq!(
        prelude_json(&streamed),
        json!({"statusCode": 200, "headers": {"content-type": "text/event-stream"}, "cookies": []})
    );
    tx.send(Bytes::from_static(b"event: delta\ndata: one\n\n"))
        .await
        .unwrap();
    // The first chunk is out while the router still holds the rest back.
    assert_eq!(
        streamed.stream.next().await.unwrap().unwrap(),
        Bytes::from_static(b"event: delta\ndata: one\n\n")
    );
    tx.send(Bytes::from_static(b"event: done\ndata: {}\n\n"))
        .await
        .unwrap();
    drop(tx);
    assert_eq!(collect(&mut streamed).await, b"event: done\ndata: {}\n\n");
}

#[tokio::test]
async fn the_prelude_holds_one_string_per_header_and_the_cookies_apart() {
    let mut entry = Streaming::new(service(mixed_router(Arc::new(Mutex::new(None)))));
    let event = rest_event_json("/chat/health", "Prod", EXECUTE_API, Value::Null);
    let health = answer(&mut entry, &event).await.unwrap();
    assert_eq!(
        prelude_json(&health),
        json!({
            "statusCode": 200,
            "headers": {
                "content-type": "application/json",
                "content-length": "15",
                "x-request-id": "req-42",
                "vary": "Origin, Accept-Encoding"
            },
            "cookies": ["a=1; Secure", "b=2; HttpOnly"]
        })
    );
}

#[test]
fn a_header_value_that_is_not_visible_ascii_is_left_out_of_the_prelude() {
    let mut headers = http::HeaderMap::new();
    headers.insert("x-ok", HeaderValue::from_static("fine"));
    headers.insert("x-bad", HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap());
    let folded = folded(&headers);
    assert_eq!(folded.len(), 1);
    assert_eq!(folded.get("x-ok").unwrap(), "fine");
}

#[tokio::test]
async fn the_streaming_entry_refuses_every_climbing_path_with_a_streamed_400() {
    let mut entry = Streaming::new(service(echo_router()));
    for path in CLIMBS_TO_LOGIN {
        let event = rest_event_json(path, "v1", EXECUTE_API, Value::Null);
        let mut refused = answer(&mut entry, &event).await.unwrap();
        assert_eq!(refused.metadata_prelude.status_code, 400, "{path:?}");
        let headers = &refused.metadata_prelude.headers;
        let request_id = headers["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(headers["content-type"], "application/json", "{path:?}");
        assert_eq!(headers["cache-control"], "no-store", "{path:?}");
        let body: Value = serde_json::from_slice(&collect(&mut refused).await).unwrap();
        assert_eq!(body, refused_envelope(&body), "{path:?}");
        assert_eq!(body["error"]["request_id"], json!(request_id), "{path:?}");
    }
    let event = http_api_event_json("/Prod/..%2fauth/login", "Prod", EXECUTE_API, "");
    let refused = answer(&mut entry, &event).await.unwrap();
    assert_eq!(refused.metadata_prelude.status_code, 400);
}

#[tokio::test]
async fn an_event_lambda_http_would_panic_on_is_a_streamed_400_before_the_conversion() {
    let mut entry = Streaming::new(service(echo_router()));
    let mut event = rest_event_json("/auth/login", "Prod", EXECUTE_API, Value::Null);
    event["body"] = json!("not base64 !");
    event["isBase64Encoded"] = json!(true);
    let mut refused = answer(&mut entry, &event).await.unwrap();
    assert_eq!(refused.metadata_prelude.status_code, 400);
    let body: Value = serde_json::from_slice(&collect(&mut refused).await).unwrap();
    assert_eq!(body["error"]["code"], "invalid_request");
    assert_eq!(body["error"]["message"], "the request could not be read");
}

#[tokio::test]
async fn the_streaming_entry_routes_on_the_path_without_the_stage_and_keeps_the_query() {
    let mut entry = Streaming::new(service(echo_router()));
    let event = rest_event_json("/auth/login", "Prod", EXECUTE_API, json!({"next": "home"}));
    let mut routed = answer(&mut entry, &event).await.unwrap();
    assert_eq!(routed.metadata_prelude.status_code, 200);
    assert_eq!(collect(&mut routed).await, b"/auth/login?next=home");
    let event = http_api_event_json("/Prod/auth/login", "Prod", EXECUTE_API, "a=1");
    let mut routed = answer(&mut entry, &event).await.unwrap();
    assert_eq!(collect(&mut routed).await, b"/auth/login?a=1");
}

#[tokio::test]
async fn a_document_that_is_no_api_gateway_event_is_an_invocation_error() {
    let mut entry = Streaming::new(service(echo_router()));
    match answer(&mut entry, &json!({"hello": "world"})).await {
        Ok(_) => panic!("a streamed answer to a document that is no event"),
        Err(error) => assert!(!error.to_string().is_empty()),
    }
}
