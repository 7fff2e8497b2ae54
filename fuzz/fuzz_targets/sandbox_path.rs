//! Fuzzes the sandbox path validator: an accepted path never leaves the sandbox directory
//! (checked against a lexical resolution), and the byte and string parsers agree.
#![no_main]

use std::path::{Component, Path};

use bastion_sandbox::SandboxPath;
use bastion_sandbox::path::{MAX_COMPONENT_BYTES, MAX_PATH_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bytes = SandboxPath::parse_bytes(data);
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = SandboxPath::parse(s);
    assert_eq!(parsed.as_ref().map(|_| ()).map_err(|e| *e), bytes);
    let Ok(path) = parsed else {
        return;
    };
    assert!(s.len() <= MAX_PATH_BYTES);
    let mut depth: usize = 0;
    for c in Path::new(path.as_str()).components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            other => panic!("{s:?} has component {other:?}"),
        }
    }
    assert!(depth >= 1 || s.split('/').all(|c| c == "."), "{s:?} names the sandbox root");
    for c in path.components() {
        assert!(!c.is_empty() && c != ".." && c.len() <= MAX_COMPONENT_BYTES && !c.contains('\0'));
    }
});
