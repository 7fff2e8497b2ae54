//! Sandbox-relative paths: the one parser every client-named file goes through.
//!
//! A path is relative, has no `..` or `.` component, no NUL, no empty component, components of
//! at most 255 bytes and at most 1,024 bytes in all. Resolution never follows a symlink (see
//! `fs`).
//!
//! `.` is refused in file names because a name is also a stored key: `./x` would be a second
//! key for the file `x` (the filesystem resolves it, the object store does not), and `.` names
//! the sandbox directory itself. Command operands (`parse_bytes`) may hold `.` (`ls .`): the
//! kernel resolves it inside the run directory, and nothing stores an operand.

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
    #[error("path must not contain '.' components")]
    CurrentComponent,
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
    /// A file name from a client or a store: every rule, `.` components included.
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        Self::parse_bytes(raw.as_bytes())?;
        if raw.split('/').any(|c| c == ".") {
            return Err(PathError::CurrentComponent);
        }
        Ok(Self(raw.to_owned()))
    }

    /// The rules for a command operand, on raw bytes (argv may not be UTF-8): all of them but
    /// the one on `.` components, which a running program resolves inside its directory.
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

    /// A listing prefix: the components it completes (those before its last `/`) obey the file
    /// rules, and the partial one after it is the start of any name (`.` may start `.env`). A
    /// prefix no stored path can have is refused rather than answered with nothing.
    pub fn check_prefix(raw: &str) -> Result<(), PathError> {
        if raw.contains('\0') {
            return Err(PathError::Nul);
        }
        if raw.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong);
        }
        if raw.starts_with('/') {
            return Err(PathError::Absolute);
        }
        let partial = match raw.rsplit_once('/') {
            Some((complete, partial)) => {
                Self::parse(complete)?;
                partial
            }
            None => raw,
        };
        if partial.len() > MAX_COMPONENT_BYTES {
            return Err(PathError::ComponentTooLong);
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
            (".", PathError::CurrentComponent),
            ("./x", PathError::CurrentComponent),
            ("a/./b", PathError::CurrentComponent),
            ("a/.", PathError::CurrentComponent),
            ("./.", PathError::CurrentComponent),
        ];
        for (raw, want) in cases {
            assert_eq!(SandboxPath::parse(raw), Err(want), "{raw:?}");
        }
    }

    #[test]
    fn encoded_and_lookalike_dots_are_plain_names() {
        // No decoding happens after the edge: these are literal file names inside the sandbox.
        for raw in [
            "%2e%2e/x", "..%2f", "...", ".. ", "\u{2025}", "a/.b", "%2e/x", "a.b/c..d",
        ] {
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

    #[test]
    fn a_listing_prefix_obeys_the_rules_in_the_components_it_completes() {
        for ok in [
            "", "a", "a/", "a/b", ".", "..", ".e", "a/.", "a/..x", "data/in.",
        ] {
            assert_eq!(SandboxPath::check_prefix(ok), Ok(()), "{ok:?}");
        }
        let cases = [
            ("./", PathError::CurrentComponent),
            ("a/./b", PathError::CurrentComponent),
            ("../", PathError::ParentComponent),
            ("a/../", PathError::ParentComponent),
            ("/", PathError::Absolute),
            ("/etc", PathError::Absolute),
            ("a//", PathError::EmptyComponent),
            ("a\0", PathError::Nul),
        ];
        for (raw, want) in cases {
            assert_eq!(SandboxPath::check_prefix(raw), Err(want), "{raw:?}");
        }
        assert_eq!(
            SandboxPath::check_prefix(&"a".repeat(256)),
            Err(PathError::ComponentTooLong)
        );
        assert_eq!(
            SandboxPath::check_prefix(&"a/".repeat(513)),
            Err(PathError::TooLong)
        );
    }

    #[test]
    fn a_command_operand_may_name_the_run_directory_with_a_dot() {
        for raw in [".", "./x", "a/./b"] {
            assert_eq!(SandboxPath::parse_bytes(raw.as_bytes()), Ok(()), "{raw:?}");
        }
        assert_eq!(
            SandboxPath::parse_bytes(b"./../x"),
            Err(PathError::ParentComponent)
        );
    }

    proptest! {
        #[test]
        fn accepted_paths_never_climb_or_start_at_root(raw in "[a-z./]{0,40}") {
            if let Ok(p) = SandboxPath::parse(&raw) {
                prop_assert!(!p.as_str().starts_with('/'));
                prop_assert!(p.components().all(|c| c != ".." && c != "." && !c.is_empty()));
            }
        }

        /// One file has one name: an accepted path is its own lexical normal form, so no two
        /// accepted spellings reach the same file (and the same stored key).
        #[test]
        fn an_accepted_path_is_already_in_normal_form(raw in "[a./]{0,24}") {
            if let Ok(p) = SandboxPath::parse(&raw) {
                let normal: Vec<_> = std::path::Path::new(p.as_str())
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                prop_assert_eq!(normal.join("/"), p.as_str());
            }
        }

        #[test]
        fn the_file_and_operand_rules_differ_only_on_dot_components(raw in "[a./]{0,24}") {
            let file = SandboxPath::parse(&raw).map(|_| ());
            let operand = SandboxPath::parse_bytes(raw.as_bytes());
            match file {
                Err(PathError::CurrentComponent) => prop_assert_eq!(operand, Ok(())),
                other => prop_assert_eq!(other, operand),
            }
        }
    }
}
