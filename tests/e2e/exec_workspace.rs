//! Exec workspaces through the full edge: a run sees the stored files and its changes are
//! written back; the per-user lease turns a concurrent run away with 409 and frees itself
//! at its expiry.

use bastion_core::{RequestId, Timestamp, UserId};
use http::Method;
use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn a_run_writes_back_new_changed_and_deleted_files() {
    let app = TestApp::builder().exec(&[]).build().await;
    let s = app.signed_up("writeback@example.com").await;
    for (path, body) in [("keep.txt", "same"), ("old.txt", "old"), ("mod.txt", "v1")] {
        let r = app
            .file(
                Method::PUT,
                &format!("/exec/files/{path}"),
                &s.access,
                body.as_bytes(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    for argv in [
        // Kept files only: an empty directory is gone by the next run.
        json!(["mkdir", "empty"]),
        json!(["cp", "keep.txt", "new.txt"]),
        json!(["rm", "old.txt"]),
        json!(["cp", "keep.txt", "mod.txt"]),
    ] {
        let r = app.exec(&s.access, json!({ "argv": argv })).await;
        assert_eq!(r.body["files_saved"], json!(true), "{}", r.text);
    }
    let r = app.get("/exec/files", &s.access).await;
    assert_eq!(
        r.body["files"],
        json!([
            {"path": "keep.txt", "size": 4},
            {"path": "mod.txt", "size": 4},
            {"path": "new.txt", "size": 4},
        ])
    );
    let r = app.get("/exec/files/mod.txt", &s.access).await;
    assert_eq!((r.status.as_u16(), r.text.as_str()), (200, "same"));
    let r = app.exec(&s.access, json!({"argv": ["ls", "-a"]})).await;
    assert_eq!(r.body["stdout"], ".\n..\nkeep.txt\nmod.txt\nnew.txt\n");
}

#[tokio::test]
async fn a_run_while_the_users_lease_is_held_gets_409_until_the_lease_expires() {
    let app = TestApp::builder().exec(&[]).build().await;
    let s = app.signed_up("leased@example.com").await;
    let user = UserId::parse(&s.user_id).unwrap();
    let other = app.signed_up("free@example.com").await;
    // Another instance's run holds the lease (76 s: the 10 s run timeout plus 66 s).
    let now: Timestamp = bastion_core::Clock::now(&app.clock);
    assert!(
        app.stores
            .leases
            .acquire_lease(
                &format!("exec#{}", user.as_str()),
                &RequestId::generate(),
                now,
                76
            )
            .await
            .unwrap()
    );
    app.exec(&s.access, json!({"argv": ["echo", "hi"]}))
        .await
        .assert_error(
            409,
            "run_in_progress",
            "another run of yours is in progress",
        );
    let r = app
        .exec(&other.access, json!({"argv": ["echo", "hi"]}))
        .await;
    assert_eq!(r.status, 200, "another user is not held up: {}", r.text);
    app.file(Method::PUT, "/exec/files/f", &s.access, b"x")
        .await
        .assert_error(
            409,
            "workspace_busy",
            "a run or another change of your files is in progress; retry shortly",
        );
    app.clock.advance(75);
    app.exec(&s.access, json!({"argv": ["echo", "hi"]}))
        .await
        .assert_error(
            409,
            "run_in_progress",
            "another run of yours is in progress",
        );
    // Expired but still stored (nothing deletes it): the expiry in the item decides.
    app.clock.advance(1);
    let r = app.exec(&s.access, json!({"argv": ["echo", "hi"]})).await;
    assert_eq!(
        (r.status.as_u16(), &r.body["stdout"]),
        (200, &json!("hi\n"))
    );
    let r = app
        .exec(&s.access, json!({"argv": ["echo", "again"]}))
        .await;
    assert_eq!(r.status, 200, "the run released its lease: {}", r.text);
}
