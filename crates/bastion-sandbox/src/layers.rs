//! Which isolation layers this host gives us, and building the per-run Landlock ruleset (before
//! the fork). The seccomp allow-list is `syscalls.rs`.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, AccessNet, LandlockStatus, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetError, Scope,
};

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
            landlock_abi: probe_landlock(),
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

/// Why a run's Landlock ruleset could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    #[error("opening the sandbox directory")]
    Sandbox(#[source] landlock::PathFdError),
    #[error("opening the program directory")]
    Programs(#[source] landlock::PathFdError),
    #[error("building the ruleset")]
    Ruleset(#[from] RulesetError),
}

/// The newest Landlock ABI this code was written and tested against. Rights newer kernels add
/// are not handled until listed here; older kernels get what they support (best effort).
const LANDLOCK_TARGET: ABI = ABI::V6;

/// Read-only, executable system locations. Missing ones are skipped.
const SYSTEM_DIRS: &[&str] = &["/usr", "/bin", "/lib", "/lib64"];
/// Single files programs read at start-up.
const SYSTEM_FILES: &[&str] = &["/etc/ld.so.cache", "/etc/localtime"];

/// Whether Landlock enforces here, and at which ABI: a throwaway thread restricts itself with
/// the same handled rights a run uses (the real path, not only a version query), then ends.
fn probe_landlock() -> Option<u32> {
    let probe = || -> Result<LandlockStatus, RulesetError> {
        let status = Ruleset::default()
            .handle_access(AccessFs::from_all(LANDLOCK_TARGET))?
            .create()?
            .restrict_self()?;
        Ok(status.landlock)
    };
    let status = std::thread::spawn(probe).join().ok()?.ok()?;
    match status {
        LandlockStatus::Available { effective_abi, .. } => abi_number(effective_abi),
        LandlockStatus::NotEnabled | LandlockStatus::NotImplemented => None,
    }
}

fn abi_number(abi: ABI) -> Option<u32> {
    Some(match abi {
        ABI::Unsupported => return None,
        ABI::V1 => 1,
        ABI::V2 => 2,
        ABI::V3 => 3,
        ABI::V4 => 4,
        ABI::V5 => 5,
        ABI::V6 => 6,
        ABI::V7 => 7,
        ABI::V8 => 8,
        ABI::V9 => 9,
        _ => 10,
    })
}

/// A ruleset granting the sandbox read-write (no exec, no links, no devices, no fifos) and the
/// system program and library directories, plus `program_dirs` (exec's toolset), read-execute;
/// everything else is denied, as are TCP (ABI 4+) and signals or abstract sockets outside the
/// domain (ABI 6+). Built in the parent; the child only restricts itself with the returned
/// descriptor. `None` where the kernel has no Landlock.
pub fn landlock_ruleset(
    sandbox: &Path,
    program_dirs: &[PathBuf],
) -> Result<Option<OwnedFd>, LandlockError> {
    let read_exec = AccessFs::Execute | AccessFs::ReadFile | AccessFs::ReadDir;
    let sandbox_rights = AccessFs::WriteFile
        | AccessFs::ReadFile
        | AccessFs::ReadDir
        | AccessFs::RemoveDir
        | AccessFs::RemoveFile
        | AccessFs::MakeDir
        | AccessFs::MakeReg
        | AccessFs::Refer
        | AccessFs::Truncate;
    let mut rules: Vec<PathBeneath<PathFd>> = Vec::new();
    for dir in SYSTEM_DIRS {
        if let Ok(fd) = PathFd::new(dir) {
            rules.push(PathBeneath::new(fd, read_exec));
        }
    }
    for dir in program_dirs {
        let fd = PathFd::new(dir).map_err(LandlockError::Programs)?;
        rules.push(PathBeneath::new(fd, read_exec));
    }
    for file in SYSTEM_FILES {
        if let Ok(fd) = PathFd::new(file) {
            rules.push(PathBeneath::new(fd, AccessFs::ReadFile));
        }
    }
    if let Ok(fd) = PathFd::new("/dev/null") {
        rules.push(PathBeneath::new(
            fd,
            AccessFs::ReadFile | AccessFs::WriteFile,
        ));
    }
    let sandbox_fd = PathFd::new(sandbox).map_err(LandlockError::Sandbox)?;
    rules.push(PathBeneath::new(sandbox_fd, sandbox_rights));
    let created = Ruleset::default()
        .handle_access(AccessFs::from_all(LANDLOCK_TARGET))?
        .handle_access(AccessNet::from_all(LANDLOCK_TARGET))?
        .scope(Scope::from_all(LANDLOCK_TARGET))?
        .create()?
        .add_rules(rules.into_iter().map(Ok::<_, RulesetError>))?;
    Ok(created.into())
}
