//! The local workspace adapter: each owner's files under `root/<owner>/`, every path resolved
//! beneath it without following a symlink (the sandbox filesystem rules). `root` must lie
//! outside bastion-local's data directory, which holds the development secrets.

use std::path::PathBuf;

use async_trait::async_trait;
use bastion_sandbox::{FsError, SandboxDir, SandboxPath};

use super::{StoredFile, WorkspaceError, WorkspaceStore, check_owner};

pub struct DirWorkspaces {
    root: PathBuf,
}

/// More files than any quota allows: a listing this long is refused rather than cut short.
const MAX_FILES: usize = 1_000_000;

/// A file's version is a hash of its contents: exact whatever the filesystem's timestamp
/// granularity, at the price of reading every file to list them (acceptable locally).
fn version(data: &[u8]) -> String {
    hex::encode(&bastion_core::crypto::sha256(data)[..16])
}

fn unavailable(e: impl std::fmt::Display) -> WorkspaceError {
    WorkspaceError::Unavailable(e.to_string())
}

impl DirWorkspaces {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// Component-wise `O_NOFOLLOW` resolution (no `openat2`): it works on every kernel, and
    /// only this server writes here.
    fn open(&self, owner: &str) -> Result<SandboxDir, WorkspaceError> {
        SandboxDir::open_or_create(&self.root, owner, false).map_err(unavailable)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Self) -> Result<T, WorkspaceError> + Send + 'static,
    ) -> Result<T, WorkspaceError> {
        let this = Self::new(self.root.clone());
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(unavailable)?
    }
}

#[async_trait]
impl WorkspaceStore for DirWorkspaces {
    async fn list(&self, owner: &str) -> Result<Vec<StoredFile>, WorkspaceError> {
        let owner = owner.to_owned();
        self.blocking(move |this| {
            let dir = this.open(&owner)?;
            let (entries, more) = dir.list("", MAX_FILES).map_err(unavailable)?;
            if more {
                return Err(unavailable("workspace holds too many files to list"));
            }
            let mut files = Vec::with_capacity(entries.len());
            for e in entries {
                if !super::listable(&e.path) {
                    continue;
                }
                let path = SandboxPath::parse(&e.path).map_err(unavailable)?;
                let data = dir.read(&path, u64::MAX).map_err(unavailable)?;
                files.push(StoredFile {
                    version: version(&data),
                    path: e.path,
                    size: data.len() as u64,
                });
            }
            Ok(files)
        })
        .await
    }

    async fn read(
        &self,
        owner: &str,
        path: &SandboxPath,
    ) -> Result<Option<(Vec<u8>, String)>, WorkspaceError> {
        let (owner, path) = (owner.to_owned(), path.clone());
        self.blocking(move |this| match this.open(&owner)?.read(&path, u64::MAX) {
            Ok(data) => {
                let v = version(&data);
                Ok(Some((data, v)))
            }
            Err(FsError::NotFound | FsError::IsADirectory | FsError::NotADirectory) => Ok(None),
            Err(e) => Err(unavailable(e)),
        })
        .await
    }

    async fn write(
        &self,
        owner: &str,
        path: &SandboxPath,
        data: Vec<u8>,
    ) -> Result<String, WorkspaceError> {
        let (owner, path) = (owner.to_owned(), path.clone());
        self.blocking(move |this| {
            this.open(&owner)?
                .write(&path, &data)
                .map_err(unavailable)?;
            Ok(version(&data))
        })
        .await
    }

    async fn delete(&self, owner: &str, path: &SandboxPath) -> Result<bool, WorkspaceError> {
        let (owner, path) = (owner.to_owned(), path.clone());
        self.blocking(move |this| {
            let dir = this.open(&owner)?;
            match dir.size_of(&path) {
                Ok(Some(_)) => {}
                Ok(None)
                | Err(FsError::NotFound | FsError::NotADirectory | FsError::IsADirectory) => {
                    return Ok(false);
                }
                Err(e) => return Err(unavailable(e)),
            }
            dir.delete(&path).map_err(unavailable)?;
            // Directories are implied by files: drop the parents this delete left empty.
            let parts: Vec<&str> = path.components().collect();
            for end in (1..parts.len()).rev() {
                let Ok(parent) = SandboxPath::parse(&parts[..end].join("/")) else {
                    break;
                };
                if dir.delete(&parent).is_err() {
                    break;
                }
            }
            Ok(true)
        })
        .await
    }

    async fn purge(&self, owner: &str) -> Result<u64, WorkspaceError> {
        check_owner(owner)?;
        let owner = owner.to_owned();
        self.blocking(move |this| {
            match std::fs::symlink_metadata(this.root.join(&owner)) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(unavailable(e)),
            }
            // The count is for the log only: a tree it cannot list is removed all the same.
            let count = this
                .open(&owner)
                .ok()
                .and_then(|dir| dir.list("", MAX_FILES).ok())
                .map_or(0, |(entries, _)| entries.len() as u64);
            // Never following a symlink, and bounded however deep the tree is.
            bastion_sandbox::remove_tree(&this.root, &owner).map_err(unavailable)?;
            Ok(count)
        })
        .await
    }
}
