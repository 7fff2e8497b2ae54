//! Fuzzes the sandbox path validator: an accepted file name never leaves the sandbox directory
//! and is its own lexical normal form (no `.` or `..` component, so no second spelling of one
//! file or stored key), an accepted command operand never leaves it either, and the byte
//! (operand) and string (file name) parsers differ only on `.` components.
#![no_main]

use std::path::{Component, Path};

use bastion_sandbox::path::{MAX_COMPONENT_BYTES, MAX_PATH_BYTES};
use bastion_sandbox::{PathError, SandboxPath};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let operand = SandboxPath::parse_bytes(data);
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let has_dot = s.split('/').any(|c| c == ".");
    let parsed = SandboxPath::parse(s);
    match parsed.as_ref().map(|_| ()).map_err(|e| *e) {
        Err(PathError::CurrentComponent) => assert!(operand.is_ok() && has_dot, "{s:?}"),
        file => assert_eq!(file, operand, "{s:?}"),
    }
    if operand.is_ok() {
        let mut depth: usize = 0;
        for c in Path::new(s).components() {
            match c {
                Component::Normal(_) => depth += 1,
                Component::CurDir => {}
                other => panic!("{s:?} has component {other:?}"),
            }
        }
        assert!(
            depth >= 1 || s.split('/').all(|c| c == "."),
            "{s:?} names the sandbox root"
        );
    }
    let Ok(path) = parsed else {
        return;
    };
    assert!(s.len() <= MAX_PATH_BYTES);
    let normal: Vec<_> = Path::new(path.as_str())
        .components()
        .map(|c| match c {
            Component::Normal(n) => n.to_string_lossy().into_owned(),
            other => panic!("{s:?} has component {other:?}"),
        })
        .collect();
    assert_eq!(
        normal.join("/"),
        path.as_str(),
        "{s:?} is not in normal form"
    );
    for c in path.components() {
        assert!(
            !c.is_empty()
                && c != ".."
                && c != "."
                && c.len() <= MAX_COMPONENT_BYTES
                && !c.contains('\0')
        );
    }
});
