//! Paths the URL parser would rewrite after API Gateway and the WAF judged them: the attack
//! spellings of `/v1/admin/..\auth\login` (stage `Prod` here) against the real auth function
//! get 400 before any route, while names with dots and other escapes still reach exec.

use bastion_lambda_tests::deployment::PASSWORD;
use bastion_lambda_tests::{Deployment, RestEvent};
use serde_json::json;

use crate::signed_up;

/// The event paths API Gateway passes on for `/Prod/admin/…` spellings that end at
/// `/auth/login` once `\` becomes `/` and dot segments are removed. Without the guard the
/// literal `\`, `..`, `./..`, `%2e%2e` and `.%2e` spellings signed in here (the tab one too,
/// until the login limit answered 429); the `%5C` and `%2F` spellings got 404, since a REST
/// event path keeps the client's escapes, but an HTTP API decodes them into the first kind.
const REWRITTEN_TO_LOGIN: [&str; 9] = [
    "/admin/..%5Cauth%5Clogin",
    "/admin/..%5cauth%5clogin",
    "/admin/..\\auth\\login",
    "/admin/%2e%2e/auth/login",
    "/admin/%2E%2E%2Fauth%2Flogin",
    "/admin/.%2e/auth/login",
    "/admin/../auth/login",
    "/admin/./../auth/login",
    "/admin/.\t./auth/login",
];

const REFUSED: &str = "the path must not hold '.' or '..' segments, backslashes, control characters, or encoded dots, slashes or backslashes";

#[tokio::test]
async fn admin_paths_that_normalise_to_auth_login_are_refused_before_routing() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    signed_up(&auth, "waf@example.com").await;
    let credentials = json!({"email": "waf@example.com", "password": PASSWORD});
    for path in REWRITTEN_TO_LOGIN {
        let r = auth.call(&RestEvent::post_json(path, &credentials)).await;
        assert!(
            r.json().get("access_token").is_none(),
            "{path:?} signed in: {}",
            r.text()
        );
        r.assert_error(400, "invalid_request", REFUSED);
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    // The instance keeps serving, and the canonical path signs in.
    let r = auth
        .call(&RestEvent::post_json("/auth/login", &credentials))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn exec_file_names_with_dots_inside_and_other_escapes_are_still_served() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let (_, access) = signed_up(&auth, "dots@example.com").await;
    let exec = d.start("exec").await;
    for (path, name) in [
        ("a.b/c..d", "a.b/c..d"),
        (".env", ".env"),
        ("...", "..."),
        ("notes%20v2.txt", "notes v2.txt"),
        ("%41bc", "Abc"),
    ] {
        let put = exec
            .call(
                &RestEvent::new("PUT", &format!("/exec/files/{path}"))
                    .bearer(&access)
                    .header("Content-Type", "application/octet-stream")
                    .body(name.as_bytes().to_vec())
                    .base64(),
            )
            .await;
        assert_eq!(put.status, 201, "{path}: {}", put.text());
        let got = exec
            .call(&RestEvent::get(&format!("/exec/files/{path}")).bearer(&access))
            .await;
        assert_eq!((got.status, got.text()), (200, name.to_owned()), "{path}");
    }
    let listed = exec
        .call(&RestEvent::get("/exec/files").bearer(&access))
        .await;
    let names: Vec<_> = listed.json()["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["...", ".env", "Abc", "a.b/c..d", "notes v2.txt"]);
}

#[tokio::test]
async fn exec_file_paths_with_dot_segments_are_refused_at_the_edge() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let (_, access) = signed_up(&auth, "dotseg@example.com").await;
    let exec = d.start("exec").await;
    for path in ["/exec/files/./x", "/exec/files/.", "/exec/files/a/%2e/x"] {
        let r = exec
            .call(
                &RestEvent::new("PUT", path)
                    .bearer(&access)
                    .body(b"overwrite".to_vec()),
            )
            .await;
        r.assert_error(400, "invalid_request", REFUSED);
    }
}

/// Sends one request to moto as written, without a URL parser in between (which would remove
/// the `.` segments this test must plant), and returns the status line and body.
async fn raw_s3(endpoint: &str, method: &str, target: &str, body: &[u8]) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = endpoint.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The keys of the bucket, read from ListObjectsV2's XML.
async fn bucket_keys(d: &Deployment) -> Vec<String> {
    let (status, xml) = raw_s3(
        &d.moto.endpoint,
        "GET",
        &format!("/{}?list-type=2", d.bucket),
        b"",
    )
    .await;
    assert!(status.contains(" 200 "), "{status}: {xml}");
    xml.split("<Key>")
        .skip(1)
        .filter_map(|s| s.split_once("</Key>").map(|(k, _)| k.to_owned()))
        .collect()
}

#[tokio::test]
async fn dot_keys_already_in_the_workspace_bucket_do_not_break_runs() {
    let d = Deployment::new().await;
    let auth = d.start("auth").await;
    let (_, access) = signed_up(&auth, "planted@example.com").await;
    let exec = d.start("exec").await;
    let put = exec
        .call(
            &RestEvent::new("PUT", "/exec/files/data/in.txt")
                .bearer(&access)
                .body(b"b\na\n".to_vec())
                .base64(),
        )
        .await;
    assert_eq!(put.status, 201, "{}", put.text());
    let keys = bucket_keys(&d).await;
    let owner = keys[0].strip_suffix("/data/in.txt").unwrap().to_owned();
    // What the files routes stored for `/exec/files/.` and `/exec/files/./data/in.txt` before
    // `.` components were refused.
    for planted in [format!("{owner}/."), format!("{owner}/./data/in.txt")] {
        let (status, text) = raw_s3(
            &d.moto.endpoint,
            "PUT",
            &format!("/{}/{planted}", d.bucket),
            b"planted",
        )
        .await;
        assert!(status.contains(" 200 "), "{status}: {text}");
    }
    let mut keys = bucket_keys(&d).await;
    keys.sort();
    assert_eq!(
        keys,
        [
            format!("{owner}/."),
            format!("{owner}/./data/in.txt"),
            format!("{owner}/data/in.txt")
        ]
    );
    for _ in 0..2 {
        let r = exec
            .call(
                &RestEvent::post_json("/exec/run", &json!({"argv": ["sort", "data/in.txt"]}))
                    .bearer(&access),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["stdout"], json!("a\nb\n"));
    }
    let listed = exec
        .call(&RestEvent::get("/exec/files").bearer(&access))
        .await;
    assert_eq!(
        listed.json()["files"],
        json!([{"path": "data/in.txt", "size": 4}])
    );
}
