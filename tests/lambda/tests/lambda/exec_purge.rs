//! A deleted account's workspace purged through the exec binary's real entry: the table's
//! stream record of the profile's removal, as the event source mapping delivers it, leaves no
//! version or delete marker of that user in the versioned bucket and every other user's.

use bastion_lambda_tests::deployment::PASSWORD;
use bastion_lambda_tests::{Deployment, Function, Outcome, RestEvent};
use serde_json::{Value, json};

use crate::{put_file, signed_up};

/// One stream batch of `(eventName, pk, sk)` records from the deployment's table.
fn stream_batch(d: &Deployment, records: &[(&str, String, &str)]) -> Value {
    let arn = format!(
        "arn:aws:dynamodb:us-east-1:123456789012:table/{}/stream/2026-12-06T19:00:00.000",
        d.table
    );
    let records: Vec<Value> = records
        .iter()
        .enumerate()
        .map(|(i, (name, pk, sk))| {
            json!({
                "eventID": format!("e{i}"), "eventName": name, "eventVersion": "1.1",
                "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "eventSourceARN": arn,
                "dynamodb": {"Keys": {"pk": {"S": pk}, "sk": {"S": sk}},
                    "SequenceNumber": format!("{}", 100 + i), "SizeBytes": 60,
                    "StreamViewType": "KEYS_ONLY"}
            })
        })
        .collect();
    json!({ "Records": records })
}

async fn answer(exec: &Function, event: Value) -> Value {
    match exec.invoke(event).await {
        Outcome::Response(v) => v,
        other => panic!("the stream invocation failed: {other:?}"),
    }
}

/// Versions and markers whose key starts with `prefix`.
fn under(all: &[(String, bool)], prefix: &str) -> Vec<(String, bool)> {
    all.iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .cloned()
        .collect()
}

/// Three versions of one file and a deleted file (its version behind a marker), through exec.
async fn fill(exec: &Function, access: &str) {
    for (content, status) in [("v1", 201), ("v2", 200), ("v3", 200)] {
        let r = exec
            .call(&put_file("notes.md", access, content.as_bytes()))
            .await;
        assert_eq!(r.status, status, "{}", r.text());
    }
    let r = exec.call(&put_file("tmp/scratch", access, b"x")).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = exec
        .call(&RestEvent::new("DELETE", "/exec/files/tmp/scratch").bearer(access))
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
}

/// The two owner prefixes in the bucket, each holding what `fill` leaves.
fn owner_prefixes(all: &[(String, bool)]) -> Vec<String> {
    let mut prefixes: Vec<String> = all
        .iter()
        .map(|(k, _)| k.split_once('/').unwrap().0.to_owned() + "/")
        .collect();
    prefixes.dedup();
    assert_eq!(prefixes.len(), 2, "{all:?}");
    for p in &prefixes {
        assert_eq!(
            under(all, p).len(),
            5,
            "3 versions, a deleted file and its marker"
        );
    }
    prefixes
}

#[tokio::test]
async fn the_stream_record_of_a_deleted_profile_purges_that_users_versions_and_markers_only() {
    let d = Deployment::new().await;
    d.moto.enable_versioning(&d.bucket).await;
    let auth = d.start("auth").await;
    let (gone_id, gone) = signed_up(&auth, "gone@example.com").await;
    let (kept_id, kept) = signed_up(&auth, "kept@example.com").await;
    let exec = d.start("exec").await;
    fill(&exec, &gone).await;
    fill(&exec, &kept).await;
    let before = d.moto.object_versions(&d.bucket).await;
    let prefixes = owner_prefixes(&before);

    // Not a deletion: a profile change, and a "removal" of a profile that still exists.
    let unrelated = stream_batch(
        &d,
        &[
            ("MODIFY", format!("USER#{gone_id}"), "PROFILE"),
            ("REMOVE", format!("USER#{kept_id}"), "PROFILE"),
        ],
    );
    assert_eq!(
        answer(&exec, unrelated).await,
        json!({"batchItemFailures": []})
    );
    assert_eq!(d.moto.object_versions(&d.bucket).await, before);

    let r = auth
        .call(
            &RestEvent::new("DELETE", "/auth/account")
                .bearer(&gone)
                .header("Content-Type", "application/json")
                .body(json!({"password": PASSWORD}).to_string().into_bytes()),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let removal = stream_batch(&d, &[("REMOVE", format!("USER#{gone_id}"), "PROFILE")]);
    assert_eq!(
        answer(&exec, removal.clone()).await,
        json!({"batchItemFailures": []})
    );

    let after = d.moto.object_versions(&d.bucket).await;
    let survivor = prefixes
        .iter()
        .find(|p| !under(&after, p).is_empty())
        .expect("the other user's workspace is still there");
    assert_eq!(
        after,
        under(&before, survivor),
        "only the deleted user's entries went"
    );
    let r = exec
        .call(&RestEvent::new("GET", "/exec/files/notes.md").bearer(&kept))
        .await;
    assert_eq!((r.status, r.text()), (200, "v3".to_owned()));
    assert_eq!(
        answer(&exec, removal).await,
        json!({"batchItemFailures": []}),
        "a redelivered record is harmless"
    );
    assert!(
        exec.output().contains("workspace_purged"),
        "{}",
        exec.output()
    );
}
