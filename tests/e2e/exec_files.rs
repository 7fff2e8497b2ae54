//! The sandbox file routes: round trips, path rules in URL spellings, quotas, and isolation
//! between users.

use http::Method;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_file_can_be_put_read_listed_used_and_deleted() {
    let app = TestApp::builder().exec(&[]).build().await;
    let s = app.signed_up("files@example.com").await;
    let r = app
        .file(Method::PUT, "/exec/files/data/in.txt", &s.access, b"b\na\n")
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .file(
            Method::PUT,
            "/exec/files/data/in.txt",
            &s.access,
            b"b\na\nc\n",
        )
        .await;
    assert_eq!(r.status, 200);
    let r = app.get("/exec/files/data/in.txt", &s.access).await;
    assert_eq!((r.status.as_u16(), r.text.as_str()), (200, "b\na\nc\n"));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    let r = app.get("/exec/files?prefix=data/", &s.access).await;
    assert_eq!(r.body["files"], json!([{"path": "data/in.txt", "size": 6}]));
    assert_eq!(r.body["usage"], json!({"bytes": 6, "files": 1}));
    let r = app
        .exec(&s.access, json!({"argv": ["sort", "data/in.txt"]}))
        .await;
    assert_eq!(r.body["stdout"], "a\nb\nc\n");
    let r = app
        .file(Method::DELETE, "/exec/files/data/in.txt", &s.access, b"")
        .await;
    assert_eq!(r.status, 204);
    let r = app.get("/exec/files/data/in.txt", &s.access).await;
    r.assert_error(404, "not_found", "no such file");
    // Directories are implied by the files beneath them: with its last file, `data` is gone.
    app.file(Method::DELETE, "/exec/files/data", &s.access, b"")
        .await
        .assert_error(404, "not_found", "no such file");
}

#[tokio::test]
async fn traversal_and_absolute_paths_are_refused_in_url_spellings() {
    let app = TestApp::builder().exec(&[]).build().await;
    let s = app.signed_up("paths@example.com").await;
    let cases = [
        (
            "/exec/files/..%2f..%2fetc%2fpasswd",
            "path must not contain '..'",
        ),
        (
            "/exec/files/a/%2e%2e/%2e%2e/x",
            "path must not contain '..'",
        ),
        (
            "/exec/files/%2Fetc%2Fpasswd",
            "path must be relative to the sandbox",
        ),
        ("/exec/files/a//b", "path must not contain empty components"),
        ("/exec/files/a/", "path must not contain empty components"),
        ("/exec/files/a%00b", "path must not contain NUL"),
    ];
    for (uri, message) in cases {
        let r = app.get(uri, &s.access).await;
        r.assert_error(400, "invalid_path", message);
        let r = app.file(Method::PUT, uri, &s.access, b"x").await;
        r.assert_error(400, "invalid_path", message);
    }
    let long = format!("/exec/files/{}", "a".repeat(256));
    app.get(&long, &s.access).await.assert_error(
        400,
        "invalid_path",
        "path component is longer than 255 bytes",
    );
}

#[tokio::test]
async fn another_users_sandbox_is_invisible() {
    let app = TestApp::builder().exec(&[]).build().await;
    let alice = app.signed_up("alice@example.com").await;
    let bob = app.signed_up("bob@example.com").await;
    let r = app
        .file(
            Method::PUT,
            "/exec/files/secret.txt",
            &alice.access,
            b"alice only",
        )
        .await;
    assert_eq!(r.status, 201);
    app.get("/exec/files/secret.txt", &bob.access)
        .await
        .assert_error(404, "not_found", "no such file");
    let r = app.get("/exec/files", &bob.access).await;
    assert_eq!(r.body["files"], json!([]));
    let r = app
        .exec(&bob.access, json!({"argv": ["cat", "secret.txt"]}))
        .await;
    assert_eq!(
        r.body["stderr"],
        "cat: secret.txt: No such file or directory\n"
    );
    let r = app.exec(&bob.access, json!({"argv": ["ls", "-a"]})).await;
    assert_eq!(r.body["stdout"], ".\n..\n");
}

#[tokio::test]
async fn quotas_refuse_bytes_with_413_and_files_with_409() {
    let app = TestApp::builder()
        .exec(&[
            ("EXEC_SANDBOX_QUOTA_BYTES", "2048"),
            ("EXEC_SANDBOX_QUOTA_FILES", "2"),
        ])
        .build()
        .await;
    let s = app.signed_up("quota@example.com").await;
    assert_eq!(
        app.file(Method::PUT, "/exec/files/a", &s.access, &[1; 1500])
            .await
            .status,
        201
    );
    app.file(Method::PUT, "/exec/files/b", &s.access, &[1; 1000])
        .await
        .assert_error(
            413,
            "sandbox_quota_exceeded",
            "sandbox storage quota exceeded",
        );
    assert_eq!(
        app.file(Method::PUT, "/exec/files/a", &s.access, &[1; 2000])
            .await
            .status,
        200,
        "replacing counts the new size only"
    );
    assert_eq!(
        app.file(Method::PUT, "/exec/files/b", &s.access, &[1; 100])
            .await
            .status,
        413
    );
    app.file(Method::PUT, "/exec/files/a", &s.access, &[1; 10])
        .await;
    assert_eq!(
        app.file(Method::PUT, "/exec/files/b", &s.access, &[1; 10])
            .await
            .status,
        201
    );
    app.file(Method::PUT, "/exec/files/c", &s.access, b"x")
        .await
        .assert_error(
            409,
            "sandbox_file_limit",
            "sandbox file count quota exceeded",
        );
    let r = app.exec(&s.access, json!({"argv": ["cp", "a", "c"]})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (&r.body["exit_code"], &r.body["files_saved"]),
        (&json!(0), &json!(false)),
        "a run whose files exceed the quota runs, but nothing it changed is kept"
    );
    let r = app.get("/exec/files", &s.access).await;
    assert_eq!(r.body["usage"], json!({"bytes": 20, "files": 2}));
    let r = app.exec(&s.access, json!({"argv": ["rm", "b"]})).await;
    assert_eq!(r.body["files_saved"], json!(true), "{}", r.text);
    let r = app.get("/exec/files", &s.access).await;
    assert_eq!(r.body["files"], json!([{"path": "a", "size": 10}]));
}

#[tokio::test]
async fn a_directory_is_not_a_file() {
    let app = TestApp::builder().exec(&[]).build().await;
    let s = app.signed_up("dirs@example.com").await;
    app.file(Method::PUT, "/exec/files/d/f", &s.access, b"x")
        .await;
    app.get("/exec/files/d", &s.access).await.assert_error(
        409,
        "is_a_directory",
        "path names a directory",
    );
    app.file(Method::PUT, "/exec/files/d/f/g", &s.access, b"x")
        .await
        .assert_error(
            409,
            "not_a_directory",
            "a parent of the path is not a directory",
        );
    app.file(Method::DELETE, "/exec/files/d", &s.access, b"")
        .await
        .assert_error(409, "directory_not_empty", "directory is not empty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_cannot_all_pass_the_quota_check_before_any_writes() {
    // Each put holds the user's exec lease from its quota check to its write.
    let app = TestApp::builder()
        .exec(&[
            ("EXEC_SANDBOX_QUOTA_BYTES", "100000"),
            ("EXEC_SANDBOX_QUOTA_FILES", "2000"),
        ])
        .build()
        .await;
    let s = app.signed_up("race@example.com").await;
    let puts = (0..40).map(|i| {
        let app = app.clone();
        let token = s.access.clone();
        tokio::spawn(async move {
            app.file(
                Method::PUT,
                &format!("/exec/files/f{i}"),
                &token,
                &[7; 10_000],
            )
            .await
            .status
        })
    });
    let mut created = 0;
    for put in futures_util::future::join_all(puts).await {
        match put.unwrap().as_u16() {
            201 => created += 1,
            413 => {}
            other => panic!("status {other}"),
        }
    }
    assert_eq!(created, 10);
    let r = app.get("/exec/files", &s.access).await;
    assert_eq!(r.body["usage"]["bytes"], 100_000);
}
