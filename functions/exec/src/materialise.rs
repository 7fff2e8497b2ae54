//! A run's view of the workspace: download the caller's files (only those whose stored version
//! differs from the copy this instance kept), lay them out in the fresh run directory, and
//! afterwards write back what the run created, changed or deleted.
//!
//! Write-back is all or nothing against the quota: when the files the run leaves exceed it
//! and the run grew the workspace, nothing is written back and the response says
//! `"files_saved": false`. A run that only shrinks an over-quota workspace (`rm`) is saved.

use std::collections::BTreeMap;

use bastion_http::ApiError;
use bastion_sandbox::{SandboxDir, SandboxPath};

use crate::Inner;
use crate::files::{quota_exceeded, store_error};
use crate::sandboxes::Snapshot;
use crate::workspace::{StoredFile, Usage};

/// Most files a run directory may hold for a write-back; beyond it the run is not saved.
const MAX_RUN_FILES: usize = 100_000;

/// Downloads in flight at once: S3 answers each GET in tens of milliseconds, so a 100-file
/// workspace is fetched in about a dozen round trips rather than a hundred.
const PARALLEL_READS: usize = 8;

/// Brings `cached` up to date with the stored listing: keeps entries whose version is
/// unchanged, downloads the rest, drops files no longer stored.
pub async fn download(
    inner: &Inner,
    owner: &str,
    listing: &[StoredFile],
    mut cached: Snapshot,
) -> Result<Snapshot, ApiError> {
    let mut snapshot = Snapshot::new();
    let mut wanted = Vec::new();
    for f in listing {
        match cached.remove(&f.path) {
            Some((version, data)) if version == f.version => {
                snapshot.insert(f.path.clone(), (version, data));
            }
            _ => match SandboxPath::parse(&f.path) {
                Ok(path) => wanted.push(path),
                Err(_) => tracing::warn!("a stored workspace path does not parse; skipped"),
            },
        }
    }
    let mut pending = wanted.into_iter();
    let mut reads = tokio::task::JoinSet::new();
    loop {
        while reads.len() < PARALLEL_READS {
            let Some(path) = pending.next() else { break };
            let (store, owner) = (inner.workspaces.clone(), owner.to_owned());
            reads.spawn(async move {
                let got = store.read(&owner, &path).await;
                (path, got)
            });
        }
        let Some(joined) = reads.join_next().await else {
            break;
        };
        let (path, got) = joined.map_err(|e| ApiError::internal(&e))?;
        // Gone between the listing and the read: it is simply not part of this run.
        if let Some((data, version)) = got.map_err(|e| store_error(&e))? {
            snapshot.insert(path.as_str().to_owned(), (version, data));
        }
    }
    Ok(snapshot)
}

/// Writes the snapshot into the empty run directory. Blocking.
pub fn lay_out(dir: &SandboxDir, snapshot: &Snapshot) -> Result<(), ApiError> {
    for (path, (_, data)) in snapshot {
        let Ok(p) = SandboxPath::parse(path) else {
            continue;
        };
        dir.write(&p, data).map_err(crate::files::fs_error)?;
    }
    Ok(())
}

/// The regular files the run left, or `None` when they exceed the quota while growing the
/// workspace past `before` (nothing is read then). Symlinks, FIFOs and empty directories are
/// not part of a workspace. Blocking.
pub fn collect(
    dir: &SandboxDir,
    before: Usage,
    inner: &Inner,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, ApiError> {
    let entries = match dir.list("", MAX_RUN_FILES) {
        Ok((entries, false)) => entries,
        Ok((_, true)) | Err(bastion_sandbox::FsError::TooLarge) => return Ok(None),
        Err(e) => return Err(crate::files::fs_error(e)),
    };
    let after = Usage {
        files: entries.len() as u64,
        bytes: entries.iter().map(|e| e.size).sum(),
    };
    if !fits(
        after,
        before,
        inner.config.quota_bytes,
        inner.config.quota_files,
    ) {
        return Ok(None);
    }
    let mut files = BTreeMap::new();
    for e in entries {
        let Ok(p) = SandboxPath::parse(&e.path) else {
            continue;
        };
        let data = dir
            .read(&p, inner.config.quota_bytes.saturating_add(1))
            .map_err(crate::files::fs_error)?;
        files.insert(e.path, data);
    }
    Ok(Some(files))
}

/// Within the quota, or no larger than before in either measure.
fn fits(after: Usage, before: Usage, quota_bytes: u64, quota_files: u64) -> bool {
    let within = after.bytes <= quota_bytes && after.files <= quota_files;
    within || (after.bytes <= before.bytes && after.files <= before.files)
}

/// What a write-back sent to the store.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteBack {
    pub written: u64,
    pub deleted: u64,
}

/// Stores what differs between `before` and `after`; returns the new snapshot to keep.
pub async fn write_back(
    inner: &Inner,
    owner: &str,
    mut before: Snapshot,
    after: BTreeMap<String, Vec<u8>>,
) -> Result<(Snapshot, WriteBack), ApiError> {
    let mut counts = WriteBack::default();
    let mut kept = Snapshot::new();
    for (path, data) in after {
        let Ok(p) = SandboxPath::parse(&path) else {
            continue;
        };
        match before.remove(&path) {
            Some((version, old)) if old == data => {
                kept.insert(path, (version, data));
            }
            _ => {
                let version = inner
                    .workspaces
                    .write(owner, &p, data.clone())
                    .await
                    .map_err(|e| store_error(&e))?;
                counts.written += 1;
                kept.insert(path, (version, data));
            }
        }
    }
    for path in before.into_keys() {
        let Ok(p) = SandboxPath::parse(&path) else {
            continue;
        };
        inner
            .workspaces
            .delete(owner, &p)
            .await
            .map_err(|e| store_error(&e))?;
        counts.deleted += 1;
    }
    Ok((kept, counts))
}

/// The quota refusal for a run that would start over the quota.
pub fn over_quota() -> ApiError {
    quota_exceeded(
        "your sandbox is over its quota; delete files before running commands",
        bastion_http::ErrorKind::Conflict,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(files: u64, bytes: u64) -> Usage {
        Usage { files, bytes }
    }

    #[test]
    fn a_write_back_fits_within_the_quota_or_when_it_only_shrinks_an_over_quota_workspace() {
        assert!(fits(usage(2, 100), usage(0, 0), 100, 2));
        assert!(
            !fits(usage(3, 100), usage(2, 100), 100, 2),
            "one file too many"
        );
        assert!(
            !fits(usage(2, 101), usage(2, 100), 100, 2),
            "one byte too many"
        );
        assert!(
            fits(usage(4, 150), usage(5, 200), 100, 2),
            "over the quota (it was lowered) but smaller in both measures"
        );
        assert!(
            !fits(usage(4, 250), usage(5, 200), 100, 2),
            "over the quota and grown in bytes"
        );
    }
}
