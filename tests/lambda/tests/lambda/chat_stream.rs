//! The chat function as deployed behind API Gateway's streamed integration: every answer it
//! gives is a Lambda streamed response, and a client reads JSON answers whole, byte for byte,
//! with the status, envelope, request id, rate-limit and CORS headers in the prelude; the event
//! guard's refusal is streamed too.

use bastion_chat::testing::Answer;
use bastion_lambda_tests::deployment::ORIGIN;
use bastion_lambda_tests::{Deployment, GatewayResponse, RestEvent};
use serde_json::json;

use crate::signed_up;

/// The headers every answer of the edge carries, read from the prelude.
fn assert_edge_headers(r: &GatewayResponse) {
    assert!(r.streamed, "not streamed: {r:?}");
    assert!(
        r.header("x-request-id").is_some_and(|id| !id.is_empty()),
        "{r:?}"
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{r:?}");
    assert_eq!(r.header("cache-control"), Some("no-store"), "{r:?}");
    // One string per header (API Gateway answers 502 to a list): Vary is folded, not repeated.
    for (name, values) in &r.headers {
        if name != "set-cookie" {
            assert_eq!(values.len(), 1, "{name}: {values:?}");
        }
    }
}

#[tokio::test]
async fn health_is_a_streamed_200_whose_json_comes_out_whole_with_the_rate_limit_headers() {
    let d = Deployment::new().await;
    let chat = d.start("chat").await;
    let r = chat.call(&RestEvent::get("/chat/health")).await;
    assert_edge_headers(&r);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text(), r#"{"status":"ok"}"#);
    assert_eq!(r.header("content-length"), Some("15"));
    for name in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
        assert!(r.header(name).is_some(), "{name}: {:?}", r.headers);
    }
}

#[tokio::test]
async fn a_buffered_chat_turn_comes_out_whole_and_byte_exact_through_the_stream() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let chat = d.start("chat").await;
    let (_, access) = signed_up(&auth, "whole@example.com").await;
    // Long enough to span many writes on the way, with characters of every UTF-8 width.
    let reply: String = "Rust — безопасность, 安全, 🦀. ".repeat(900);
    d.llm.script([Answer::Reply(reply.clone())]);

    let r = chat
        .call(
            &RestEvent::post_json("/chat", &json!({"message": "Tell me at length."}))
                .bearer(&access),
        )
        .await;
    assert_edge_headers(&r);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    let body = r.json();
    assert!(
        body["message"]["content"] == json!(reply),
        "the reply was altered"
    );
    // The reply's own JSON encoding is in the bytes unchanged: no chunk was lost, doubled or
    // cut inside a character on the way.
    let encoded = serde_json::to_vec(&reply).unwrap();
    assert!(
        r.body
            .windows(encoded.len())
            .any(|w| w == encoded.as_slice()),
        "the reply's bytes are not in the body"
    );

    let shown = chat
        .call(
            &RestEvent::get(&format!(
                "/chat/conversations/{}",
                body["conversation_id"].as_str().unwrap()
            ))
            .bearer(&access),
        )
        .await;
    assert_eq!(shown.status, 200, "{}", shown.text());
    let messages = shown.json()["messages"].as_array().unwrap().clone();
    assert!(
        messages
            .iter()
            .any(|m| m["role"] == "assistant" && m["content"] == json!(reply)),
        "the stored reply differs"
    );
}

#[tokio::test]
async fn deleting_a_conversation_is_a_streamed_204_with_an_empty_body() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let chat = d.start("chat").await;
    let (_, access) = signed_up(&auth, "delete@example.com").await;
    let turn = chat
        .call(&RestEvent::post_json("/chat", &json!({"message": "hi"})).bearer(&access))
        .await;
    assert_eq!(turn.status, 200, "{}", turn.text());
    let path = format!(
        "/chat/conversations/{}",
        turn.json()["conversation_id"].as_str().unwrap()
    );

    let r = chat
        .call(&RestEvent::new("DELETE", &path).bearer(&access))
        .await;
    assert_edge_headers(&r);
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty(), "{:?}", r.text());

    let gone = chat.call(&RestEvent::get(&path).bearer(&access)).await;
    gone.assert_error(404, "not_found", "no such resource");
}

#[tokio::test]
async fn a_turn_without_a_token_is_a_streamed_401_envelope() {
    let d = Deployment::new().await;
    let chat = d.start("chat").await;
    let r = chat
        .call(&RestEvent::post_json("/chat", &json!({"message": "hi"})))
        .await;
    assert_edge_headers(&r);
    r.assert_error(401, "unauthorized", "missing bearer token");
    let forged = chat
        .call(&RestEvent::post_json("/chat", &json!({"message": "hi"})).bearer("not.a.jwt"))
        .await;
    assert_edge_headers(&forged);
    assert_eq!(forged.status, 401, "{}", forged.text());
    assert_eq!(forged.json()["error"]["code"], json!("unauthorized"));
}

const REFUSED: &str = "the path must not hold '.' or '..' segments, backslashes, control characters, or encoded dots, slashes or backslashes";

#[tokio::test]
async fn a_chat_path_that_would_be_rewritten_is_refused_by_the_guard_with_a_streamed_400() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let chat = d.start("chat").await;
    let (_, access) = signed_up(&auth, "climb@example.com").await;
    for path in [
        "/chat/x/../conversations",
        "/chat/x/%2e%2e/conversations",
        "/chat/x/..\\conversations",
        "/chat/.%2e/chat/conversations",
    ] {
        let r = chat.call(&RestEvent::get(path).bearer(&access)).await;
        assert_edge_headers(&r);
        r.assert_error(400, "invalid_request", REFUSED);
    }
    // The instance keeps serving the canonical path.
    let r = chat
        .call(&RestEvent::get("/chat/conversations").bearer(&access))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn cors_headers_ride_in_the_prelude_for_an_allowed_origin_and_never_for_another() {
    let d = Deployment::new().await;
    let chat = d.start("chat").await;
    let allowed = chat
        .call(&RestEvent::get("/chat/health").header("Origin", ORIGIN))
        .await;
    assert_edge_headers(&allowed);
    assert_eq!(allowed.header("access-control-allow-origin"), Some(ORIGIN));
    assert_eq!(
        allowed.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        allowed.header("access-control-expose-headers"),
        Some("x-request-id, retry-after, ratelimit-limit, ratelimit-remaining, ratelimit-reset")
    );
    assert_eq!(allowed.header("vary"), Some("Origin"));

    let preflight = chat
        .call(
            &RestEvent::new("OPTIONS", "/chat")
                .header("Origin", ORIGIN)
                .header("Access-Control-Request-Method", "POST")
                .header(
                    "Access-Control-Request-Headers",
                    "authorization, content-type",
                ),
        )
        .await;
    assert_edge_headers(&preflight);
    assert_eq!(preflight.status, 204);
    assert!(preflight.body.is_empty());
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some(ORIGIN)
    );
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("GET, POST, PUT, DELETE, OPTIONS")
    );

    let other = chat
        .call(&RestEvent::get("/chat/health").header("Origin", "https://evil.example"))
        .await;
    assert_edge_headers(&other);
    assert_eq!(other.status, 200);
    assert_eq!(other.header("access-control-allow-origin"), None);
    assert_eq!(other.header("access-control-allow-credentials"), None);
}

#[tokio::test]
async fn events_lambda_http_cannot_convert_get_a_streamed_400_and_chat_keeps_serving() {
    let d = Deployment::new().await;
    let chat = d.start("chat").await;
    let findings = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/findings");
    let mut events = Vec::new();
    for entry in std::fs::read_dir(findings).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("apigw-")
        {
            events.push(serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap());
        }
    }
    let mut bad_body = RestEvent::post_json("/chat", &json!({})).to_json();
    bad_body["body"] = json!("not base64 !");
    bad_body["isBase64Encoded"] = json!(true);
    events.push(bad_body);
    assert_eq!(events.len(), 6);
    for event in events {
        let r = chat.call_raw(event).await;
        assert_edge_headers(&r);
        r.assert_error(400, "invalid_request", "the request could not be read");
        let health = chat.call(&RestEvent::get("/chat/health")).await;
        assert_eq!(health.status, 200, "{}", health.text());
    }
}
