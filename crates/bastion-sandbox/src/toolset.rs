//! Where the programs exec runs come from: the pinned toolset `scripts/toolset` builds (uutils
//! coreutils and diffutils as multicall binaries), never the host's `/usr/bin`. The toolset
//! directory holds the binaries, one link per command named after it (uutils coreutils picks
//! its utility from the executed path's name, not argv[0]), and a `commands` file listing each
//! command with the binary that provides it. The same sources are built for the host (local
//! runs and tests) and for arm64 (the exec function's layer), so the policy's option table and
//! its differential test describe exactly the programs production runs.

use std::path::{Path, PathBuf};

/// Where the exec function's layer puts the toolset in Lambda (layer content is under `/opt`).
pub const LAMBDA_TOOLS_DIR: &str = "/opt/tools";

/// The file in a toolset directory that maps commands to binaries.
pub const MANIFEST: &str = "commands";

/// The manifest is a few hundred bytes; anything much larger is not one.
const MANIFEST_LIMIT: u64 = 64 * 1024;

/// The host toolset of this source tree (`scripts/toolset` builds it there): the default for
/// local runs and tests.
pub fn built_tools_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/toolset/host/tools")
}

/// A problem with the toolset directory itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolsetError {
    #[error("the tools directory {0:?} must be an absolute path")]
    Relative(PathBuf),
    #[error("cannot read {path:?} ({reason}); build the toolset with scripts/toolset")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path:?} line {line}: expected `command binary`")]
    Malformed { path: PathBuf, line: usize },
}

/// The commands a toolset directory provides, each with the binary the manifest names.
#[derive(Debug, Clone)]
pub struct Toolset {
    dir: PathBuf,
    programs: Vec<(String, PathBuf)>,
}

impl Toolset {
    /// Reads `dir`'s manifest. A binary named there but absent is not an error here: resolving
    /// a command that needs it is (see [`Self::program`]).
    pub fn open(dir: &Path) -> Result<Self, ToolsetError> {
        if !dir.is_absolute() {
            return Err(ToolsetError::Relative(dir.to_path_buf()));
        }
        let path = dir.join(MANIFEST);
        let unreadable = |reason: String| ToolsetError::Unreadable {
            path: path.clone(),
            reason,
        };
        let size = std::fs::metadata(&path)
            .map_err(|e| unreadable(e.to_string()))?
            .len();
        if size > MANIFEST_LIMIT {
            return Err(unreadable(format!("{size} bytes is not a manifest")));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| unreadable(e.to_string()))?;
        let mut programs = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let malformed = || ToolsetError::Malformed {
                path: path.clone(),
                line: n + 1,
            };
            let mut fields = line.split_whitespace();
            let (Some(command), Some(binary), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(malformed());
            };
            // A bare file name: the manifest can only name binaries inside the directory.
            if !binary
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(malformed());
            }
            programs.push((command.to_owned(), dir.join(binary)));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            programs,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path to execute for `command`: its link in the directory, if the manifest lists the
    /// command and both the link and the binary it names are files.
    pub fn program(&self, command: &str) -> Option<PathBuf> {
        let (_, binary) = self.programs.iter().find(|(c, _)| c == command)?;
        let link = self.dir.join(command);
        (binary.is_file() && link.is_file()).then_some(link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(manifest: &str, binaries: &[&str]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "bastion-toolset-{}-{}",
            std::process::id(),
            manifest.len()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(MANIFEST), manifest).unwrap();
        for b in binaries {
            std::fs::write(dir.join(b), b"").unwrap();
        }
        dir
    }

    #[test]
    fn the_manifest_maps_each_command_to_a_binary_that_exists() {
        let dir = dir_with(
            "# pinned\ncat coreutils\nls coreutils\ndiff diffutils\n\n",
            &["coreutils"],
        );
        std::os::unix::fs::symlink("coreutils", dir.join("cat")).unwrap();
        std::os::unix::fs::symlink("diffutils", dir.join("diff")).unwrap();
        let t = Toolset::open(&dir).unwrap();
        assert_eq!(t.program("cat"), Some(dir.join("cat")));
        // Listed, but its link is missing.
        assert_eq!(t.program("ls"), None);
        // Listed and linked, but the binary is absent.
        assert_eq!(t.program("diff"), None);
        assert_eq!(t.program("grep"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_manifest_naming_a_path_or_a_missing_directory_is_refused() {
        let dir = dir_with("cat ../../usr/bin/cat\n", &[]);
        assert_eq!(
            Toolset::open(&dir).unwrap_err(),
            ToolsetError::Malformed {
                path: dir.join(MANIFEST),
                line: 1
            }
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            Toolset::open(Path::new("rel/tools")).unwrap_err(),
            ToolsetError::Relative(PathBuf::from("rel/tools"))
        );
        assert!(matches!(
            Toolset::open(Path::new("/nonexistent-tools")).unwrap_err(),
            ToolsetError::Unreadable { .. }
        ));
    }
}
