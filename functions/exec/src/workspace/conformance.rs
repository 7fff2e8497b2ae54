//! One behaviour suite for every workspace adapter: the directory adapter always, S3 against
//! the moto server named by `BASTION_TEST_DYNAMODB_ENDPOINT` (it serves S3 too), with a fresh
//! bucket per test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bastion_sandbox::SandboxPath;

use super::{DirWorkspaces, S3Workspaces, StoredFile, Usage, WorkspaceStore};

fn p(s: &str) -> SandboxPath {
    SandboxPath::parse(s).unwrap()
}

fn unique(tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "bastion-ws-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes the directory adapter's root when the test ends.
pub struct TempRoot(std::path::PathBuf);

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn dir() -> (Arc<dyn WorkspaceStore>, Option<TempRoot>) {
    let root = std::env::temp_dir().join(unique("dir"));
    (
        Arc::new(DirWorkspaces::new(root.clone())),
        Some(TempRoot(root)),
    )
}

/// An S3 client for the moto server of the test run, path-style as a local endpoint needs.
pub async fn moto_s3() -> aws_sdk_s3::Client {
    let endpoint = match std::env::var("BASTION_TEST_DYNAMODB_ENDPOINT") {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!(
            "BASTION_TEST_DYNAMODB_ENDPOINT is not set: the S3 workspace tests need the local \
             moto server `scripts/test` starts"
        ),
    };
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .load()
        .await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    )
}

async fn s3() -> (Arc<dyn WorkspaceStore>, Option<TempRoot>) {
    let client = moto_s3().await;
    let bucket = unique("s3");
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    (
        Arc::new(S3Workspaces::new(
            client,
            bucket,
            "alias/bastion-test".to_owned(),
        )),
        None,
    )
}

macro_rules! workspace_conformance {
    ($($name:ident),+ $(,)?) => {
        mod on_dir {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, _guard) = super::dir().await;
                    super::$name(store.as_ref()).await;
                }
            )+
        }
        mod on_s3 {
            $(
                #[tokio::test]
                async fn $name() {
                    let (store, _guard) = super::s3().await;
                    super::$name(store.as_ref()).await;
                }
            )+
        }
    };
}

workspace_conformance!(
    a_written_file_reads_back_lists_with_its_size_and_counts_in_usage,
    rewriting_a_file_changes_its_version_and_contents,
    a_deleted_file_is_gone_and_a_second_delete_reports_none,
    owners_never_see_each_others_files,
    an_empty_workspace_lists_nothing_and_reads_none,
    a_purge_removes_the_whole_workspace_leaves_neighbours_and_repeats_harmlessly,
);

async fn a_written_file_reads_back_lists_with_its_size_and_counts_in_usage(s: &dyn WorkspaceStore) {
    let v = s
        .write("o1", &p("data/in.txt"), b"b\na\n".to_vec())
        .await
        .unwrap();
    s.write("o1", &p("top"), vec![7; 10]).await.unwrap();
    let (data, version) = s.read("o1", &p("data/in.txt")).await.unwrap().unwrap();
    assert_eq!(
        (data.as_slice(), version.as_str()),
        (&b"b\na\n"[..], v.as_str())
    );
    let listed: Vec<(String, u64)> = s
        .list("o1")
        .await
        .unwrap()
        .into_iter()
        .map(|f: StoredFile| (f.path, f.size))
        .collect();
    assert_eq!(
        listed,
        vec![("data/in.txt".to_owned(), 4), ("top".to_owned(), 10)]
    );
    assert_eq!(
        s.usage("o1").await.unwrap(),
        Usage {
            files: 2,
            bytes: 14
        }
    );
}

async fn rewriting_a_file_changes_its_version_and_contents(s: &dyn WorkspaceStore) {
    let first = s.write("o2", &p("f"), b"one".to_vec()).await.unwrap();
    let listed = s.list("o2").await.unwrap();
    assert_eq!(
        listed[0].version, first,
        "the listing shows the written version"
    );
    let second = s.write("o2", &p("f"), b"three".to_vec()).await.unwrap();
    assert_ne!(first, second);
    assert_eq!(s.list("o2").await.unwrap()[0].version, second);
    assert_eq!(
        s.read("o2", &p("f")).await.unwrap().unwrap().0,
        b"three".to_vec()
    );
}

async fn a_deleted_file_is_gone_and_a_second_delete_reports_none(s: &dyn WorkspaceStore) {
    s.write("o3", &p("d/e/f"), b"x".to_vec()).await.unwrap();
    assert!(s.delete("o3", &p("d/e/f")).await.unwrap());
    assert!(!s.delete("o3", &p("d/e/f")).await.unwrap());
    assert!(!s.delete("o3", &p("never")).await.unwrap());
    assert_eq!(s.read("o3", &p("d/e/f")).await.unwrap(), None);
    assert_eq!(s.list("o3").await.unwrap(), vec![]);
    s.write("o3", &p("d"), b"a file where a directory was".to_vec())
        .await
        .unwrap();
    assert_eq!(
        s.usage("o3").await.unwrap(),
        Usage {
            files: 1,
            bytes: 28
        }
    );
}

async fn owners_never_see_each_others_files(s: &dyn WorkspaceStore) {
    s.write("alice", &p("secret"), b"alice only".to_vec())
        .await
        .unwrap();
    s.write("alice2", &p("x"), b"prefix neighbour".to_vec())
        .await
        .unwrap();
    assert_eq!(s.read("bob", &p("secret")).await.unwrap(), None);
    assert_eq!(s.list("bob").await.unwrap(), vec![]);
    assert!(!s.delete("bob", &p("secret")).await.unwrap());
    let alice: Vec<String> = s
        .list("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(alice, vec!["secret".to_owned()]);
}

async fn an_empty_workspace_lists_nothing_and_reads_none(s: &dyn WorkspaceStore) {
    assert_eq!(s.list("nobody").await.unwrap(), vec![]);
    assert_eq!(s.usage("nobody").await.unwrap(), Usage::default());
    assert_eq!(s.read("nobody", &p("f")).await.unwrap(), None);
}

async fn a_purge_removes_the_whole_workspace_leaves_neighbours_and_repeats_harmlessly(
    s: &dyn WorkspaceStore,
) {
    s.write("gone", &p("a"), b"1".to_vec()).await.unwrap();
    s.write("gone", &p("d/e/f"), b"22".to_vec()).await.unwrap();
    s.write("gone2", &p("a"), b"prefix neighbour".to_vec())
        .await
        .unwrap();
    s.write("kept", &p("a"), b"other user".to_vec())
        .await
        .unwrap();
    assert_eq!(s.purge("gone").await.unwrap(), 2);
    assert_eq!(s.list("gone").await.unwrap(), vec![]);
    assert_eq!(s.read("gone", &p("d/e/f")).await.unwrap(), None);
    assert_eq!(
        s.purge("gone").await.unwrap(),
        0,
        "a second purge finds nothing"
    );
    assert_eq!(s.purge("never-existed").await.unwrap(), 0);
    for owner in ["gone2", "kept"] {
        assert_eq!(s.usage(owner).await.unwrap().files, 1, "{owner} untouched");
    }
    for bad in ["", ".", "..", "a/b", "../kept"] {
        assert!(s.purge(bad).await.is_err(), "{bad:?} is refused");
    }
    assert_eq!(s.usage("kept").await.unwrap().files, 1);
}

/// Every version and delete marker under a prefix: (key, is a delete marker).
pub async fn versions_under(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Vec<(String, bool)> {
    let out = client
        .list_object_versions()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    let mut all: Vec<(String, bool)> = out
        .versions()
        .iter()
        .map(|v| (v.key().unwrap().to_owned(), false))
        .chain(
            out.delete_markers()
                .iter()
                .map(|m| (m.key().unwrap().to_owned(), true)),
        )
        .collect();
    all.sort();
    all
}

/// A fresh bucket with versioning on, as the template makes the workspace bucket.
pub async fn versioned_bucket(client: &aws_sdk_s3::Client) -> String {
    use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
    let bucket = unique("s3v");
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    client
        .put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    bucket
}

#[tokio::test]
async fn on_a_versioned_bucket_a_purge_leaves_no_old_version_or_delete_marker_of_the_owner() {
    let client = moto_s3().await;
    let bucket = versioned_bucket(&client).await;
    let s = S3Workspaces::new(
        client.clone(),
        bucket.clone(),
        "alias/bastion-test".to_owned(),
    );
    for content in ["v1", "v2", "v3"] {
        s.write("gone", &p("f"), content.as_bytes().to_vec())
            .await
            .unwrap();
    }
    s.write("gone", &p("deleted"), b"x".to_vec()).await.unwrap();
    assert!(s.delete("gone", &p("deleted")).await.unwrap());
    s.write("kept", &p("f"), b"k1".to_vec()).await.unwrap();
    s.write("kept", &p("f"), b"k2".to_vec()).await.unwrap();
    assert_eq!(
        versions_under(&client, &bucket, "gone/").await,
        [
            ("gone/deleted", false),
            ("gone/deleted", true),
            ("gone/f", false),
            ("gone/f", false),
            ("gone/f", false),
        ]
        .map(|(k, m)| (k.to_owned(), m)),
        "three versions of f, and a deleted file's version behind its marker"
    );
    assert_eq!(s.purge("gone").await.unwrap(), 5);
    assert_eq!(versions_under(&client, &bucket, "gone/").await, vec![]);
    assert_eq!(
        versions_under(&client, &bucket, "kept/").await,
        vec![("kept/f".to_owned(), false), ("kept/f".to_owned(), false)],
        "another owner's versions are untouched"
    );
    assert_eq!(s.purge("gone").await.unwrap(), 0);
}

/// Keys the API could once write (`./x` before `.` components were refused) or that were put
/// beside it: none is listed, so none counts in the quota or reaches a run, and the real file
/// beside them is untouched.
#[tokio::test]
async fn stored_keys_that_are_no_sandbox_path_are_left_out_of_the_s3_listing() {
    let client = moto_s3().await;
    let bucket = unique("s3");
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    let store = S3Workspaces::new(
        client.clone(),
        bucket.clone(),
        "alias/bastion-test".to_owned(),
    );
    store
        .write("alice", &p("x"), b"real".to_vec())
        .await
        .unwrap();
    let planted = ["alice/.", "alice/./x", "alice/a/./b", "alice/a//b"];
    for key in planted {
        client
            .put_object()
            .bucket(&bucket)
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"planted"))
            .send()
            .await
            .unwrap();
    }
    let raw = client
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("alice/")
        .send()
        .await
        .unwrap();
    let mut stored: Vec<&str> = raw.contents().iter().filter_map(|o| o.key()).collect();
    stored.sort_unstable();
    assert_eq!(
        stored,
        [
            "alice/.",
            "alice/./x",
            "alice/a/./b",
            "alice/a//b",
            "alice/x"
        ],
        "the planted keys are stored as spelled"
    );
    let listed: Vec<String> = store
        .list("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(listed, ["x"]);
    assert_eq!(
        store.usage("alice").await.unwrap(),
        Usage { files: 1, bytes: 4 }
    );
    assert_eq!(
        store.read("alice", &p("x")).await.unwrap().map(|(d, _)| d),
        Some(b"real".to_vec())
    );
}
