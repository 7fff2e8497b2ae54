//! Which isolation layers this host gives us, and building the per-run Landlock ruleset (before
//! the fork). The seccomp allow-list is `syscalls.rs`.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::sys;

/// Layers exec never runs without, on any host (Lambda's kernel offers all three): the
/// command policy alone is not enough when Landlock is missing.
pub const REQUIRED_LAYERS: &[&str] = &["seccomp", "no_new_privs", "rlimits"];

/// The layers in force, as `/exec/health` reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layers {
    /// Landlock ABI version, if the kernel offers Landlock.
    pub landlock_abi: Option<u32>,
    pub seccomp: bool,
    /// `PR_SET_NO_NEW_PRIVS` is known to the kernel.
    pub no_new_privs: bool,
    /// Resource limits can be read and set.
    pub rlimits: bool,
    pub openat2: bool,
    pub parent_undumpable: bool,
    pub child_subreaper: bool,
    /// Running as root: the child's capability bounding set is emptied before exec.
    pub running_as_root: bool,
}

impl Layers {
    /// Probes the kernel once and applies the process-wide settings (non-dumpable, subreaper).
    pub fn probe(sandbox_root: &Path) -> Self {
        let openat2 = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(sandbox_root)
            .and_then(|dir| sys::openat2_beneath(dir.as_fd(), c".", libc::O_PATH, 0))
            .is_ok();
        Self {
            landlock_abi: sys::landlock_abi(),
            seccomp: sys::seccomp_available(),
            no_new_privs: sys::no_new_privs_available(),
            rlimits: sys::rlimits_available(),
            openat2,
            parent_undumpable: sys::make_undumpable(),
            child_subreaper: sys::become_subreaper(),
            running_as_root: sys::is_root(),
        }
    }

    /// `(layer, in force)` for every layer, always-on ones included.
    pub fn named(&self) -> Vec<(&'static str, bool)> {
        vec![
            ("landlock", self.landlock_abi.is_some()),
            ("seccomp", self.seccomp),
            ("no_new_privs", self.no_new_privs),
            ("rlimits", self.rlimits),
            ("new_session", true),
            ("clean_environment", true),
            ("openat2", self.openat2),
            ("parent_undumpable", self.parent_undumpable),
            ("child_subreaper", self.child_subreaper),
        ]
    }

    /// Required layers this host lacks: a server must not start without any of them.
    pub fn missing_required(&self) -> Vec<&'static str> {
        self.missing()
            .into_iter()
            .filter(|l| REQUIRED_LAYERS.contains(l))
            .collect()
    }

    /// The names of layers that are missing.
    pub fn missing(&self) -> Vec<&'static str> {
        self.named()
            .into_iter()
            .filter(|(_, on)| !on)
            .map(|(n, _)| n)
            .collect()
    }
}

// Landlock access rights (linux/landlock.h).
const FS_EXECUTE: u64 = 1 << 0;
const FS_WRITE_FILE: u64 = 1 << 1;
const FS_READ_FILE: u64 = 1 << 2;
const FS_READ_DIR: u64 = 1 << 3;
const FS_REMOVE_DIR: u64 = 1 << 4;
const FS_REMOVE_FILE: u64 = 1 << 5;
const FS_MAKE_DIR: u64 = 1 << 7;
const FS_MAKE_REG: u64 = 1 << 8;
const FS_REFER: u64 = 1 << 13;
const FS_TRUNCATE: u64 = 1 << 14;
const NET_ALL: u64 = (1 << 0) | (1 << 1);
const SCOPE_ALL: u64 = (1 << 0) | (1 << 1);

/// Every filesystem right the kernel's ABI knows: handling them all denies what is not granted.
fn handled_fs(abi: u32) -> u64 {
    match abi {
        1 => (1 << 13) - 1,
        2 => (1 << 14) - 1,
        3 | 4 => (1 << 15) - 1,
        _ => (1 << 16) - 1,
    }
}

/// Read-only, executable system locations. Missing ones are skipped.
const SYSTEM_DIRS: &[&str] = &["/usr", "/bin", "/lib", "/lib64"];
/// Single files programs read at start-up.
const SYSTEM_FILES: &[&str] = &["/etc/ld.so.cache", "/etc/localtime"];

fn open_path(p: &Path) -> std::io::Result<OwnedFd> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(p)
        .map(OwnedFd::from)
}

/// A ruleset granting the sandbox read-write (no exec, no links, no devices, no fifos) and the
/// system program and library directories read-execute; everything else is denied, as are TCP
/// (ABI 4+) and signals or abstract sockets outside the domain (ABI 6+).
pub fn landlock_ruleset(abi: u32, sandbox: &Path) -> std::io::Result<OwnedFd> {
    let handled = handled_fs(abi);
    let net = if abi >= 4 { NET_ALL } else { 0 };
    let scoped = if abi >= 6 { SCOPE_ALL } else { 0 };
    let ruleset = sys::landlock_create(abi, handled, net, scoped)?;
    let read_exec = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR;
    for dir in SYSTEM_DIRS {
        if let Ok(fd) = open_path(Path::new(dir)) {
            sys::landlock_add_path(ruleset.as_fd(), fd.as_fd(), read_exec)?;
        }
    }
    for file in SYSTEM_FILES {
        if let Ok(fd) = open_path(Path::new(file)) {
            sys::landlock_add_path(ruleset.as_fd(), fd.as_fd(), FS_READ_FILE)?;
        }
    }
    if let Ok(fd) = open_path(Path::new("/dev/null")) {
        sys::landlock_add_path(ruleset.as_fd(), fd.as_fd(), FS_READ_FILE | FS_WRITE_FILE)?;
    }
    let sandbox_rights = (FS_WRITE_FILE
        | FS_READ_FILE
        | FS_READ_DIR
        | FS_REMOVE_DIR
        | FS_REMOVE_FILE
        | FS_MAKE_DIR
        | FS_MAKE_REG
        | FS_REFER
        | FS_TRUNCATE)
        & handled;
    let fd = open_path(sandbox)?;
    sys::landlock_add_path(ruleset.as_fd(), fd.as_fd(), sandbox_rights)?;
    Ok(ruleset)
}
