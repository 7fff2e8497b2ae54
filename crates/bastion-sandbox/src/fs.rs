//! A user's sandbox directory and the file operations the API offers on it. Every path is
//! resolved beneath the sandbox without following a symlink: `openat2` with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` where the kernel has it, component-wise
//! `O_NOFOLLOW` otherwise (and always when parent directories are being created).

use std::ffi::{CStr, CString};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::path::SandboxPath;
use crate::sys;

/// Most entries walked when measuring or listing; beyond it the sandbox counts as full.
const MAX_WALK: u64 = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("no such file")]
    NotFound,
    #[error("path names a directory")]
    IsADirectory,
    #[error("a parent of the path is not a directory")]
    NotADirectory,
    #[error("directory is not empty")]
    NotEmpty,
    #[error("path crosses a symlink")]
    Symlink,
    #[error("path names something other than a file or directory")]
    NotAFile,
    #[error("sandbox holds too many entries, too deep, to measure")]
    TooLarge,
    #[error("sandbox file operation failed")]
    Io(#[source] io::Error),
}

impl From<io::Error> for FsError {
    fn from(e: io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::ENOENT) => FsError::NotFound,
            Some(libc::EISDIR) => FsError::IsADirectory,
            Some(libc::ENOTDIR) => FsError::NotADirectory,
            Some(libc::ENOTEMPTY) => FsError::NotEmpty,
            Some(libc::ELOOP) | Some(libc::EXDEV) => FsError::Symlink,
            Some(libc::ENAMETOOLONG) => FsError::TooLarge,
            // A FIFO without a reader, opened without blocking.
            Some(libc::ENXIO) => FsError::NotAFile,
            _ => FsError::Io(e),
        }
    }
}

/// Entries and bytes in a sandbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Files and directories.
    pub entries: u64,
    pub bytes: u64,
}

/// One regular file in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub size: u64,
}

/// An open sandbox directory.
#[derive(Debug)]
pub struct SandboxDir {
    path: PathBuf,
    fd: OwnedFd,
    openat2: bool,
}

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

impl SandboxDir {
    /// Opens `root/name`, creating both owner-only if needed. `name` is server-derived.
    pub fn open_or_create(root: &Path, name: &str, openat2: bool) -> io::Result<Self> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)?;
        let path = root.join(name);
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let fd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(&path)?;
        Ok(Self {
            path,
            fd: fd.into(),
            openat2,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory holding `path`'s last component, and that component.
    fn parent(&self, path: &SandboxPath, create: bool) -> Result<(OwnedFd, CString), FsError> {
        let comps: Vec<&str> = path.components().collect();
        let (last, parents) = comps.split_last().ok_or(FsError::NotFound)?;
        let last = cstr(last)?;
        if self.openat2 && !create {
            let parent = if parents.is_empty() {
                ".".to_owned()
            } else {
                parents.join("/")
            };
            let fd = sys::openat2_beneath(
                self.fd.as_fd(),
                &cstr(&parent)?,
                libc::O_PATH | libc::O_DIRECTORY,
                0,
            )?;
            return Ok((fd, last));
        }
        let mut cur =
            sys::openat_nofollow(self.fd.as_fd(), c".", libc::O_PATH | libc::O_DIRECTORY, 0)?;
        for comp in parents {
            let name = cstr(comp)?;
            let open = |dir: BorrowedFd<'_>| {
                sys::openat_nofollow(dir, &name, libc::O_PATH | libc::O_DIRECTORY, 0)
            };
            cur = match open(cur.as_fd()) {
                Ok(fd) => fd,
                Err(e) if create && e.raw_os_error() == Some(libc::ENOENT) => {
                    match sys::mkdirat(cur.as_fd(), &name, 0o700) {
                        Ok(()) => {}
                        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    open(cur.as_fd())?
                }
                Err(e) => return Err(e.into()),
            };
        }
        Ok((cur, last))
    }

    /// The size of the regular file at `path`, if there is one.
    pub fn size_of(&self, path: &SandboxPath) -> Result<Option<u64>, FsError> {
        let (dir, name) = match self.parent(path, false) {
            Ok(p) => p,
            Err(FsError::NotFound) => return Ok(None),
            Err(e) => return Err(e),
        };
        match sys::fstatat_nofollow(dir.as_fd(), &name) {
            Ok(st) if st.is_file => Ok(Some(st.size)),
            Ok(st) if st.is_dir => Err(FsError::IsADirectory),
            Ok(_) => Err(FsError::Symlink),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates or replaces the file at `path` (creating parent directories).
    pub fn write(&self, path: &SandboxPath, data: &[u8]) -> Result<(), FsError> {
        let (dir, name) = self.parent(path, true)?;
        // O_NONBLOCK: a FIFO planted at `path` must not hang the server waiting for a reader.
        let fd = sys::openat_nofollow(
            dir.as_fd(),
            &name,
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_NONBLOCK,
            0o600,
        )?;
        let mut f = std::fs::File::from(fd);
        if !f.metadata()?.is_file() {
            return Err(FsError::NotAFile);
        }
        f.write_all(data)?;
        Ok(())
    }

    /// The contents of the regular file at `path`, at most `max` bytes.
    pub fn read(&self, path: &SandboxPath, max: u64) -> Result<Vec<u8>, FsError> {
        // O_NONBLOCK: opening a planted FIFO must not wait for a writer (nor read what one
        // sends); only regular files are read.
        let flags = libc::O_RDONLY | libc::O_NONBLOCK;
        let fd = if self.openat2 {
            sys::openat2_beneath(self.fd.as_fd(), &cstr(path.as_str())?, flags, 0)?
        } else {
            let (dir, name) = self.parent(path, false)?;
            sys::openat_nofollow(dir.as_fd(), &name, flags, 0)?
        };
        let mut f = std::fs::File::from(fd);
        let meta = f.metadata()?;
        if meta.is_dir() {
            return Err(FsError::IsADirectory);
        }
        if !meta.is_file() {
            return Err(FsError::NotAFile);
        }
        let mut out = Vec::new();
        Read::by_ref(&mut f).take(max).read_to_end(&mut out)?;
        Ok(out)
    }

    /// Removes the file, or the empty directory, at `path`.
    pub fn delete(&self, path: &SandboxPath) -> Result<(), FsError> {
        let (dir, name) = self.parent(path, false)?;
        match sys::unlinkat(dir.as_fd(), &name, false) {
            Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {
                Ok(sys::unlinkat(dir.as_fd(), &name, true)?)
            }
            other => Ok(other?),
        }
    }

    /// Entries and bytes, for the quota.
    pub fn usage(&self) -> Result<Usage, FsError> {
        let mut usage = Usage::default();
        self.walk(&mut |_, st| {
            usage.entries += 1;
            if st.is_file {
                usage.bytes += st.size;
            }
        })?;
        Ok(usage)
    }

    /// Regular files whose path starts with `prefix`, sorted, at most `max`; and whether more
    /// matched.
    pub fn list(&self, prefix: &str, max: usize) -> Result<(Vec<Entry>, bool), FsError> {
        let mut out = Vec::new();
        let mut more = false;
        self.walk(&mut |path, st| {
            if st.is_file && path.starts_with(prefix) {
                if out.len() < max {
                    out.push(Entry {
                        path: path.to_owned(),
                        size: st.size,
                    });
                } else {
                    more = true;
                }
            }
        })?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok((out, more))
    }

    /// Visits every entry, depth first, holding one directory descriptor at a time (pending
    /// directories are kept as paths and reopened beneath the root without following links).
    /// However deep or wide the tree, either every entry is visited or the walk fails with
    /// [`FsError::TooLarge`]: nothing is silently skipped, so nothing hides from the quota.
    fn walk(&self, visit: &mut dyn FnMut(&str, sys::Stat)) -> Result<(), FsError> {
        let mut seen = 0u64;
        // Raw bytes, not text: a name that is not UTF-8 must still be reopened exactly.
        let mut pending: Vec<Vec<u8>> = vec![Vec::new()];
        while let Some(dir_path) = pending.pop() {
            let dir = if dir_path.is_empty() {
                sys::openat_nofollow(self.fd.as_fd(), c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?
            } else {
                self.open_dir(&dir_path)?
            };
            for name in sys::read_dir(dir.as_fd())? {
                seen += 1;
                if seen > MAX_WALK {
                    return Err(FsError::TooLarge);
                }
                let cname = CString::new(name.clone()).map_err(|_| FsError::TooLarge)?;
                let st = match sys::fstatat_nofollow(dir.as_fd(), &cname) {
                    Ok(st) => st,
                    // Removed while we walked.
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                    Err(e) => return Err(e.into()),
                };
                let mut path = dir_path.clone();
                path.extend_from_slice(&name);
                visit(&String::from_utf8_lossy(&path), st);
                if st.is_dir {
                    path.push(b'/');
                    pending.push(path);
                }
            }
        }
        Ok(())
    }

    /// Opens the directory at `rel` (ending in `/`) for reading, never through a symlink.
    fn open_dir(&self, rel: &[u8]) -> Result<OwnedFd, FsError> {
        let rel = rel.strip_suffix(b"/").unwrap_or(rel);
        if rel.len() >= libc::PATH_MAX as usize {
            return Err(FsError::TooLarge);
        }
        let path = CString::new(rel).map_err(|_| FsError::TooLarge)?;
        let flags = libc::O_RDONLY | libc::O_DIRECTORY;
        if self.openat2 {
            return Ok(sys::openat2_beneath(self.fd.as_fd(), &path, flags, 0)?);
        }
        let mut cur =
            sys::openat_nofollow(self.fd.as_fd(), c".", libc::O_PATH | libc::O_DIRECTORY, 0)?;
        let comps: Vec<&[u8]> = rel.split(|b| *b == b'/').collect();
        for (i, comp) in comps.iter().enumerate() {
            let name = CString::new(*comp).map_err(|_| FsError::TooLarge)?;
            let f = if i + 1 == comps.len() {
                flags
            } else {
                libc::O_PATH | libc::O_DIRECTORY
            };
            cur = sys::openat_nofollow(cur.as_fd(), &name, f, 0)?;
        }
        Ok(cur)
    }
}

/// Most entries one removal visits before giving up on a tree that keeps being refilled.
const MAX_REMOVE_STEPS: u64 = 10 * MAX_WALK;

fn errno_is(e: &io::Error, codes: &[i32]) -> bool {
    e.raw_os_error().is_some_and(|c| codes.contains(&c))
}

/// Removes the directory `name` in `root` with everything in it, however deep, never following
/// a symlink; a missing `name` is success. The standard library's recursive removal holds one
/// descriptor per level, so a tree deeper than the open-file limit (which a user can build with
/// `mkdir -p` and `mv`) could never be removed. Here a non-empty directory two levels down is
/// renamed up into the directory being removed instead of descended into: at most four
/// descriptors are open at any depth.
pub fn remove_tree(root: &Path, name: &str) -> io::Result<()> {
    let root = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(root)?;
    let cname = cstr(name)?;
    let top =
        match sys::openat_nofollow(root.as_fd(), &cname, libc::O_RDONLY | libc::O_DIRECTORY, 0) {
            Ok(fd) => fd,
            Err(e) if errno_is(&e, &[libc::ENOENT]) => return Ok(()),
            // A file or a symlink: the entry itself goes, nothing it points at.
            Err(e) if errno_is(&e, &[libc::ENOTDIR, libc::ELOOP]) => {
                return sys::unlinkat(root.as_fd(), &cname, false);
            }
            Err(e) => return Err(e),
        };
    let mut steps = 0u64;
    let mut hoisted = 0u64;
    loop {
        let names = sys::read_dir(top.as_fd())?;
        if names.is_empty() {
            break;
        }
        for entry in names {
            steps += 1;
            if steps > MAX_REMOVE_STEPS {
                return Err(io::Error::other("tree keeps growing while it is removed"));
            }
            let entry =
                CString::new(entry).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
            remove_entry(top.as_fd(), &entry, &mut hoisted)?;
        }
    }
    sys::unlinkat(root.as_fd(), &cname, true)
}

/// Tries to remove `name` in `dir` outright; `Ok(false)` if it is a non-empty directory.
fn try_unlink(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<bool> {
    match sys::unlinkat(dir, name, false) {
        Ok(()) => return Ok(true),
        Err(e) if errno_is(&e, &[libc::ENOENT]) => return Ok(true),
        Err(e) if errno_is(&e, &[libc::EISDIR]) => {}
        Err(e) => return Err(e),
    }
    match sys::unlinkat(dir, name, true) {
        Ok(()) => Ok(true),
        Err(e) if errno_is(&e, &[libc::ENOENT]) => Ok(true),
        Err(e) if errno_is(&e, &[libc::ENOTEMPTY, libc::EEXIST]) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes the entry `name` of `top`, hoisting its non-empty subdirectories into `top` (a later
/// pass over `top` removes them).
fn remove_entry(top: BorrowedFd<'_>, name: &CStr, hoisted: &mut u64) -> io::Result<()> {
    if try_unlink(top, name)? {
        return Ok(());
    }
    let dir = sys::openat_nofollow(top, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    for child in sys::read_dir(dir.as_fd())? {
        let child = CString::new(child).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
        if try_unlink(dir.as_fd(), &child)? {
            continue;
        }
        loop {
            *hoisted += 1;
            let to = cstr(&format!(".bastion-rm-{hoisted}"))?;
            match sys::renameat_noreplace(dir.as_fd(), &child, top, &to) {
                Ok(()) => break,
                Err(e) if errno_is(&e, &[libc::EEXIST]) => continue,
                Err(e) => return Err(e),
            }
        }
    }
    // Refilled meanwhile (`false`): the next pass over `top` takes it again.
    try_unlink(top, name).map(|_| ())
}
