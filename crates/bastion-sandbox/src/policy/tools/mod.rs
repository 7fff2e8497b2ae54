//! Argument readers of the toolset's programs whose arguments are more than getopt options: a
//! search expression, an editing script, a program. Each refuses what would run another
//! program, reach the network or touch files outside the run directory, and hands every file
//! name it finds back to the policy's path rules.

pub(crate) mod awk;
pub(crate) mod find;
pub(crate) mod grep;
pub(crate) mod jq;
pub(crate) mod python;
pub(crate) mod sed;
pub(crate) mod xargs;
