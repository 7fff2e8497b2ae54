//! The sandbox file routes: put, get, delete and list, all under the path rules and the quota.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use bastion_core::Scope;
use bastion_http::{ApiError, Authenticated, ErrorKind};
use bastion_sandbox::{FsError, SandboxPath};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::json;

use crate::{ExecState, blocking};

pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Most files one listing returns.
const MAX_LISTED: usize = 1000;

fn sandbox_path(raw: &str) -> Result<SandboxPath, ApiError> {
    SandboxPath::parse(raw).map_err(|e| ApiError::invalid("invalid_path", e.to_string()))
}

pub(crate) fn fs_error(e: FsError) -> ApiError {
    let conflict = |code: &'static str, msg: &'static str| {
        ApiError::new(ErrorKind::Conflict, msg).with_code(code)
    };
    match e {
        FsError::NotFound => ApiError::new(ErrorKind::NotFound, "no such file"),
        FsError::IsADirectory => conflict("is_a_directory", "path names a directory"),
        FsError::NotADirectory => {
            conflict("not_a_directory", "a parent of the path is not a directory")
        }
        FsError::NotEmpty => conflict("directory_not_empty", "directory is not empty"),
        FsError::Symlink => ApiError::new(ErrorKind::Forbidden, "path crosses a symlink")
            .with_code("symlink_refused"),
        FsError::NotAFile => conflict(
            "not_a_file",
            "path names something other than a file or directory",
        ),
        FsError::TooLarge => conflict(
            "sandbox_quota_exceeded",
            "your sandbox is too large or too deep to measure; delete files",
        ),
        FsError::Io(_) => ApiError::internal(&e),
    }
}

#[utoipa::path(
    put, path = "/exec/files/{path}", tag = "exec", operation_id = "exec_put_file", security(("bearer_jwt" = []), ("api_key" = [])), params(("path" = String, Path, description = "A relative path inside the sandbox: 1 to 1024 bytes, no `..`, no NUL.")),
    request_body(content = Option<Vec<u8>>, content_type = "application/octet-stream", description = "The file's bytes, at most 1 MiB; without a body the file is empty."),
    responses((status = 200, description = "The file is replaced."), (status = 201, description = "The file is created."),
        (status = 400, description = "`invalid_path`."), (status = 403, description = "`insufficient_scope`, `symlink_refused`."),
        (status = 409, description = "`sandbox_file_limit`, `sandbox_quota_exceeded`, `is_a_directory`, `not_a_directory`, `not_a_file`."),
        (status = 413, description = "`payload_too_large`, `sandbox_quota_exceeded`."))
)]
pub async fn put_file(
    State(state): State<ExecState>,
    auth: Authenticated,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    auth.require_scope(Scope::Exec)?;
    let path = sandbox_path(&raw)?;
    if body.len() > MAX_FILE_BYTES {
        return Err(ApiError::new(
            ErrorKind::PayloadTooLarge,
            "file exceeds 1 MiB",
        ));
    }
    let inner = state.inner.clone();
    let user = auth.user_id.clone();
    let now = state.edge.clock.now();
    blocking(move || -> Result<StatusCode, ApiError> {
        let _write = inner
            .sandboxes
            .write_guard(&user)
            .map_err(|e| ApiError::internal(&e))?;
        let dir = inner
            .sandboxes
            .open(&user, now)
            .map_err(|e| ApiError::internal(&e))?;
        let existing = dir.size_of(&path).map_err(fs_error)?;
        let usage = dir.usage().map_err(fs_error)?;
        let bytes_after = usage.bytes - existing.unwrap_or(0).min(usage.bytes) + body.len() as u64;
        if bytes_after > inner.config.quota_bytes {
            return Err(ApiError::new(
                ErrorKind::PayloadTooLarge,
                "sandbox storage quota exceeded",
            )
            .with_code("sandbox_quota_exceeded"));
        }
        // New parent directories count as entries too.
        let new_entries = if existing.is_some() {
            0
        } else {
            path.components().count() as u64
        };
        if existing.is_none() && usage.entries + new_entries > inner.config.quota_files {
            return Err(
                ApiError::new(ErrorKind::Conflict, "sandbox file count quota exceeded")
                    .with_code("sandbox_file_limit"),
            );
        }
        dir.write(&path, &body).map_err(fs_error)?;
        Ok(if existing.is_some() {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        })
    })
    .await?
}

#[utoipa::path(
    get, path = "/exec/files/{path}", tag = "exec", operation_id = "exec_get_file", security(("bearer_jwt" = []), ("api_key" = [])), params(("path" = String, Path, description = "A relative path inside the sandbox: 1 to 1024 bytes, no `..`, no NUL.")),
    responses((status = 200, description = "The file's bytes.", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, description = "`invalid_path`."), (status = 403, description = "`insufficient_scope`, `symlink_refused`."),
        (status = 404, description = "`not_found`: no such file."),
        (status = 409, description = "`is_a_directory`, `not_a_directory`, `not_a_file`."))
)]
pub async fn get_file(
    State(state): State<ExecState>,
    auth: Authenticated,
    Path(raw): Path<String>,
) -> Result<Response, ApiError> {
    auth.require_scope(Scope::Read)?;
    let path = sandbox_path(&raw)?;
    let inner = state.inner.clone();
    let user = auth.user_id.clone();
    let now = state.edge.clock.now();
    let data = blocking(move || -> Result<Vec<u8>, ApiError> {
        let dir = inner
            .sandboxes
            .open(&user, now)
            .map_err(|e| ApiError::internal(&e))?;
        dir.read(&path, inner.config.quota_bytes).map_err(fs_error)
    })
    .await??;
    let mut res = data.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(res)
}

#[utoipa::path(
    delete, path = "/exec/files/{path}", tag = "exec", operation_id = "exec_delete_file", security(("bearer_jwt" = []), ("api_key" = [])), params(("path" = String, Path, description = "A relative path inside the sandbox: 1 to 1024 bytes, no `..`, no NUL.")),
    responses((status = 204, description = "The file is deleted."),
        (status = 400, description = "`invalid_path`."), (status = 403, description = "`insufficient_scope`, `symlink_refused`."),
        (status = 404, description = "`not_found`: no such file."),
        (status = 409, description = "`directory_not_empty`, `not_a_directory`, `not_a_file`."))
)]
pub async fn delete_file(
    State(state): State<ExecState>,
    auth: Authenticated,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require_scope(Scope::Exec)?;
    let path = sandbox_path(&raw)?;
    let inner = state.inner.clone();
    let user = auth.user_id.clone();
    let now = state.edge.clock.now();
    blocking(move || -> Result<StatusCode, ApiError> {
        let dir = inner
            .sandboxes
            .open(&user, now)
            .map_err(|e| ApiError::internal(&e))?;
        dir.delete(&path).map_err(fs_error)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await?
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// At most 1024 bytes.
    prefix: Option<String>,
}

#[utoipa::path(
    get, path = "/exec/files", tag = "exec", operation_id = "exec_list_files", security(("bearer_jwt" = []), ("api_key" = [])),
    params(ListQuery),
    responses((status = 200, description = "The caller's files.", body = crate::wire::FileList),
        (status = 400, description = "`invalid_path`: the prefix is too long or has a NUL."),
        (status = 403, description = "`insufficient_scope`: the API key lacks the `read` scope."))
)]
pub async fn list(
    State(state): State<ExecState>,
    auth: Authenticated,
    Query(q): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth.require_scope(Scope::Read)?;
    let prefix = q.prefix.unwrap_or_default();
    if prefix.len() > bastion_sandbox::path::MAX_PATH_BYTES || prefix.contains('\0') {
        return Err(ApiError::invalid(
            "invalid_path",
            "prefix must be at most 1024 bytes without NUL",
        ));
    }
    let inner = state.inner.clone();
    let user = auth.user_id.clone();
    let now = state.edge.clock.now();
    blocking(move || -> Result<Json<serde_json::Value>, ApiError> {
        let dir = inner
            .sandboxes
            .open(&user, now)
            .map_err(|e| ApiError::internal(&e))?;
        let (files, truncated) = dir.list(&prefix, MAX_LISTED).map_err(fs_error)?;
        let usage = dir.usage().map_err(fs_error)?;
        let files: Vec<_> = files
            .iter()
            .map(|f| json!({"path": f.path, "size": f.size}))
            .collect();
        Ok(Json(json!({
            "files": files,
            "truncated": truncated,
            "usage": {"bytes": usage.bytes, "entries": usage.entries},
            "quota": {"bytes": inner.config.quota_bytes, "entries": inner.config.quota_files},
        })))
    })
    .await?
}
