//! Sandbox-relative paths: the one parser every client-named file goes through.
//!
//! A path is relative, has no `..`, no NUL, no empty component, components of at most 255
//! bytes and at most 1,024 bytes in all. Resolution never follows a symlink (see `fs`).

use std::fmt;

pub const MAX_PATH_BYTES: usize = 1024;
pub const MAX_COMPONENT_BYTES: usize = 255;

/// Why a path was refused; the message names the rule, never echoes the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path is empty")]
    Empty,
    #[error("path must be relative to the sandbox")]
    Absolute,
    #[error("path must not contain '..'")]
    ParentComponent,
    #[error("path must not contain NUL")]
    Nul,
    #[error("path must not contain empty components")]
    EmptyComponent,
    #[error("path component is longer than 255 bytes")]
    ComponentTooLong,
    #[error("path is longer than 1024 bytes")]
    TooLong,
}

/// A path that passed every rule; relative to the caller's sandbox directory.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SandboxPath(String);

impl SandboxPath {
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        Self::parse_bytes(raw.as_bytes()).map(|()| Self(raw.to_owned()))
    }

    /// The rules on raw bytes, so argv operands (which may not be UTF-8) obey them too.
    pub fn parse_bytes(raw: &[u8]) -> Result<(), PathError> {
        if raw.is_empty() {
            return Err(PathError::Empty);
        }
        if raw.contains(&0) {
            return Err(PathError::Nul);
        }
        if raw.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong);
        }
        if raw[0] == b'/' {
            return Err(PathError::Absolute);
        }
        for component in raw.split(|b| *b == b'/') {
            match component {
                b"" => return Err(PathError::EmptyComponent),
                b".." => return Err(PathError::ParentComponent),
                c if c.len() > MAX_COMPONENT_BYTES => return Err(PathError::ComponentTooLong),
                _ => {}
            }
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Components, for component-wise resolution.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl fmt::Debug for SandboxPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SandboxPath({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn traversal_in_every_spelling_is_refused() {
        let cases = [
            ("..", PathError::ParentComponent),
            ("../x", PathError::ParentComponent),
            ("a/../../x", PathError::ParentComponent),
            ("a/..", PathError::ParentComponent),
            ("./../x", PathError::ParentComponent),
            ("/etc/passwd", PathError::Absolute),
            ("//etc/passwd", PathError::Absolute),
            ("/", PathError::Absolute),
            ("a//b", PathError::EmptyComponent),
            ("a/", PathError::EmptyComponent),
            ("", PathError::Empty),
            ("a\0b", PathError::Nul),
        ];
        for (raw, want) in cases {
            assert_eq!(SandboxPath::parse(raw), Err(want), "{raw:?}");
        }
    }

    #[test]
    fn encoded_and_lookalike_dots_are_plain_names() {
        // No decoding happens after the edge: these are literal file names inside the sandbox.
        for raw in ["%2e%2e/x", "..%2f", "...", ".. ", "\u{2025}", "a/.b", "."] {
            assert_eq!(SandboxPath::parse(raw).unwrap().as_str(), raw);
        }
    }

    #[test]
    fn length_limits_are_exact() {
        let c255 = "a".repeat(255);
        assert!(SandboxPath::parse(&c255).is_ok());
        assert_eq!(
            SandboxPath::parse(&"a".repeat(256)),
            Err(PathError::ComponentTooLong)
        );
        let c200 = "c".repeat(200);
        let total = format!("{c200}/{c200}/{c200}/{c200}/{c200}/{}", "b".repeat(19));
        assert_eq!(total.len(), 1024);
        assert!(SandboxPath::parse(&total).is_ok());
        assert_eq!(
            SandboxPath::parse(&format!("{total}b")),
            Err(PathError::TooLong)
        );
    }

    proptest! {
        #[test]
        fn accepted_paths_never_climb_or_start_at_root(raw in "[a-z./]{0,40}") {
            if let Ok(p) = SandboxPath::parse(&raw) {
                prop_assert!(!p.as_str().starts_with('/'));
                prop_assert!(p.components().all(|c| c != ".." && !c.is_empty()));
            }
        }
    }
}
