//! The S3 workspace adapter: `<owner>/<path>` objects in the bucket `WORKSPACE_BUCKET`, each
//! put with SSE-KMS under `KMS_KEY_ID` (and an S3 Bucket Key, so S3 calls KMS once per bucket
//! key period rather than per object). The bucket policy refuses puts without that header.
//! The bucket is versioned: a purge removes every version and delete marker under the
//! owner's prefix, not just the current objects.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier, ServerSideEncryption};
use bastion_http::{ConfigError, Env};
use bastion_sandbox::SandboxPath;

use super::{StoredFile, WorkspaceError, WorkspaceStore, check_owner};

/// S3's longest object key.
const MAX_KEY_BYTES: usize = 1024;

#[derive(Clone)]
pub struct S3Workspaces {
    client: Client,
    bucket: String,
    kms_key: String,
}

fn sdk_error<E: std::error::Error + 'static>(op: &str, e: E) -> WorkspaceError {
    WorkspaceError::Unavailable(format!("S3 {op}: {}", DisplayErrorContext(e)))
}

impl S3Workspaces {
    pub fn new(client: Client, bucket: String, kms_key: String) -> Self {
        Self {
            client,
            bucket,
            kms_key,
        }
    }

    /// The bucket from `WORKSPACE_BUCKET` and the key from `KMS_KEY_ID`, both required.
    pub fn from_sdk(sdk: &aws_types::SdkConfig, env: &dyn Env) -> Result<Self, ConfigError> {
        let bucket = env.required("WORKSPACE_BUCKET")?;
        let kms_key = env.required("KMS_KEY_ID")?;
        Ok(Self::new(Client::new(sdk), bucket, kms_key))
    }

    fn key(owner: &str, path: &SandboxPath) -> Result<String, WorkspaceError> {
        let key = format!("{owner}/{}", path.as_str());
        if key.len() > MAX_KEY_BYTES {
            return Err(WorkspaceError::PathTooLong);
        }
        Ok(key)
    }

    /// Deletes one listed page of versions and delete markers by version id (what a plain
    /// delete would only hide behind a new marker); any key S3 refuses fails the purge.
    async fn delete_versions(&self, ids: Vec<ObjectIdentifier>) -> Result<u64, WorkspaceError> {
        let count = ids.len() as u64;
        let delete = Delete::builder()
            .set_objects(Some(ids))
            .quiet(true)
            .build()
            .map_err(|e| sdk_error("DeleteObjects request", e))?;
        let out = self
            .client
            .delete_objects()
            .bucket(&self.bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteObjects", e))?;
        if let Some(first) = out.errors().first() {
            return Err(WorkspaceError::Unavailable(format!(
                "S3 DeleteObjects refused {} of {count} versions (first: {})",
                out.errors().len(),
                first.code().unwrap_or("unknown")
            )));
        }
        Ok(count)
    }
}

impl S3Workspaces {
    /// A purge is done only when the prefix lists no version or marker at all: anything a
    /// listing skipped, or written meanwhile, fails it (and so it is retried).
    async fn nothing_left(&self, prefix: &str) -> Result<(), WorkspaceError> {
        let left = self
            .client
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(prefix)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| sdk_error("ListObjectVersions", e))?;
        if left.versions().is_empty() && left.delete_markers().is_empty() {
            return Ok(());
        }
        Err(WorkspaceError::Unavailable(
            "S3 purge: versions remain under the owner's prefix".to_owned(),
        ))
    }
}

/// The version id S3 lists for an object written while versioning was off.
const NULL_VERSION: &str = "null";

fn identifier(key: Option<&str>, version: Option<&str>) -> Option<ObjectIdentifier> {
    ObjectIdentifier::builder()
        .key(key?)
        .version_id(version.unwrap_or(NULL_VERSION))
        .build()
        .ok()
}

#[async_trait]
impl WorkspaceStore for S3Workspaces {
    async fn list(&self, owner: &str) -> Result<Vec<StoredFile>, WorkspaceError> {
        let prefix = format!("{owner}/");
        let mut files = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| sdk_error("ListObjectsV2", e))?;
            for obj in page.contents() {
                let Some(path) = obj.key().and_then(|k| k.strip_prefix(&prefix)) else {
                    continue;
                };
                if !super::listable(path) {
                    continue;
                }
                files.push(StoredFile {
                    path: path.to_owned(),
                    size: obj.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    version: obj.e_tag().unwrap_or_default().to_owned(),
                });
            }
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    async fn read(
        &self,
        owner: &str,
        path: &SandboxPath,
    ) -> Result<Option<(Vec<u8>, String)>, WorkspaceError> {
        let got = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(Self::key(owner, path)?)
            .send()
            .await;
        let out = match got {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|se| se.is_no_such_key()) => {
                return Ok(None);
            }
            Err(e) => return Err(sdk_error("GetObject", e)),
        };
        let version = out.e_tag().unwrap_or_default().to_owned();
        let data = out
            .body
            .collect()
            .await
            .map_err(|e| sdk_error("GetObject body", e))?
            .into_bytes()
            .to_vec();
        Ok(Some((data, version)))
    }

    async fn write(
        &self,
        owner: &str,
        path: &SandboxPath,
        data: Vec<u8>,
    ) -> Result<String, WorkspaceError> {
        let out = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(Self::key(owner, path)?)
            .body(ByteStream::from(data))
            .content_type("application/octet-stream")
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&self.kms_key)
            .bucket_key_enabled(true)
            .send()
            .await
            .map_err(|e| sdk_error("PutObject", e))?;
        Ok(out.e_tag().unwrap_or_default().to_owned())
    }

    async fn delete(&self, owner: &str, path: &SandboxPath) -> Result<bool, WorkspaceError> {
        let key = Self::key(owner, path)?;
        // DeleteObject succeeds on a missing key, so existence is asked first.
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await;
        match head {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|se| se.is_not_found()) => {
                return Ok(false);
            }
            Err(e) if e.code() == Some("NotFound") => return Ok(false),
            Err(e) => return Err(sdk_error("HeadObject", e)),
        }
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| sdk_error("DeleteObject", e))?;
        Ok(true)
    }

    async fn purge(&self, owner: &str) -> Result<u64, WorkspaceError> {
        check_owner(owner)?;
        let prefix = format!("{owner}/");
        let mut removed = 0;
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            // At most 1000 entries a page, which is also DeleteObjects' limit.
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .set_key_marker(key_marker)
                .set_version_id_marker(version_marker)
                .send()
                .await
                .map_err(|e| sdk_error("ListObjectVersions", e))?;
            let versions = page
                .versions()
                .iter()
                .map(|v| identifier(v.key(), v.version_id()));
            let markers = page
                .delete_markers()
                .iter()
                .map(|m| identifier(m.key(), m.version_id()));
            let ids: Vec<ObjectIdentifier> = versions.chain(markers).flatten().collect();
            if !ids.is_empty() {
                removed += self.delete_versions(ids).await?;
            }
            if !page.is_truncated().unwrap_or(false) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            version_marker = page.next_version_id_marker().map(str::to_owned);
            if key_marker.is_none() {
                return Err(WorkspaceError::Unavailable(
                    "S3 ListObjectVersions was truncated without a next marker".to_owned(),
                ));
            }
        }
        self.nothing_left(&prefix).await?;
        Ok(removed)
    }
}
