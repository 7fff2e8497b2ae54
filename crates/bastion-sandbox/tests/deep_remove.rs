//! Removing a sandbox tree deeper than the open-file limit. Its own test binary, because it
//! lowers this process's descriptor limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A chain `a/a/a/…` `depth` levels deep under `dir`, built with one descriptor at a time.
fn chain(dir: &std::path::Path, depth: usize) {
    let name = CString::new("a").unwrap();
    let mut cur: OwnedFd = std::fs::File::open(dir).unwrap().into();
    for _ in 0..depth {
        // SAFETY: test-only system calls on an open directory descriptor and a C string.
        unsafe {
            assert_eq!(libc::mkdirat(cur.as_raw_fd(), name.as_ptr(), 0o700), 0);
            let next = libc::openat(
                cur.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            );
            assert!(next >= 0);
            cur = OwnedFd::from_raw_fd(next);
        }
    }
    let file = CString::new("f").unwrap();
    // SAFETY: as above.
    let fd = unsafe {
        libc::openat(
            cur.as_raw_fd(),
            file.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC,
            0o600,
        )
    };
    assert!(fd >= 0);
    // SAFETY: `fd` was just opened and is owned here.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
}

#[test]
fn a_tree_deeper_than_the_open_file_limit_is_removed_without_following_symlinks() {
    let root = std::env::temp_dir().join(format!("bastion-deep-remove-{}", std::process::id()));
    let outside = root.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("keep"), b"keep").unwrap();
    let sandbox = root.join("sandbox");
    std::fs::create_dir_all(sandbox.join("b")).unwrap();
    std::os::unix::fs::symlink(&outside, sandbox.join("b/link")).unwrap();
    std::os::unix::fs::symlink(&outside, sandbox.join("link")).unwrap();
    chain(&sandbox, 1500);
    chain(&sandbox.join("b"), 700);
    // Far fewer descriptors than levels.
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on this process with a live struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl), 0);
        rl.rlim_cur = 128;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &rl), 0);
    }

    bastion_sandbox::remove_tree(&root, "sandbox").unwrap();

    assert!(!sandbox.exists());
    assert_eq!(std::fs::read(outside.join("keep")).unwrap(), b"keep");
    // A missing tree is already removed; a symlink is removed, not followed.
    bastion_sandbox::remove_tree(&root, "sandbox").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("sandbox")).unwrap();
    bastion_sandbox::remove_tree(&root, "sandbox").unwrap();
    assert!(std::fs::symlink_metadata(root.join("sandbox")).is_err());
    assert_eq!(std::fs::read(outside.join("keep")).unwrap(), b"keep");
    bastion_sandbox::remove_tree(
        std::path::Path::new("/tmp"),
        root.file_name().unwrap().to_str().unwrap(),
    )
    .unwrap();
    assert!(!root.exists());
}
