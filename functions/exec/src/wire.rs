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
