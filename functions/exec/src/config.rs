//! Exec configuration: where run directories live, the key that names them, the command allowlist,
//! time and output limits, quotas, and which isolation layers must be present.

use std::path::PathBuf;
use std::time::Duration;

use bastion_http::config::{bounded, decode_base64};
use bastion_http::{ConfigError, Env};
use bastion_sandbox::{
    CommandPolicy, DEFAULT_COMMANDS, LAMBDA_TOOLS_DIR, Toolset, built_tools_dir,
};
use secrecy::SecretBox;

/// Every name exec's own secret document (named by its `BASTION_SECRET_ID`) may hold: the key
/// that names workspaces and the public keys tokens are verified with. Nothing here can mint a
/// token, and any other name (a signing key, the pepper, a provider key: the main document)
/// stops start-up, so a sandbox escape finds no key worth having.
pub const SECRET_DOCUMENT_NAMES: [&str; 2] = ["EXEC_SANDBOX_KEY", "JWT_VERIFY_KEYS"];

/// Layers `EXEC_REQUIRE_LAYERS` may name.
pub const REQUIRABLE_LAYERS: &[&str] = &[
    "landlock",
    "seccomp",
    "no_new_privs",
    "rlimits",
    "openat2",
    "parent_undumpable",
    "child_subreaper",
];

pub struct ExecConfig {
    pub sandbox_root: PathBuf,
    /// Keys the hash from user id to sandbox directory name.
    pub sandbox_key: SecretBox<Vec<u8>>,
    pub commands: CommandPolicy,
    pub timeout: Duration,
    pub output_cap: usize,
    pub output_hard_cap: u64,
    pub quota_bytes: u64,
    pub quota_files: u64,
    pub require_layers: Vec<String>,
}

impl std::fmt::Debug for ExecConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecConfig")
            .field("sandbox_root", &self.sandbox_root)
            .field("sandbox_key", &"<redacted>")
            .field("commands", &self.commands.names())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Every variable with its default, for the README.
pub const VARIABLES: &[(&str, &str)] = &[
    ("SANDBOX_ROOT", "/tmp/sandbox"),
    ("EXEC_SANDBOX_KEY", "(required)"),
    ("EXEC_ALLOWED_COMMANDS", "the default list"),
    (
        "EXEC_TOOLS_DIR",
        "/opt/tools in Lambda, else target/toolset/host/tools",
    ),
    ("EXEC_TIMEOUT_MS", "10000"),
    ("EXEC_OUTPUT_CAP_BYTES", "65536"),
    ("EXEC_OUTPUT_HARD_CAP_BYTES", "4194304"),
    ("EXEC_SANDBOX_QUOTA_BYTES", "52428800"),
    ("EXEC_SANDBOX_QUOTA_FILES", "1000"),
    ("EXEC_REQUIRE_LAYERS", "(none)"),
    ("EXEC_RUNS_PER_MINUTE", "20"),
];

/// `EXEC_TOOLS_DIR`, else the layer's `/opt/tools` in Lambda (the Runtime API address is set
/// only there), else the toolset `scripts/toolset` built in this source tree.
fn tools_dir(env: &dyn Env) -> PathBuf {
    match env.non_empty("EXEC_TOOLS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None if env.non_empty("AWS_LAMBDA_RUNTIME_API").is_some() => {
            PathBuf::from(LAMBDA_TOOLS_DIR)
        }
        None => built_tools_dir(),
    }
}

impl ExecConfig {
    /// `default_root` is `/tmp/sandbox` in Lambda; bastion-local passes its data directory's.
    pub fn from_env(env: &dyn Env, default_root: PathBuf) -> Result<Self, ConfigError> {
        let sandbox_root = env
            .non_empty("SANDBOX_ROOT")
            .map(PathBuf::from)
            .unwrap_or(default_root);
        if !sandbox_root.is_absolute() {
            return Err(ConfigError::new("SANDBOX_ROOT", "must be an absolute path"));
        }
        let key = decode_base64(
            "EXEC_SANDBOX_KEY",
            "key",
            &env.required("EXEC_SANDBOX_KEY")?,
        )?;
        if key.len() < 32 {
            return Err(ConfigError::new(
                "EXEC_SANDBOX_KEY",
                "key must be at least 32 bytes",
            ));
        }
        let toolset = Toolset::open(&tools_dir(env))
            .map_err(|e| ConfigError::new("EXEC_TOOLS_DIR", e.to_string()))?;
        let list = env.non_empty("EXEC_ALLOWED_COMMANDS").unwrap_or_default();
        let mut names: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if names.is_empty() {
            names = DEFAULT_COMMANDS.to_vec();
        }
        let commands = CommandPolicy::resolve(&names, &toolset)
            .map_err(|e| ConfigError::new("EXEC_ALLOWED_COMMANDS", e.to_string()))?;
        let timeout_ms = bounded(env, "EXEC_TIMEOUT_MS", 10_000, 100..=10_000)?;
        let output_cap = bounded(env, "EXEC_OUTPUT_CAP_BYTES", 65_536, 1024..=1_048_576)?;
        let output_hard_cap = bounded(
            env,
            "EXEC_OUTPUT_HARD_CAP_BYTES",
            4 * 1024 * 1024,
            output_cap..=256 * 1024 * 1024,
        )?;
        let mut require_layers = Vec::new();
        for name in env
            .non_empty("EXEC_REQUIRE_LAYERS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if !REQUIRABLE_LAYERS.contains(&name) {
                return Err(ConfigError::new(
                    "EXEC_REQUIRE_LAYERS",
                    format!(
                        "unknown layer {name:?}; known: {}",
                        REQUIRABLE_LAYERS.join(",")
                    ),
                ));
            }
            require_layers.push(name.to_owned());
        }
        Ok(Self {
            sandbox_root,
            sandbox_key: SecretBox::new(Box::new(key)),
            commands,
            timeout: Duration::from_millis(timeout_ms),
            output_cap: usize::try_from(output_cap).unwrap_or(65_536),
            output_hard_cap,
            quota_bytes: bounded(
                env,
                "EXEC_SANDBOX_QUOTA_BYTES",
                50 * 1024 * 1024,
                1024..=10 * 1024 * 1024 * 1024,
            )?,
            quota_files: bounded(env, "EXEC_SANDBOX_QUOTA_FILES", 1000, 1..=1_000_000)?,
            require_layers,
        })
    }
}

#[cfg(test)]
mod tests {
    use bastion_http::config::map_env as env;

    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn err(pairs: &[(&str, &str)]) -> ConfigError {
        ExecConfig::from_env(&env(pairs), PathBuf::from("/tmp/sandbox")).unwrap_err()
    }

    #[test]
    fn the_sandbox_key_is_required_and_long_enough() {
        assert_eq!(
            err(&[]),
            ConfigError::new("EXEC_SANDBOX_KEY", "is required")
        );
        assert_eq!(
            err(&[("EXEC_SANDBOX_KEY", "AAEC")]),
            ConfigError::new("EXEC_SANDBOX_KEY", "key must be at least 32 bytes")
        );
    }

    #[test]
    fn defaults_follow_the_issue() {
        let c = ExecConfig::from_env(
            &env(&[("EXEC_SANDBOX_KEY", KEY)]),
            PathBuf::from("/tmp/sandbox"),
        )
        .unwrap();
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(
            (c.output_cap, c.quota_bytes, c.quota_files),
            (65_536, 50 * 1024 * 1024, 1000)
        );
        assert_eq!(c.commands.names(), DEFAULT_COMMANDS);
        assert!(!c.commands.names().contains(&"sleep"));
    }

    #[test]
    fn unknown_commands_and_layers_and_bad_numbers_stop_start_up() {
        assert_eq!(
            err(&[
                ("EXEC_SANDBOX_KEY", KEY),
                ("EXEC_ALLOWED_COMMANDS", "cat,bash")
            ])
            .var,
            "EXEC_ALLOWED_COMMANDS"
        );
        assert_eq!(
            err(&[
                ("EXEC_SANDBOX_KEY", KEY),
                ("EXEC_REQUIRE_LAYERS", "landlock,magic")
            ])
            .var,
            "EXEC_REQUIRE_LAYERS"
        );
        assert_eq!(
            err(&[("EXEC_SANDBOX_KEY", KEY), ("EXEC_TIMEOUT_MS", "60000")]).var,
            "EXEC_TIMEOUT_MS"
        );
        assert_eq!(
            err(&[("EXEC_SANDBOX_KEY", KEY), ("SANDBOX_ROOT", "rel/dir")]).var,
            "SANDBOX_ROOT"
        );
    }

    #[test]
    fn commands_come_from_the_toolset_and_a_missing_one_stops_start_up() {
        let tools = built_tools_dir();
        let c = ExecConfig::from_env(
            &env(&[
                ("EXEC_SANDBOX_KEY", KEY),
                ("EXEC_ALLOWED_COMMANDS", "cat,diff"),
                ("EXEC_TOOLS_DIR", tools.to_str().unwrap()),
            ]),
            PathBuf::from("/tmp/sandbox"),
        )
        .unwrap();
        let argv = |c: &str| vec![c.to_owned()];
        assert_eq!(c.commands.check(&argv("cat")).unwrap(), tools.join("cat"));
        assert_eq!(c.commands.check(&argv("diff")).unwrap(), tools.join("diff"));
        // In Lambda the default is the layer's directory; it is absent here, so start-up stops.
        let e = err(&[
            ("EXEC_SANDBOX_KEY", KEY),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
        ]);
        assert_eq!(e.var, "EXEC_TOOLS_DIR");
        assert!(e.to_string().contains("/opt/tools/commands"), "{e}");
        // perl is not a known command: no pinned perl is built (see commands.rs).
        let e = err(&[
            ("EXEC_SANDBOX_KEY", KEY),
            ("EXEC_ALLOWED_COMMANDS", "cat,perl"),
        ]);
        assert_eq!(e.var, "EXEC_ALLOWED_COMMANDS");
        let e = err(&[("EXEC_SANDBOX_KEY", KEY), ("EXEC_TOOLS_DIR", "tools")]);
        assert_eq!(e.var, "EXEC_TOOLS_DIR");
    }
}
