//! The shapes of the JSON the exec handlers build with `json!`, for the OpenAPI document (the
//! schemathesis run checks every response against them).

use utoipa::ToSchema;

/// The outcome of `POST /exec/run`.
#[derive(ToSchema)]
#[allow(dead_code)] // only its schema is used
pub struct RunResponse {
    /// The exit status, absent (null) when a signal ended the program.
    exit_code: Option<i32>,
    signal: Option<i32>,
    stdout: String,
    stderr: String,
    #[schema(inline)]
    stdout_encoding: OutputEncoding,
    #[schema(inline)]
    stderr_encoding: OutputEncoding,
    stdout_truncated: bool,
    stderr_truncated: bool,
    timed_out: bool,
    output_limit_exceeded: bool,
    #[schema(minimum = 0)]
    duration_ms: u64,
    /// Only for a pipeline of two or more stages: how each ended, in order (`exit_code` and
    /// `signal` above are the last stage's).
    #[schema(nullable = false)]
    stages: Option<Vec<StageStatus>>,
}

/// How one stage of a pipeline ended.
#[derive(ToSchema)]
#[allow(dead_code)] // only its schema is used
pub struct StageStatus {
    /// The stage's command name (its argv[0]).
    command: String,
    /// The exit status, absent (null) when a signal ended the stage.
    exit_code: Option<i32>,
    signal: Option<i32>,
}

/// `utf8` when the output is text, `base64` otherwise.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // only its schema is used
pub enum OutputEncoding {
    Utf8,
    Base64,
}

/// `GET /exec/files`: the caller's sandbox files, usage and quota.
#[derive(ToSchema)]
#[allow(dead_code)] // only its schema is used
pub struct FileList {
    files: Vec<FileEntry>,
    /// More than 1000 files matched; only the first 1000 are listed.
    truncated: bool,
    usage: Usage,
    quota: Usage,
}

#[derive(ToSchema)]
#[allow(dead_code)] // only its schema is used
pub struct FileEntry {
    path: String,
    #[schema(minimum = 0)]
    size: u64,
}

#[derive(ToSchema)]
#[allow(dead_code)] // only its schema is used
pub struct Usage {
    #[schema(minimum = 0)]
    bytes: u64,
    #[schema(minimum = 0)]
    files: u64,
}
