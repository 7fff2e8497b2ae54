//! The kernel interfaces the standard library does not wrap. System calls go through `rustix`
//! (safe, raw system calls with no allocation, so also fit for the code between fork and exec);
//! this is the one module allowed `unsafe`, for what no maintained crate wraps: installing the
//! fork-exec hook itself, `landlock_restrict_self` on a ruleset the `landlock` crate built,
//! `close_range`, and the seccomp action probe. Each block states why it is sound.
//!
//! The code run between fork and exec ([`spawn_isolated`]'s hook) calls only async-signal-safe
//! functions on data prepared before the fork: no allocation, no locks, no logging.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags, ResolveFlags};
use rustix::process::{Pid, Resource, Rlimit, Signal, WaitId, WaitIdOptions};

fn check_long(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

// ---------------------------------------------------------------------------------------------
// The parent process.

/// Makes this process non-dumpable, so same-user processes cannot read its memory or environ.
pub fn make_undumpable() -> bool {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable).is_ok()
}

/// Makes this process adopt orphaned descendants, so a child that detaches can still be reaped.
pub fn become_subreaper() -> bool {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).is_ok()
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

// ---------------------------------------------------------------------------------------------
// seccomp.

/// Whether the kernel accepts seccomp filters that return an errno (no crate wraps this probe).
pub fn seccomp_available() -> bool {
    let action: u32 = libc::SECCOMP_RET_ERRNO;
    // SAFETY: SECCOMP_GET_ACTION_AVAIL reads one u32 through the pointer, which is live.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_ACTION_AVAIL,
            0u32,
            &action as *const u32,
        )
    };
    r == 0
}

/// Whether the kernel knows `PR_SET_NO_NEW_PRIVS` (reading the flag is the side-effect-free
/// probe).
pub fn no_new_privs_available() -> bool {
    rustix::thread::no_new_privs().is_ok()
}

/// Whether resource limits can be read and set (setting a limit to its current value).
pub fn rlimits_available() -> bool {
    let current = rustix::process::getrlimit(Resource::Nproc);
    rustix::process::setrlimit(Resource::Nproc, current).is_ok()
}

// ---------------------------------------------------------------------------------------------
// The child, between fork and exec.

/// Everything the child applies to itself, prepared before the fork.
#[derive(Debug)]
pub struct ChildPrep {
    pub rlimits: Vec<(Resource, u64)>,
    pub drop_capabilities: bool,
    pub landlock: Option<OwnedFd>,
    pub seccomp: Option<std::sync::Arc<seccompiler::BpfProgram>>,
}

/// Spawns `cmd` with the isolation in `prep` applied in the child: SIGKILL when the forking
/// thread dies, new session (and process group), descriptors other than 0-2 closed on exec,
/// rlimits, no_new_privs, capability bounding set emptied (as root), Landlock, then seccomp last
/// so the setup itself is not filtered. Any failure aborts the exec and surfaces as the spawn
/// error.
///
/// The kernel sends the parent-death signal when the *thread* that forked exits, not the
/// process, so the caller must keep this thread alive until the child has been reaped (as
/// `Runner::run` does: it supervises and reaps on the thread that spawned). A thread that ends
/// earlier kills the child it left behind, which is what a leaked child deserves anyway.
pub fn spawn_isolated(cmd: &mut Command, prep: std::sync::Arc<ChildPrep>) -> io::Result<Child> {
    let parent = rustix::process::getpid();
    let hook = move || child_setup(&prep, parent);
    // SAFETY: `child_setup` makes only async-signal-safe system calls (rustix's raw calls,
    // close_range, landlock_restrict_self, seccomp) on memory prepared before the fork, and
    // allocates nothing; io::Error::last_os_error only reads errno.
    unsafe { cmd.pre_exec(hook) };
    cmd.spawn()
}

fn child_setup(prep: &ChildPrep, parent: Pid) -> io::Result<()> {
    // Tie the child to the server's life: a server killed mid-run takes the run with it.
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
    // The parent may have died between fork and the prctl, when no signal will come any more:
    // the child has been re-parented, so its parent is no longer the forking process.
    if rustix::process::getppid() != Some(parent) {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    rustix::process::setsid()?;
    // Anything a library left open without O_CLOEXEC must not reach the command.
    // SAFETY: close_range with integer arguments only marks descriptors close-on-exec.
    let _ = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    for (resource, limit) in &prep.rlimits {
        let rl = Rlimit {
            current: Some(*limit),
            maximum: Some(*limit),
        };
        rustix::process::setrlimit(*resource, rl)?;
    }
    rustix::thread::set_no_new_privs(true)?;
    if prep.drop_capabilities {
        // Root regains every capability in the bounding set at exec; empty it.
        for cap in 0..64 {
            if let Err(e) = drop_bounding_capability(cap)
                && e.raw_os_error() != Some(libc::EINVAL)
            {
                return Err(e);
            }
        }
        rustix::thread::clear_ambient_capability_set()?;
    }
    if let Some(ruleset) = &prep.landlock {
        // SAFETY: landlock_restrict_self takes a ruleset descriptor (open, owned by `prep`)
        // and flags; no memory is passed.
        check_long(unsafe {
            libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0u32)
        })?;
    }
    if let Some(filter) = &prep.seccomp {
        // seccompiler builds the program's descriptor on the stack and makes two system calls
        // (no_new_privs again, then seccomp): nothing here allocates.
        seccompiler::apply_filter(filter).map_err(|e| match e {
            seccompiler::Error::Prctl(e) | seccompiler::Error::Seccomp(e) => e,
            _ => io::Error::from_raw_os_error(libc::EINVAL),
        })?;
    }
    Ok(())
}

/// Drops capability number `cap` from the bounding set (rustix names only the capabilities it
/// knows; the loop covers every number the kernel might).
fn drop_bounding_capability(cap: libc::c_ulong) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

// ---------------------------------------------------------------------------------------------
// Watching and ending the child.

fn pid(raw: u32) -> io::Result<Pid> {
    i32::try_from(raw)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))
}

pub fn pidfd_open(child: u32) -> io::Result<OwnedFd> {
    Ok(rustix::process::pidfd_open(
        pid(child)?,
        rustix::process::PidfdFlags::empty(),
    )?)
}

pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    Ok(rustix::fs::fcntl_setfl(fd, flags | OFlags::NONBLOCK)?)
}

/// Waits up to `timeout_ms` for events on `fds` (EINTR counts as no event).
pub fn poll(fds: &mut [rustix::event::PollFd<'_>], timeout_ms: i32) -> io::Result<usize> {
    let timeout = rustix::time::Timespec {
        tv_sec: i64::from(timeout_ms / 1000),
        tv_nsec: i64::from(timeout_ms % 1000) * 1_000_000,
    };
    match rustix::event::poll(fds, Some(&timeout)) {
        Ok(n) => Ok(n),
        Err(rustix::io::Errno::INTR) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// SIGKILL to every process in the group `pgid`. ESRCH (group already empty) is fine.
pub fn kill_group(pgid: u32) {
    if let Ok(pgid) = pid(pgid)
        && !pgid.is_init()
    {
        let _ = rustix::process::kill_process_group(pgid, Signal::KILL);
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
}

/// Reaps the child `child`, blocking until it has ended.
pub fn reap(child: u32) -> io::Result<Ended> {
    let child = pid(child)?;
    loop {
        match rustix::process::waitid(WaitId::Pid(child), WaitIdOptions::EXITED) {
            Ok(Some(status)) => {
                return Ok(match status.exit_status() {
                    Some(code) => Ended::Exited(code),
                    None => Ended::Signaled(status.terminating_signal().unwrap_or(0)),
                });
            }
            Ok(None) | Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reaps every child of ours left in process group `pgid` (descendants adopted through the
/// subreaper), until none is left.
pub fn reap_group(pgid: u32) {
    let Ok(pgid) = pid(pgid) else {
        return;
    };
    loop {
        match rustix::process::waitid(WaitId::Pgid(Some(pgid)), WaitIdOptions::EXITED) {
            Ok(_) | Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Files beneath a directory descriptor, never following a symlink.

fn oflags(flags: i32) -> OFlags {
    OFlags::from_bits_retain(u32::from_ne_bytes(flags.to_ne_bytes()))
}

/// `openat2(dir, path, flags, mode)` with beneath/no-symlink resolution.
pub fn openat2_beneath(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: i32,
    mode: u32,
) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat2(
        dir,
        path,
        oflags(flags) | OFlags::CLOEXEC,
        Mode::from_bits_retain(mode),
        ResolveFlags::BENEATH
            | ResolveFlags::NO_SYMLINKS
            | ResolveFlags::NO_MAGICLINKS
            | ResolveFlags::NO_XDEV,
    )?)
}

/// `openat(dir, name, flags | O_NOFOLLOW)` for a single component.
pub fn openat_nofollow(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: i32,
    mode: u32,
) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        oflags(flags) | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_bits_retain(mode),
    )?)
}

pub fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::mkdirat(
        dir,
        name,
        Mode::from_bits_retain(mode),
    )?)
}

pub fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, remove_dir: bool) -> io::Result<()> {
    let flags = if remove_dir {
        AtFlags::REMOVEDIR
    } else {
        AtFlags::empty()
    };
    Ok(rustix::fs::unlinkat(dir, name, flags)?)
}

/// Moves `from` in `from_dir` to `to` in `to_dir`, failing with EEXIST rather than replacing.
pub fn renameat_noreplace(
    from_dir: BorrowedFd<'_>,
    from: &CStr,
    to_dir: BorrowedFd<'_>,
    to: &CStr,
) -> io::Result<()> {
    Ok(rustix::fs::renameat_with(
        from_dir,
        from,
        to_dir,
        to,
        RenameFlags::NOREPLACE,
    )?)
}

/// The kind and size of `name` in `dir`, not following a symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub is_dir: bool,
    pub is_file: bool,
    pub size: u64,
}

pub fn fstatat_nofollow(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Stat> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
    Ok(Stat {
        is_dir: kind.is_dir(),
        is_file: kind.is_file(),
        size: u64::try_from(st.st_size).unwrap_or(0),
    })
}

/// The entry names of the directory `dir` (without `.` and `..`).
pub fn read_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    // Read through a descriptor of our own, so the caller's offset is untouched.
    let fd = openat_nofollow(dir, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(fd.as_fd())? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    Ok(names)
}
