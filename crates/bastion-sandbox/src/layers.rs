//! Which isolation layers this host gives us, and building the per-run Landlock ruleset and the
//! seccomp program (both before the fork).

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

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// System calls the child may never make (EPERM): network namespaces and mounts, tracing and
/// other processes' memory, kernel modules and keyrings, clocks, and leaving its process group
/// (so a detached grandchild is still killed with the group).
fn denied_syscalls() -> Vec<libc::c_long> {
    let mut v = vec![
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_open_tree,
        libc::SYS_move_mount,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_mount_setattr,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_keyctl,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_pidfd_getfd,
        libc::SYS_kcmp,
        libc::SYS_process_madvise,
        libc::SYS_personality,
        libc::SYS_acct,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_reboot,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
        libc::SYS_sethostname,
        libc::SYS_setdomainname,
        libc::SYS_syslog,
        libc::SYS_mknodat,
        libc::SYS_quotactl,
        libc::SYS_fanotify_init,
        libc::SYS_vhangup,
        libc::SYS_setsid,
        libc::SYS_setpgid,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        libc::SYS_mknod,
        libc::SYS_iopl,
        libc::SYS_ioperm,
        libc::SYS_uselib,
    ]);
    v
}

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: u16::try_from(code).unwrap_or(0),
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: u16::try_from(code).unwrap_or(0),
        jt,
        jf,
        k,
    }
}

const LD_W_ABS: u32 = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
const JEQ: u32 = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
const JGE: u32 = libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K;
const JSET: u32 = libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K;
const RET: u32 = libc::BPF_RET | libc::BPF_K;
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARG0: u32 = 16;

fn errno(e: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | (u32::try_from(e).unwrap_or(1) & libc::SECCOMP_RET_DATA)
}

/// Namespace-creating clone flags.
const CLONE_NS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP) as u32;

/// The seccomp deny-list as a classic BPF program for this architecture.
pub fn seccomp_program() -> Vec<libc::sock_filter> {
    let allow = libc::SECCOMP_RET_ALLOW;
    let mut p = vec![
        stmt(LD_W_ABS, OFF_ARCH),
        jump(JEQ, AUDIT_ARCH, 1, 0),
        stmt(RET, libc::SECCOMP_RET_KILL_PROCESS),
        stmt(LD_W_ABS, OFF_NR),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        // x32 system calls alias the 64-bit ones with this bit set.
        p.push(jump(JGE, 0x4000_0000, 0, 1));
        p.push(stmt(RET, errno(libc::EPERM)));
    }
    for nr in denied_syscalls() {
        p.push(jump(JEQ, u32::try_from(nr).unwrap_or(u32::MAX), 0, 1));
        p.push(stmt(RET, errno(libc::EPERM)));
    }
    // clone3 passes flags in memory BPF cannot read: make libc fall back to clone.
    p.push(jump(
        JEQ,
        u32::try_from(libc::SYS_clone3).unwrap_or(u32::MAX),
        0,
        1,
    ));
    p.push(stmt(RET, errno(libc::ENOSYS)));
    // Argument checks load over the syscall number, so each ends in a return.
    p.push(jump(
        JEQ,
        u32::try_from(libc::SYS_clone).unwrap_or(u32::MAX),
        0,
        4,
    ));
    p.push(stmt(LD_W_ABS, OFF_ARG0));
    p.push(jump(JSET, CLONE_NS, 0, 1));
    p.push(stmt(RET, errno(libc::EPERM)));
    p.push(stmt(RET, allow));
    p.push(jump(
        JEQ,
        u32::try_from(libc::SYS_socket).unwrap_or(u32::MAX),
        0,
        4,
    ));
    p.push(stmt(LD_W_ABS, OFF_ARG0));
    p.push(jump(JEQ, u32::try_from(libc::AF_UNIX).unwrap_or(1), 1, 0));
    p.push(stmt(RET, errno(libc::EAFNOSUPPORT)));
    p.push(stmt(RET, allow));
    p.push(stmt(RET, allow));
    p
}
