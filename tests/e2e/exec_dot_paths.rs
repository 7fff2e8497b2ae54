//! `.` components in sandbox file paths: refused on every files route in every URL spelling,
//! so `./x` can never be a second name (and a second stored key) for `x`, and `.` never names
//! the sandbox directory; listing prefixes follow the same rule in the components they complete.

use http::Method;
use serde_json::json;

use crate::helpers::TestApp;

const DOT: &str = "path must not contain '.' components";

#[tokio::test]
async fn a_dot_component_in_a_file_path_is_refused_and_overwrites_nothing() {
    let app = TestApp::builder().exec(&[]).build().await;
    let s = app.signed_up("dots@example.com").await;
    let r = app
        .file(Method::PUT, "/exec/files/x", &s.access, b"original")
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    for uri in [
        "/exec/files/./x",
        "/exec/files/%2e/x",
        "/exec/files/%2E%2Fx",
        "/exec/files/a/./b",
        "/exec/files/a/.",
        "/exec/files/.",
    ] {
        for method in [Method::PUT, Method::GET, Method::DELETE] {
            app.file(method.clone(), uri, &s.access, b"overwritten")
                .await
                .assert_error(400, "invalid_path", DOT);
        }
    }
    let r = app.get("/exec/files/x", &s.access).await;
    assert_eq!((r.status.as_u16(), r.text.as_str()), (200, "original"));
    let r = app.get("/exec/files", &s.access).await;
    assert_eq!(r.body["files"], json!([{"path": "x", "size": 8}]));
    let r = app.exec(&s.access, json!({"argv": ["cat", "x"]})).await;
    assert_eq!(r.body["stdout"], "original", "{}", r.text);
}

#[tokio::test]
async fn names_that_only_contain_dots_are_ordinary_files() {
    let app = TestApp::builder().exec(&[]).build().await;
    let s = app.signed_up("dotnames@example.com").await;
    for (uri, name) in [
        ("/exec/files/.env", ".env"),
        ("/exec/files/...", "..."),
        ("/exec/files/a.b/c..d", "a.b/c..d"),
    ] {
        let r = app.file(Method::PUT, uri, &s.access, name.as_bytes()).await;
        assert_eq!(r.status, 201, "{uri}: {}", r.text);
        let r = app.get(uri, &s.access).await;
        assert_eq!((r.status.as_u16(), r.text.as_str()), (200, name));
    }
    let r = app.exec(&s.access, json!({"argv": ["ls", "."]})).await;
    assert_eq!(r.body["stdout"], "a.b\n", "{}", r.text);
}

#[tokio::test]
async fn a_listing_prefix_obeys_the_path_rules_in_the_components_it_completes() {
    let app = TestApp::builder().exec(&[]).build().await;
    let s = app.signed_up("prefix@example.com").await;
    for uri in ["/exec/files/.env", "/exec/files/data/in.txt"] {
        let r = app.file(Method::PUT, uri, &s.access, b"1").await;
        assert_eq!(r.status, 201, "{uri}: {}", r.text);
    }
    let r = app.get("/exec/files?prefix=.", &s.access).await;
    assert_eq!(r.body["files"], json!([{"path": ".env", "size": 1}]));
    let r = app.get("/exec/files?prefix=data/in.", &s.access).await;
    assert_eq!(r.body["files"], json!([{"path": "data/in.txt", "size": 1}]));
    for (uri, message) in [
        ("/exec/files?prefix=./", DOT),
        ("/exec/files?prefix=./data/", DOT),
        ("/exec/files?prefix=data/./", DOT),
        ("/exec/files?prefix=../", "path must not contain '..'"),
        (
            "/exec/files?prefix=/data",
            "path must be relative to the sandbox",
        ),
        (
            "/exec/files?prefix=data//",
            "path must not contain empty components",
        ),
        ("/exec/files?prefix=a%00", "path must not contain NUL"),
    ] {
        app.get(uri, &s.access)
            .await
            .assert_error(400, "invalid_path", message);
    }
}
