//! What the launcher checks and locks before any Python runs. A script's file reads are
//! contained only by Landlock (seccomp cannot see paths), so the launcher refuses to run where
//! the filesystem outside is readable; and it adds a seccomp filter of its own that stops
//! process creation and sockets, which the exec allow-list lets other programs have.

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error(
        "refusing to run: files outside the run directory are readable here (no Landlock \
         sandbox is in force)"
    )]
    Unconfined,
    #[error("refusing to run: the process filter cannot be built ({0})")]
    Filter(String),
    #[error("refusing to run: the process filter cannot be installed ({0})")]
    Install(std::io::Error),
}

/// Fails unless the root directory is closed to this process, as the runner's Landlock ruleset
/// (which grants only the run directory and the system and program directories) leaves it.
pub fn require_landlock() -> Result<(), ConfineError> {
    // SAFETY: a NUL-terminated path literal; the descriptor, if any, is closed at once.
    let fd = unsafe {
        libc::open(
            c"/".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd >= 0 {
        // SAFETY: fd was just opened here and is not used again.
        unsafe { libc::close(fd) };
        return Err(ConfineError::Unconfined);
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EACCES) => Ok(()),
        _ => Err(ConfineError::Unconfined),
    }
}

/// Calls that create processes or sockets, denied with `ENOSYS` whatever their arguments;
/// `clone` is denied unless it makes a thread (see `filter`).
const DENIED: &[libc::c_long] = &[
    libc::SYS_execve,
    libc::SYS_execveat,
    libc::SYS_clone3,
    libc::SYS_socket,
    libc::SYS_socketpair,
];
/// x86_64 keeps the old process calls aarch64 never had.
#[cfg(target_arch = "x86_64")]
const DENIED_X86_64: &[libc::c_long] = &[libc::SYS_fork, libc::SYS_vfork];
#[cfg(not(target_arch = "x86_64"))]
const DENIED_X86_64: &[libc::c_long] = &[];

fn filter() -> Result<BpfProgram, ConfineError> {
    let err = |e: &dyn std::fmt::Display| ConfineError::Filter(e.to_string());
    let mut rules: std::collections::BTreeMap<i64, Vec<SeccompRule>> = DENIED
        .iter()
        .chain(DENIED_X86_64)
        .map(|nr| (*nr, Vec::new()))
        .collect();
    let no_thread = SeccompCondition::new(
        0,
        SeccompCmpArgLen::Qword,
        SeccompCmpOp::MaskedEq(libc::CLONE_THREAD as u64),
        0,
    )
    .map_err(|e| err(&e))?;
    rules.insert(
        libc::SYS_clone,
        vec![SeccompRule::new(vec![no_thread]).map_err(|e| err(&e))?],
    );
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| err(&e))?;
    let enosys = libc::ENOSYS as u32;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(enosys),
        arch,
    )
    .map_err(|e| err(&e))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| err(&e))
}

/// Installs the filter on this (still single) thread; every thread and child inherits it.
/// The exec allow-list admits `seccomp` only in this form, and filters only ever add refusals.
pub fn deny_processes_and_sockets() -> Result<(), ConfineError> {
    let program = filter()?;
    // Under the runner no_new_privs is already set (and prctl is refused); elsewhere this sets
    // it, which an unprivileged filter requires.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    let prog = libc::sock_fprog {
        len: u16::try_from(program.len())
            .map_err(|_| ConfineError::Filter("too long".to_owned()))?,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prog points at `program`, which outlives the call; the kernel copies it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(ConfineError::Install(std::io::Error::last_os_error()));
    }
    Ok(())
}
