//! Whose workspace is whose, the fresh directory each run gets, and the one workspace this
//! instance keeps between runs.
//!
//! A workspace's owner name is a keyed hash of the user id: nothing the client sends chooses
//! it, and the name (an S3 key prefix) reveals nothing about the user without the key. Run
//! directories are named at random, live only for their run, and are removed before the
//! response; the kept copy of the last user's files is in this process's memory, outside any
//! directory a run can reach, and is dropped before another user's run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use bastion_core::{RequestId, UserId};
use bastion_sandbox::SandboxDir;
use secrecy::{ExposeSecret, SecretBox};

/// A workspace as downloaded: path → (stored version, contents).
pub type Snapshot = BTreeMap<String, (String, Vec<u8>)>;

struct Cached {
    owner: String,
    files: Snapshot,
}

pub struct Sandboxes {
    root: PathBuf,
    key: SecretBox<Vec<u8>>,
    openat2: bool,
    cache: Mutex<Option<Cached>>,
}

/// A run's directory; removed with everything in it when dropped, on every exit path.
pub struct RunDir {
    dir: SandboxDir,
    root: PathBuf,
    name: String,
}

impl RunDir {
    pub fn dir(&self) -> &SandboxDir {
        &self.dir
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        // Not `std::fs::remove_dir_all`: a run can build a tree deeper than the open-file
        // limit, which that could never remove.
        if let Err(e) = bastion_sandbox::remove_tree(&self.root, &self.name) {
            tracing::error!(error = %e, "removing a run directory failed");
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("creating the run directory")]
pub struct SandboxError(#[from] std::io::Error);

impl Sandboxes {
    /// Removes run directories a previous process left behind (a crash mid-run).
    pub fn new(root: PathBuf, key: SecretBox<Vec<u8>>, openat2: bool) -> Self {
        if let Ok(entries) = std::fs::read_dir(&root) {
            for entry in entries.flatten() {
                if let Ok(name) = entry.file_name().into_string()
                    && is_run_name(&name)
                    && let Err(e) = bastion_sandbox::remove_tree(&root, &name)
                {
                    tracing::warn!(error = %e, "removing a leftover run directory failed");
                }
            }
        }
        Self {
            root,
            key,
            openat2,
            cache: Mutex::new(None),
        }
    }

    /// The owner name of the user's workspace.
    pub fn name_for(&self, user: &UserId) -> String {
        let mac = bastion_core::crypto::hmac_sha256(
            self.key.expose_secret(),
            format!("bastion-exec-sandbox:{}", user.as_str()).as_bytes(),
        );
        hex::encode(&mac[..16])
    }

    /// A new, empty, owner-only directory for one run. Blocking.
    pub fn fresh_run_dir(&self) -> Result<RunDir, SandboxError> {
        let name = RequestId::generate().as_str().to_owned();
        let dir = SandboxDir::open_or_create(&self.root, &name, self.openat2)?;
        Ok(RunDir {
            dir,
            root: self.root.clone(),
            name,
        })
    }

    /// The kept copy of `owner`'s workspace, if the last run here was theirs; any other user's
    /// copy is dropped now, before `owner`'s run.
    pub fn take_cached(&self, owner: &str) -> Snapshot {
        let Ok(mut cache) = self.cache.lock() else {
            return Snapshot::new();
        };
        match cache.take() {
            Some(c) if c.owner == owner => c.files,
            _ => Snapshot::new(),
        }
    }

    /// Keeps `files` as `owner`'s workspace for the next run.
    pub fn keep(&self, owner: &str, files: Snapshot) {
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Some(Cached {
                owner: owner.to_owned(),
                files,
            });
        }
    }
}

/// Run directories are named by a fresh request id: 32 lowercase hex digits.
fn is_run_name(name: &str) -> bool {
    name.len() == 32 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn sandboxes(root: &Path, key: u8) -> Sandboxes {
        Sandboxes::new(
            root.to_path_buf(),
            SecretBox::new(Box::new(vec![key; 32])),
            true,
        )
    }

    fn temp_root(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("bastion-sbx-{tag}-{}", std::process::id()))
    }

    #[test]
    fn names_are_keyed_distinct_per_user_and_stable() {
        let root = temp_root("names");
        let a = UserId::generate();
        let b = UserId::generate();
        let s1 = sandboxes(&root, 1);
        let s2 = sandboxes(&root, 2);
        assert_eq!(s1.name_for(&a), s1.name_for(&a));
        assert_ne!(s1.name_for(&a), s1.name_for(&b));
        assert_ne!(s1.name_for(&a), s2.name_for(&a));
        assert_eq!(s1.name_for(&a).len(), 32);
    }

    #[test]
    fn a_run_directory_is_fresh_and_gone_when_dropped() {
        let root = temp_root("fresh");
        let s = sandboxes(&root, 1);
        let first = s.fresh_run_dir().unwrap();
        let p = bastion_sandbox::SandboxPath::parse("a/b").unwrap();
        first.dir().write(&p, b"x").unwrap();
        let second = s.fresh_run_dir().unwrap();
        assert_ne!(first.dir().path(), second.dir().path());
        assert_eq!(second.dir().list("", 10).unwrap().0, vec![]);
        let path = first.dir().path().to_path_buf();
        drop(first);
        assert!(!path.exists());
        drop(second);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn the_kept_workspace_is_given_only_to_its_owner_and_dropped_for_anyone_else() {
        let s = sandboxes(&temp_root("cache"), 1);
        let files: Snapshot = [("f".to_owned(), ("v1".to_owned(), b"alice".to_vec()))].into();
        s.keep("alice", files.clone());
        assert_eq!(s.take_cached("alice"), files);
        s.keep("alice", files);
        assert_eq!(s.take_cached("bob"), Snapshot::new());
        assert_eq!(
            s.take_cached("alice"),
            Snapshot::new(),
            "bob's run dropped alice's copy"
        );
    }

    #[test]
    fn leftover_run_directories_are_removed_at_start() {
        let root = temp_root("leftover");
        let old = sandboxes(&root, 1).fresh_run_dir().unwrap();
        let path = old.dir().path().to_path_buf();
        std::mem::forget(old);
        std::fs::create_dir_all(root.join("not-a-run")).unwrap();
        assert!(path.exists());
        let _ = sandboxes(&root, 1);
        assert!(!path.exists());
        assert!(
            root.join("not-a-run").exists(),
            "only run directories are removed"
        );
        let _ = std::fs::remove_dir_all(&root);
    }
}
