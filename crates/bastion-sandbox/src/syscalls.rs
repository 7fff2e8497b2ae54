//! The seccomp allow-list: every system call an exec child may make, for x86_64 and aarch64.
//! Anything else fails with `ENOSYS`, as on a kernel without that call, so glibc takes its
//! fallbacks (it retries `clone3` as `clone`, `faccessat2` as `faccessat`…) and a program sees a
//! plain error rather than a kill.
//!
//! Derived by tracing the allowed commands as exec runs them, the toolset's uutils programs
//! (`scripts/trace-exec-syscalls`, which runs each in
//! typical and option-heavy forms under strace, and python3 under a Landlock ruleset like the
//! runner's: it adds only `seccomp`, below, and a `prctl` it does without) and reviewed group by
//! group; a call the trace
//! showed but that the commands do not need for their job is left off with the reason below.
//! Left off on purpose: sockets of every family (glibc's nscd lookup falls back to the files),
//! `kill`/`tkill`/`tgkill` (the child runs as the server's user and could signal it),
//! `setsid`/`setpgid` (leaving the process group escapes the group kill), namespaces, mounts,
//! tracing, keyrings, BPF, io_uring, `symlinkat`/`linkat` (no command may create links),
//! `mknodat`, clock setting, `prctl`, `personality`, the Landlock calls, and every seccomp
//! operation but adding a plain filter (python3's launcher narrows itself further).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Allowed whatever the arguments.
const UNCONDITIONAL: &[libc::c_long] = &[
    // The exec itself (the filter is installed just before it) and the dynamic loader: mapping
    // libraries, the heap, thread and restartable-sequence set-up, randomness for the stack
    // protector and hash seeds.
    libc::SYS_execve,
    libc::SYS_brk,
    libc::SYS_mmap,
    libc::SYS_mprotect,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_set_tid_address,
    libc::SYS_set_robust_list,
    libc::SYS_rseq,
    libc::SYS_getrandom,
    libc::SYS_futex,
    // Reading and writing open descriptors (standard streams, files the command opened).
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_lseek,
    libc::SYS_close,
    libc::SYS_fstat,
    libc::SYS_fstatfs,
    libc::SYS_fadvise64,
    libc::SYS_ftruncate,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
    libc::SYS_getdents64,
    libc::SYS_copy_file_range,
    libc::SYS_sendfile,
    // uutils cat moves file data into a pipe with splice (between two descriptors it holds).
    libc::SYS_splice,
    libc::SYS_dup,
    libc::SYS_dup3,
    libc::SYS_fcntl,
    libc::SYS_pipe2,
    // Files by name, relative to the working directory (the sandbox) or a descriptor: what
    // cat, ls, cp, mv, rm, mkdir, sort -o… do. Where a file may be is Landlock's and the path
    // rules' business, not seccomp's.
    libc::SYS_openat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_statfs,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    libc::SYS_readlinkat,
    libc::SYS_mkdirat,
    libc::SYS_unlinkat,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_fchmod,
    libc::SYS_fchmodat,
    libc::SYS_fchown,
    libc::SYS_fchownat,
    libc::SYS_utimensat,
    libc::SYS_getcwd,
    libc::SYS_chdir,
    libc::SYS_fchdir,
    libc::SYS_umask,
    // Extended attributes: cp -a and cp -p copy them (and ACLs, which live in them).
    libc::SYS_getxattr,
    libc::SYS_lgetxattr,
    libc::SYS_fgetxattr,
    libc::SYS_listxattr,
    libc::SYS_llistxattr,
    libc::SYS_flistxattr,
    libc::SYS_setxattr,
    libc::SYS_lsetxattr,
    libc::SYS_fsetxattr,
    libc::SYS_removexattr,
    libc::SYS_lremovexattr,
    libc::SYS_fremovexattr,
    // Who and where am I: ls -l prints owners, sort sizes its buffers from memory and CPUs.
    libc::SYS_getuid,
    libc::SYS_geteuid,
    libc::SYS_getgid,
    libc::SYS_getegid,
    libc::SYS_getgroups,
    libc::SYS_getpid,
    libc::SYS_getppid,
    libc::SYS_gettid,
    libc::SYS_getpgid,
    libc::SYS_uname,
    libc::SYS_sysinfo,
    libc::SYS_sched_getaffinity,
    libc::SYS_sched_yield,
    libc::SYS_getrusage,
    // Time: reading clocks (date), sleeping (sort's threads wait; the deadline kills sleepers).
    libc::SYS_clock_gettime,
    libc::SYS_clock_getres,
    libc::SYS_gettimeofday,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    // Own signal handling (no signal to any other process: that is kill/tgkill, left off).
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_sigaltstack,
    // Rust's start-up checks that descriptors 0-2 are open with poll (ppoll on aarch64, where
    // glibc has no poll call) and aborts on any error it does not expect, ENOSYS included: the
    // toolset's programs cannot start without it.
    libc::SYS_ppoll,
    // Ending, and waiting for own children (sort's helpers; the group kill ends them all).
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_wait4,
    libc::SYS_waitid,
];

/// x86_64 keeps older names the loader and coreutils still call there (aarch64 never had them).
#[cfg(target_arch = "x86_64")]
const UNCONDITIONAL_X86_64: &[libc::c_long] = &[
    libc::SYS_arch_prctl,
    libc::SYS_access,
    libc::SYS_open,
    libc::SYS_stat,
    libc::SYS_lstat,
    libc::SYS_readlink,
    libc::SYS_mkdir,
    libc::SYS_rmdir,
    libc::SYS_unlink,
    libc::SYS_rename,
    libc::SYS_dup2,
    libc::SYS_pipe,
    libc::SYS_getdents,
    libc::SYS_poll,
    // The path forms of fchmodat/fchownat, which uutils cp -p/-a calls on x86_64.
    libc::SYS_chmod,
    libc::SYS_lchown,
    // Process creation without namespaces, as clone below (dash forks this way on x86_64).
    libc::SYS_vfork,
];
#[cfg(not(target_arch = "x86_64"))]
const UNCONDITIONAL_X86_64: &[libc::c_long] = &[];

/// Clone flags that create namespaces.
const CLONE_NEW: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP) as u64;

// Terminal and file-clone requests (asm-generic values, the same on both architectures).
const TCGETS: u64 = 0x5401;
const TIOCGWINSZ: u64 = 0x5413;
const FICLONE: u64 = 0x4004_9409;
const SECCOMP_SET_MODE_FILTER: u64 = 1;

fn condition(
    arg: u8,
    len: SeccompCmpArgLen,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompRule, seccompiler::BackendError> {
    SeccompRule::new(vec![SeccompCondition::new(arg, len, op, value)?])
}

/// Calls allowed only with certain arguments.
fn conditional() -> Result<Vec<(libc::c_long, Vec<SeccompRule>)>, seccompiler::BackendError> {
    use SeccompCmpArgLen::{Dword, Qword};
    Ok(vec![
        // Threads (sort) and processes, never in new namespaces. clone3 passes its flags in
        // memory a filter cannot read: it is left off, and glibc falls back to clone.
        (
            libc::SYS_clone,
            vec![condition(0, Qword, SeccompCmpOp::MaskedEq(CLONE_NEW), 0)?],
        ),
        // Own limits only: the loader reads the stack limit; another process's (the server's)
        // limits are out of reach.
        (
            libc::SYS_prlimit64,
            vec![condition(0, Dword, SeccompCmpOp::Eq, 0)?],
        ),
        // python3's launcher adds a filter of its own (no exec, no fork, no sockets) before any
        // script runs. A filter can only refuse more, never undo this one; flags must be 0:
        // no listener descriptor, no thread syncing, no logging.
        (
            libc::SYS_seccomp,
            vec![SeccompRule::new(vec![
                SeccompCondition::new(0, Dword, SeccompCmpOp::Eq, SECCOMP_SET_MODE_FILTER)?,
                SeccompCondition::new(1, Dword, SeccompCmpOp::Eq, 0)?,
            ])?],
        ),
        // Is this a terminal and how wide (ls, cat), and copy-on-write cloning (cp); never
        // TIOCSTI or any other device request.
        (
            libc::SYS_ioctl,
            vec![
                condition(1, Dword, SeccompCmpOp::Eq, TCGETS)?,
                condition(1, Dword, SeccompCmpOp::Eq, TIOCGWINSZ)?,
                condition(1, Dword, SeccompCmpOp::Eq, FICLONE)?,
            ],
        ),
    ])
}

/// Why the filter could not be built (a bug in this file, caught by the unit test).
#[derive(Debug, thiserror::Error)]
#[error("building the seccomp allow-list")]
pub struct FilterError(#[source] seccompiler::Error);

fn target_arch() -> TargetArch {
    #[cfg(target_arch = "aarch64")]
    return TargetArch::aarch64;
    #[cfg(not(target_arch = "aarch64"))]
    TargetArch::x86_64
}

/// The allow-list compiled to a BPF program for this architecture.
pub fn program() -> Result<BpfProgram, FilterError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in UNCONDITIONAL.iter().chain(UNCONDITIONAL_X86_64) {
        rules.insert(*nr, Vec::new());
    }
    let conditional = conditional().map_err(|e| FilterError(e.into()))?;
    for (nr, r) in conditional {
        rules.insert(nr, r);
    }
    let enosys = u32::try_from(libc::ENOSYS).unwrap_or(38);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(enosys),
        SeccompAction::Allow,
        target_arch(),
    )
    .map_err(|e| FilterError(e.into()))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| FilterError(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_compiles_and_names_no_call_twice() {
        let all: Vec<_> = UNCONDITIONAL.iter().chain(UNCONDITIONAL_X86_64).collect();
        let mut unique = all.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), all.len());
        assert!(!program().unwrap().is_empty());
        for denied in [
            libc::SYS_socket,
            libc::SYS_kill,
            libc::SYS_tgkill,
            libc::SYS_setsid,
            libc::SYS_setpgid,
            libc::SYS_ptrace,
            libc::SYS_unshare,
            libc::SYS_symlinkat,
            libc::SYS_linkat,
            libc::SYS_mknodat,
            libc::SYS_prctl,
            libc::SYS_clone3,
            libc::SYS_io_uring_setup,
            libc::SYS_bpf,
        ] {
            assert!(!unique.contains(&&denied), "{denied}");
        }
    }
}
