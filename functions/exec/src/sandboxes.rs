//! Which directory is whose, which users have a run in flight, and removing idle sandboxes.
//!
//! A sandbox's name is a keyed hash of the user id: nothing the client sends chooses it, and the
//! name reveals nothing about the user without the key. Sandboxes live in this instance's
//! filesystem, so the bookkeeping is in memory too.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bastion_core::{Timestamp, UserId};
use bastion_sandbox::SandboxDir;
use secrecy::{ExposeSecret, SecretBox};

#[derive(Default)]
struct Registry {
    last_used: HashMap<String, Timestamp>,
    running: HashSet<String>,
}

pub struct Sandboxes {
    root: PathBuf,
    key: SecretBox<Vec<u8>>,
    openat2: bool,
    idle: Duration,
    registry: Mutex<Registry>,
    /// Serialises each user's quota check with the write it admits (users share stripes).
    writes: [Mutex<()>; WRITE_STRIPES],
}

const WRITE_STRIPES: usize = 64;

/// Held while a user's run is in flight; releases the slot when dropped.
pub struct RunSlot {
    sandboxes: Arc<Sandboxes>,
    name: String,
}

impl Drop for RunSlot {
    fn drop(&mut self) {
        if let Ok(mut r) = self.sandboxes.registry.lock() {
            r.running.remove(&self.name);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("sandbox registry lock poisoned")]
    Poisoned,
    #[error("opening the sandbox directory")]
    Io(#[from] std::io::Error),
}

impl Sandboxes {
    /// Existing directories under `root` (from before a restart) count as used `now`.
    pub fn new(
        root: PathBuf,
        key: SecretBox<Vec<u8>>,
        openat2: bool,
        idle: Duration,
        now: Timestamp,
    ) -> Self {
        let mut registry = Registry::default();
        if let Ok(entries) = std::fs::read_dir(&root) {
            for entry in entries.flatten() {
                if let Ok(name) = entry.file_name().into_string()
                    && is_sandbox_name(&name)
                {
                    registry.last_used.insert(name, now);
                }
            }
        }
        Self {
            root,
            key,
            openat2,
            idle,
            registry: Mutex::new(registry),
            writes: std::array::from_fn(|_| Mutex::new(())),
        }
    }

    /// Held from a file write's quota check to the end of the write, so concurrent writes of
    /// one user cannot all pass the check before any of them lands.
    pub fn write_guard(&self, user: &UserId) -> Result<MutexGuard<'_, ()>, SandboxError> {
        let name = self.name_for(user);
        let stripe = usize::from_str_radix(name.get(..4).unwrap_or("0"), 16).unwrap_or(0);
        self.writes[stripe % WRITE_STRIPES]
            .lock()
            .map_err(|_| SandboxError::Poisoned)
    }

    /// The user's sandbox directory name.
    pub fn name_for(&self, user: &UserId) -> String {
        let mac = bastion_core::crypto::hmac_sha256(
            self.key.expose_secret(),
            format!("bastion-exec-sandbox:{}", user.as_str()).as_bytes(),
        );
        hex::encode(&mac[..16])
    }

    /// Opens (creating) the user's sandbox, marks it used, and removes other idle sandboxes.
    /// Blocking: call from a blocking thread.
    pub fn open(&self, user: &UserId, now: Timestamp) -> Result<SandboxDir, SandboxError> {
        let name = self.name_for(user);
        let mut r = self.registry.lock().map_err(|_| SandboxError::Poisoned)?;
        r.last_used.insert(name.clone(), now);
        let idle = i64::try_from(self.idle.as_secs()).unwrap_or(i64::MAX);
        let stale: Vec<String> = r
            .last_used
            .iter()
            .filter(|(n, t)| now.secs().saturating_sub(t.secs()) >= idle && !r.running.contains(*n))
            .map(|(n, _)| n.clone())
            .collect();
        for n in stale {
            // Removed under the lock, so a request for that user cannot race the removal.
            // Not `std::fs::remove_dir_all`: it needs a descriptor per level, and a user can
            // build a tree deeper than the open-file limit, which would then never go.
            if let Err(e) = bastion_sandbox::remove_tree(&self.root, &n)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(error = %e, "removing an idle sandbox failed");
                continue;
            }
            r.last_used.remove(&n);
        }
        Ok(SandboxDir::open_or_create(&self.root, &name, self.openat2)?)
    }

    /// Claims the user's single run slot, or `None` if a run is already in flight.
    pub fn begin_run(self: &Arc<Self>, user: &UserId) -> Result<Option<RunSlot>, SandboxError> {
        let name = self.name_for(user);
        let mut r = self.registry.lock().map_err(|_| SandboxError::Poisoned)?;
        if !r.running.insert(name.clone()) {
            return Ok(None);
        }
        Ok(Some(RunSlot {
            sandboxes: self.clone(),
            name,
        }))
    }
}

fn is_sandbox_name(name: &str) -> bool {
    name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandboxes(root: &std::path::Path, key: u8) -> Arc<Sandboxes> {
        Arc::new(Sandboxes::new(
            root.to_path_buf(),
            SecretBox::new(Box::new(vec![key; 32])),
            true,
            Duration::from_secs(600),
            Timestamp(1000),
        ))
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
        assert!(is_sandbox_name(&s1.name_for(&a)));
    }

    #[test]
    fn only_one_run_per_user_is_in_flight() {
        let s = sandboxes(&temp_root("slots"), 1);
        let a = UserId::generate();
        let b = UserId::generate();
        let slot = s.begin_run(&a).unwrap().unwrap();
        assert!(s.begin_run(&a).unwrap().is_none());
        assert!(s.begin_run(&b).unwrap().is_some());
        drop(slot);
        assert!(s.begin_run(&a).unwrap().is_some());
    }

    #[test]
    fn idle_sandboxes_are_removed_and_active_ones_kept() {
        let root = temp_root("idle");
        let _ = std::fs::remove_dir_all(&root);
        let s = sandboxes(&root, 1);
        let a = UserId::generate();
        let b = UserId::generate();
        let dir_a = s.open(&a, Timestamp(1000)).unwrap().path().to_path_buf();
        let dir_b = s.open(&b, Timestamp(1300)).unwrap().path().to_path_buf();
        s.open(&b, Timestamp(1599)).unwrap();
        assert!(dir_a.exists(), "599 s idle is not yet idle");
        s.open(&b, Timestamp(1600)).unwrap();
        assert!(!dir_a.exists(), "600 s idle is removed");
        assert!(dir_b.exists());
        let _ = std::fs::remove_dir_all(&root);
    }
}
