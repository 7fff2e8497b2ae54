//! Deleting an account deletes its exec workspace: locally the auth router purges the
//! directory through its account-files port before answering (in Lambda the table's stream
//! brings the deletion to exec, see `bastion_exec::purge`).

use http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp};

/// The owner directories under the workspace root.
fn owners(app: &TestApp) -> Vec<String> {
    let root = app.workspace_root().unwrap();
    let mut names: Vec<String> = match std::fs::read_dir(&root) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
        Err(e) => panic!("{e}"),
    };
    names.sort();
    names
}

#[tokio::test]
async fn deleting_an_account_removes_its_workspace_directory_and_no_one_elses() {
    let app = TestApp::builder().exec(&[]).build().await;
    let leaving = app.signed_up("leaving@example.com").await;
    let staying = app.signed_up("staying@example.com").await;
    for (s, body) in [(&leaving, "mine"), (&staying, "theirs")] {
        for path in ["notes/a.txt", "top"] {
            let r = app
                .file(
                    Method::PUT,
                    &format!("/exec/files/{path}"),
                    &s.access,
                    body.as_bytes(),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        }
    }
    let before = owners(&app);
    assert_eq!(before.len(), 2, "one workspace directory per user");

    let r = app
        .call(
            Method::DELETE,
            "/auth/account",
            Some(&leaving.access),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);

    let after = owners(&app);
    assert_eq!(
        after.len(),
        1,
        "the deleted account's directory is gone: {after:?}"
    );
    assert!(before.contains(&after[0]));
    let r = app.get("/exec/files/notes/a.txt", &staying.access).await;
    assert_eq!((r.status, r.text.as_str()), (StatusCode::OK, "theirs"));
    let r = app.get("/exec/files", &staying.access).await;
    assert_eq!(
        r.body["files"],
        json!([{"path": "notes/a.txt", "size": 6}, {"path": "top", "size": 6}])
    );
}
