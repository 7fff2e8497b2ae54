//! The workspace store port: a user's sandbox files kept durably, outside any instance — S3 in
//! Lambda (`s3`), a directory locally (`dir`) — and held to one behaviour by `conformance`.
//!
//! Files only: directories are implied by paths, so an empty directory a run leaves behind is
//! not kept. `owner` is the sandbox name (a keyed hash of the user id), never the id itself.

pub mod dir;
pub mod s3;

#[cfg(test)]
pub(crate) mod conformance;

use async_trait::async_trait;
use bastion_sandbox::SandboxPath;

pub use dir::DirWorkspaces;
pub use s3::S3Workspaces;

/// One stored file: its path, size and an opaque version that changes whenever its content
/// may have (an S3 ETag; a content hash locally).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub path: String,
    pub size: u64,
    pub version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("workspace store unavailable: {0}")]
    Unavailable(String),
    #[error("path is too long for the workspace store")]
    PathTooLong,
}

/// An owner name as `Sandboxes::name_for` makes them (hex), checked before a purge so no
/// name can reach past its own prefix or directory: empty, `/`, `.` and `..` are refused.
pub fn check_owner(owner: &str) -> Result<(), WorkspaceError> {
    if owner.is_empty()
        || owner.len() > 64
        || !owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
    {
        return Err(WorkspaceError::Unavailable(
            "refusing to purge: not a workspace owner name".to_owned(),
        ));
    }
    Ok(())
}

/// Files and bytes of a workspace, for the quota.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub files: u64,
    pub bytes: u64,
}

impl Usage {
    pub fn of(files: &[StoredFile]) -> Self {
        Self {
            files: files.len() as u64,
            bytes: files.iter().map(|f| f.size).sum(),
        }
    }
}

#[async_trait]
pub trait WorkspaceStore: Send + Sync {
    /// Every file of `owner`'s workspace, sorted by path.
    async fn list(&self, owner: &str) -> Result<Vec<StoredFile>, WorkspaceError>;
    /// The file's contents and version, or `None` when there is no such file.
    async fn read(
        &self,
        owner: &str,
        path: &SandboxPath,
    ) -> Result<Option<(Vec<u8>, String)>, WorkspaceError>;
    /// Creates or replaces the file; returns its new version.
    async fn write(
        &self,
        owner: &str,
        path: &SandboxPath,
        data: Vec<u8>,
    ) -> Result<String, WorkspaceError>;
    /// Removes the file; false when there was none.
    async fn delete(&self, owner: &str, path: &SandboxPath) -> Result<bool, WorkspaceError>;
    /// Removes `owner`'s whole workspace: every file and, where the store keeps them, every
    /// older version and delete marker. Returns how many stored entries went; a workspace that
    /// is already gone purges with 0, so a retried purge is harmless.
    async fn purge(&self, owner: &str) -> Result<u64, WorkspaceError>;
    /// What the workspace holds now.
    async fn usage(&self, owner: &str) -> Result<Usage, WorkspaceError> {
        Ok(Usage::of(&self.list(owner).await?))
    }
}

/// Whether a stored name is one a client could have written: a key that is no sandbox path
/// (`.` or `./x`, stored before `.` components were refused, or put beside the API) is left out
/// of every listing, so it counts in no quota, no run downloads it, and it cannot make every
/// run fail; its bytes stay in the store until the workspace itself is deleted. The log names
/// the rule the key breaks, never the key.
fn listable(path: &str) -> bool {
    match SandboxPath::parse(path) {
        Ok(_) => true,
        Err(error) => {
            tracing::warn!(%error, "a stored workspace key is no sandbox path; left out of the listing");
            false
        }
    }
}

/// How `path` relates to the files already stored, as a filesystem would see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A file is stored at `path`.
    File,
    /// Files are stored beneath `path/`.
    Directory,
    /// A proper parent of `path` is a stored file.
    UnderAFile,
    Absent,
}

pub fn shape_of(files: &[StoredFile], path: &str) -> Shape {
    let mut shape = Shape::Absent;
    for f in files {
        if f.path == path {
            return Shape::File;
        }
        if f.path.len() > path.len()
            && f.path.starts_with(path)
            && f.path.as_bytes()[path.len()] == b'/'
        {
            shape = Shape::Directory;
        } else if path.len() > f.path.len()
            && path.starts_with(f.path.as_str())
            && path.as_bytes()[f.path.len()] == b'/'
        {
            return Shape::UnderAFile;
        }
    }
    shape
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> StoredFile {
        StoredFile {
            path: path.to_owned(),
            size: 1,
            version: "v".to_owned(),
        }
    }

    #[test]
    fn shapes_follow_the_stored_paths_like_a_filesystem() {
        let files = [file("d/f"), file("top"), file("dx")];
        assert_eq!(shape_of(&files, "d/f"), Shape::File);
        assert_eq!(shape_of(&files, "d"), Shape::Directory);
        assert_eq!(shape_of(&files, "d/f/g"), Shape::UnderAFile);
        assert_eq!(shape_of(&files, "top/x/y"), Shape::UnderAFile);
        assert_eq!(shape_of(&files, "d/"), Shape::Absent);
        assert_eq!(shape_of(&files, "dy"), Shape::Absent);
        assert_eq!(shape_of(&files, "d/g"), Shape::Absent);
    }
}
