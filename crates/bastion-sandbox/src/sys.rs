//! Every system call this crate makes that Rust's standard library does not wrap: the one
//! module allowed `unsafe`. Each block states why it is sound.
//!
//! The code run between fork and exec ([`spawn_isolated`]'s hook) calls only async-signal-safe
//! functions on data prepared before the fork: no allocation, no locks, no logging.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn check_long(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Takes ownership of a descriptor a successful call just returned.
fn owned(fd: libc::c_long) -> io::Result<OwnedFd> {
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the caller passes a descriptor a system call has just created for us; nothing
    // else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

// ---------------------------------------------------------------------------------------------
// The parent process.

/// Makes this process non-dumpable, so same-user processes cannot read its memory or environ.
pub fn make_undumpable() -> bool {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 }
}

/// Makes this process adopt orphaned descendants, so a child that detaches can still be reaped.
pub fn become_subreaper() -> bool {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

// ---------------------------------------------------------------------------------------------
// seccomp.

/// Whether the kernel accepts seccomp filters that return an errno.
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
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) >= 0 }
}

/// Whether resource limits can be read and set (setting a limit to its current value).
pub fn rlimits_available() -> bool {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into our exclusive struct; setrlimit reads it.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NPROC, &mut rl) == 0
            && libc::setrlimit(libc::RLIMIT_NPROC, &rl) == 0
    }
}

// ---------------------------------------------------------------------------------------------
// The child, between fork and exec.

/// Everything the child applies to itself, prepared before the fork.
#[derive(Debug)]
pub struct ChildPrep {
    pub rlimits: Vec<(libc::__rlimit_resource_t, u64)>,
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
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    let hook = move || child_setup(&prep, parent);
    // SAFETY: `child_setup` makes only async-signal-safe system calls (prctl, getppid, _exit,
    // setsid, close_range, setrlimit, landlock_restrict_self) on memory prepared before the
    // fork, and allocates nothing; io::Error::last_os_error only reads errno.
    unsafe { cmd.pre_exec(hook) };
    cmd.spawn()
}

fn child_setup(prep: &ChildPrep, parent: libc::pid_t) -> io::Result<()> {
    // SAFETY (whole function): called only in the forked child before exec, with syscalls on
    // plain integers or on pointers into `prep`, which lives until the parent drops it.
    unsafe {
        // Tie the child to the server's life: a server killed mid-run takes the run with it.
        check(libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ))?;
        // The parent may have died between fork and the prctl, when no signal will come any
        // more: the child has been re-parented, so its parent is no longer the forking process.
        if libc::getppid() != parent {
            libc::_exit(1);
        }
        check(libc::setsid())?;
        // Anything a library left open without O_CLOEXEC must not reach the command.
        let _ = libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        for (resource, limit) in &prep.rlimits {
            let rl = libc::rlimit {
                rlim_cur: *limit,
                rlim_max: *limit,
            };
            check(libc::setrlimit(*resource, &rl))?;
        }
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
        if prep.drop_capabilities {
            // Root regains every capability in the bounding set at exec; empty it.
            for cap in 0..64 {
                if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0
                    && io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL)
                {
                    return Err(io::Error::last_os_error());
                }
            }
            check(libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            ))?;
        }
        if let Some(ruleset) = &prep.landlock {
            check_long(libc::syscall(
                libc::SYS_landlock_restrict_self,
                ruleset.as_raw_fd(),
                0u32,
            ))?;
        }
        if let Some(filter) = &prep.seccomp {
            // seccompiler builds the program's descriptor on the stack and makes two system
            // calls (no_new_privs again, then seccomp): nothing here allocates.
            seccompiler::apply_filter(filter).map_err(|e| match e {
                seccompiler::Error::Prctl(e) | seccompiler::Error::Seccomp(e) => e,
                _ => io::Error::from_raw_os_error(libc::EINVAL),
            })?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Watching and ending the child.

pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0u32) };
    owned(check_long(fd)?)
}

pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl on an open descriptor with integer arguments.
    unsafe {
        let flags = check(libc::fcntl(fd.as_raw_fd(), libc::F_GETFL))?;
        check(libc::fcntl(
            fd.as_raw_fd(),
            libc::F_SETFL,
            flags | libc::O_NONBLOCK,
        ))?;
    }
    Ok(())
}

/// Waits up to `timeout_ms` for events on `fds` (EINTR counts as no event).
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    let n = libc::nfds_t::try_from(fds.len()).unwrap_or(0);
    // SAFETY: `fds` is a live, exclusive slice of `n` pollfd structs.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), n, timeout_ms) };
    match check(r) {
        Ok(r) => Ok(usize::try_from(r).unwrap_or(0)),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(e),
    }
}

/// SIGKILL to every process in the group `pgid`. ESRCH (group already empty) is fine.
pub fn kill_group(pgid: u32) {
    if let Ok(pgid) = libc::pid_t::try_from(pgid)
        && pgid > 1
    {
        // SAFETY: kill with a negative pid signals that process group; integers only.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
}

/// Reaps the child `pid`, blocking until it has ended.
pub fn reap(pid: u32) -> io::Result<Ended> {
    let pid = libc::id_t::from(pid);
    loop {
        // SAFETY: an all-zero siginfo_t is valid; waitid writes into our exclusive buffer.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED) };
        match check(r) {
            Ok(_) => {
                // SAFETY: waitid succeeded for an exited child, so si_status is initialised.
                let status = unsafe { info.si_status() };
                return Ok(if info.si_code == libc::CLD_EXITED {
                    Ended::Exited(status)
                } else {
                    Ended::Signaled(status)
                });
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Reaps every child of ours left in process group `pgid` (descendants adopted through the
/// subreaper), until none is left.
pub fn reap_group(pgid: u32) {
    let pgid = libc::id_t::from(pgid);
    loop {
        // SAFETY: as in `reap`.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::waitid(libc::P_PGID, pgid, &mut info, libc::WEXITED) };
        match check(r) {
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Files beneath a directory descriptor, never following a symlink.

const RESOLVE: u64 = libc::RESOLVE_BENEATH
    | libc::RESOLVE_NO_SYMLINKS
    | libc::RESOLVE_NO_MAGICLINKS
    | libc::RESOLVE_NO_XDEV;

/// `openat2(dir, path, flags, mode)` with beneath/no-symlink resolution.
pub fn openat2_beneath(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: i32,
    mode: u32,
) -> io::Result<OwnedFd> {
    // SAFETY: open_how is plain integers; all-zero is a valid value before we fill it.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = u64::try_from(flags | libc::O_CLOEXEC).unwrap_or(0);
    how.mode = u64::from(mode);
    how.resolve = RESOLVE;
    // SAFETY: `path` is NUL-terminated, `how` is live and its size is passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    owned(check_long(fd)?)
}

/// `openat(dir, name, flags | O_NOFOLLOW)` for a single component.
pub fn openat_nofollow(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: i32,
    mode: u32,
) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated; integers otherwise.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    owned(libc::c_long::from(check(fd)?))
}

pub fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t) })
        .map(|_| ())
}

pub fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, remove_dir: bool) -> io::Result<()> {
    let flags = if remove_dir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: `name` is NUL-terminated.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) }).map(|_| ())
}

/// Moves `from` in `from_dir` to `to` in `to_dir`, failing with EEXIST rather than replacing.
pub fn renameat_noreplace(
    from_dir: BorrowedFd<'_>,
    from: &CStr,
    to_dir: BorrowedFd<'_>,
    to: &CStr,
) -> io::Result<()> {
    // SAFETY: both names are NUL-terminated; descriptors are open; integers otherwise.
    check(unsafe {
        libc::renameat2(
            from_dir.as_raw_fd(),
            from.as_ptr(),
            to_dir.as_raw_fd(),
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    })
    .map(|_| ())
}

/// The kind and size of `name` in `dir`, not following a symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub is_dir: bool,
    pub is_file: bool,
    pub size: u64,
}

pub fn fstatat_nofollow(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Stat> {
    // SAFETY: an all-zero stat is valid; fstatat fills our exclusive buffer; `name` is
    // NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    let fmt = st.st_mode & libc::S_IFMT;
    Ok(Stat {
        is_dir: fmt == libc::S_IFDIR,
        is_file: fmt == libc::S_IFREG,
        size: u64::try_from(st.st_size).unwrap_or(0),
    })
}

/// The entry names of the directory `dir` (without `.` and `..`).
pub fn read_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    // fdopendir takes ownership of its descriptor; give it a duplicate opened for reading.
    let fd = openat_nofollow(dir, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let raw = fd.as_raw_fd();
    // SAFETY: `raw` is an open directory descriptor; on success the DIR owns it.
    let stream = unsafe { libc::fdopendir(raw) };
    if stream.is_null() {
        return Err(io::Error::last_os_error());
    }
    std::mem::forget(fd);
    let mut names = Vec::new();
    loop {
        // SAFETY: `stream` is a valid DIR* until closedir below; the dirent is read before the
        // next readdir call.
        let entry = unsafe { libc::readdir(stream) };
        if entry.is_null() {
            break;
        }
        // SAFETY: d_name is NUL-terminated within the dirent readdir returned.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) }.to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    // SAFETY: closes the stream (and its descriptor) exactly once.
    unsafe { libc::closedir(stream) };
    Ok(names)
}
