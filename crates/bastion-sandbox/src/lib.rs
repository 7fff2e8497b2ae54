//! Sandboxed command execution for the exec function: sandbox paths, the command allowlist and
//! argument policy, POSIX word splitting without expansion, file operations that never follow a
//! symlink, and running a command (or a pipeline, without a shell) under every isolation layer
//! the kernel offers.

pub mod commands;
pub mod fs;
pub mod layers;
pub mod path;
pub mod policy;
pub mod run;
mod sys;
mod syscalls;
pub mod toolset;
pub mod words;

pub use commands::{
    DEFAULT_COMMANDS, NEEDS_LANDLOCK, OptionForm, OptionValue, Role, known_commands, option_forms,
};
pub use fs::{Entry, FsError, SandboxDir, Usage, remove_tree};
pub use layers::{Layers, REQUIRED_LAYERS};
pub use path::{PathError, SandboxPath};
pub use policy::{AllowlistError, CommandPolicy, PolicyError, Word};
pub use run::pipeline::{PipelineSpec, Stage, StageStatus};
pub use run::{ChildLimits, RunError, RunOutput, RunSpec, Runner};
pub use toolset::{LAMBDA_TOOLS_DIR, Toolset, ToolsetError, built_tools_dir};
pub use words::{MAX_STAGES, SplitError, split, split_pipeline};
