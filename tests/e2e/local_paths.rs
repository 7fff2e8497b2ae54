//! Local HTTP, as bastion-local serves it (hyper under `axum::serve`, every router under the
//! edge): the path reaches the routers as the client sent it. Nothing between them parses it
//! as a URL, so the spellings the Lambda edge must refuse (`..`, `%2e%2e`, `\`) are never
//! rewritten into another route here; they match no route, or the sandbox path rules.

use std::net::SocketAddr;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{PASSWORD, TestApp};

/// Sends `request_target` exactly as written over a real socket and returns the status code
/// and body.
async fn raw(
    addr: SocketAddr,
    method: &str,
    target: &str,
    body: &str,
    token: &str,
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = if token.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {token}\r\n")
    };
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn local_http_hands_the_routers_the_path_as_sent_so_no_spelling_reaches_auth_login() {
    let app = TestApp::builder().exec(&[]).build().await;
    let s = app.signed_up("local-paths@example.com").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let credentials = json!({"email": "local-paths@example.com", "password": PASSWORD}).to_string();
    for target in [
        "/admin/../auth/login",
        "/admin/./../auth/login",
        "/admin/%2e%2e/auth/login",
        "/admin/.%2E/auth/login",
        "/admin/..%5Cauth%5Clogin",
        "/admin/..%2Fauth%2Flogin",
    ] {
        let (status, body) = raw(addr, "POST", target, &credentials, "").await;
        assert_eq!(status, 404, "{target}: {body}");
        assert!(!body.contains("access_token"), "{target}: {body}");
    }
    // hyper takes even a literal backslash as sent; no route is spelled with one.
    let (status, body) = raw(addr, "POST", "/admin/..\\auth\\login", &credentials, "").await;
    assert_eq!(status, 404, "{body}");
    assert!(!body.contains("access_token"), "{body}");
    // The same server signs in on the route itself, and the exec routes see `.` verbatim.
    let (status, body) = raw(addr, "POST", "/auth/login", &credentials, "").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = raw(addr, "PUT", "/exec/files/./x", "", &s.access).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("path must not contain '.' components"),
        "{body}"
    );
    server.abort();
}
