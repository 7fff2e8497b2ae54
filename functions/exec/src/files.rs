//! The sandbox file routes: put, get, delete and list, on the durable workspace store directly,
//! under the path rules and the quota. Changes take the user's exec lease, so quota checks
//! hold across instances and never interleave with a run's write-back.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use bastion_core::{Scope, UserId};
use bastion_http::{ApiError, Authenticated, ErrorKind};
use bastion_sandbox::{FsError, SandboxPath};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::json;

use crate::ExecState;
use crate::lease::Lease;
use crate::workspace::{Shape, Usage, WorkspaceError, shape_of};

pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Most files one listing returns.
const MAX_LISTED: usize = 1000;

fn sandbox_path(raw: &str) -> Result<SandboxPath, ApiError> {
    SandboxPath::parse(raw).map_err(|e| ApiError::invalid("invalid_path", e.to_string()))
}

fn conflict(code: &'static str, msg: &'static str) -> ApiError {
    ApiError::new(ErrorKind::Conflict, msg).with_code(code)
}

pub(crate) fn quota_exceeded(msg: &'static str, kind: ErrorKind) -> ApiError {
    ApiError::new(kind, msg).with_code("sandbox_quota_exceeded")
}

pub(crate) fn fs_error(e: FsError) -> ApiError {
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
        FsError::TooLarge => quota_exceeded(
            "your sandbox is too large or too deep to measure; delete files",
            ErrorKind::Conflict,
        ),
        FsError::Io(_) => ApiError::internal(&e),
    }
}

pub(crate) fn store_error(e: &WorkspaceError) -> ApiError {
    match e {
        WorkspaceError::PathTooLong => {
            ApiError::invalid("invalid_path", "path is too long for the workspace store")
        }
        WorkspaceError::Unavailable(_) => ApiError::unavailable(e),
    }
}

/// The refusal for `path` given its shape among the stored files, if any.
fn shape_refusal(shape: Shape, missing: ApiError) -> ApiError {
    match shape {
        Shape::Directory => fs_error(FsError::IsADirectory),
        Shape::UnderAFile => fs_error(FsError::NotADirectory),
        Shape::File | Shape::Absent => missing,
    }
}

#[utoipa::path(
    put, path = "/exec/files/{path}", tag = "exec", operation_id = "exec_put_file", security(("bearer_jwt" = []), ("api_key" = [])), params(("path" = String, Path, description = "A relative path inside the sandbox: 1 to 1024 bytes, no `..` or `.` component, no NUL.")),
    request_body(content = Option<Vec<u8>>, content_type = "application/octet-stream", description = "The file's bytes, at most 1 MiB; without a body the file is empty."),
    responses((status = 200, description = "The file is replaced."), (status = 201, description = "The file is created."),
        (status = 400, description = "`invalid_path`."), (status = 403, description = "`insufficient_scope`, `symlink_refused`."),
        (status = 409, description = "`workspace_busy`, `sandbox_file_limit`, `sandbox_quota_exceeded`, `is_a_directory`, `not_a_directory`, `not_a_file`."),
        (status = 413, description = "`payload_too_large`, `sandbox_quota_exceeded`."))
)]
pub async fn put_file(
    State(state): State<ExecState>,
    auth: Authenticated,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    auth.require_scope(Scope::Exec)?;
    let created = put_as(&state, &auth.user_id, &raw, body).await?;
    Ok(if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    })
}

/// Creates or replaces `user`'s file at `raw` under the path rules, the size cap, the lease
/// and the quota; true when the file is new.
pub(crate) async fn put_as(
    state: &ExecState,
    user: &UserId,
    raw: &str,
    body: Bytes,
) -> Result<bool, ApiError> {
    let path = sandbox_path(raw)?;
    if body.len() > MAX_FILE_BYTES {
        return Err(ApiError::new(
            ErrorKind::PayloadTooLarge,
            "file exceeds 1 MiB",
        ));
    }
    let lease = Lease::take_for_files(state, user).await?;
    let result = put_leased(state, user, &path, body).await;
    lease.release(state).await;
    result
}

/// The quota check and the write, under the user's lease.
async fn put_leased(
    state: &ExecState,
    user: &UserId,
    path: &SandboxPath,
    body: Bytes,
) -> Result<bool, ApiError> {
    let inner = &state.inner;
    let owner = inner.sandboxes.name_for(user);
    let files = inner
        .workspaces
        .list(&owner)
        .await
        .map_err(|e| store_error(&e))?;
    match shape_of(&files, path.as_str()) {
        Shape::Directory => return Err(fs_error(FsError::IsADirectory)),
        Shape::UnderAFile => return Err(fs_error(FsError::NotADirectory)),
        Shape::File | Shape::Absent => {}
    }
    let usage = Usage::of(&files);
    let existing = files
        .iter()
        .find(|f| f.path == path.as_str())
        .map(|f| f.size);
    let bytes_after = usage.bytes - existing.unwrap_or(0).min(usage.bytes) + body.len() as u64;
    if bytes_after > inner.config.quota_bytes {
        return Err(quota_exceeded(
            "sandbox storage quota exceeded",
            ErrorKind::PayloadTooLarge,
        ));
    }
    if existing.is_none() && usage.files + 1 > inner.config.quota_files {
        return Err(conflict(
            "sandbox_file_limit",
            "sandbox file count quota exceeded",
        ));
    }
    inner
        .workspaces
        .write(&owner, path, body.to_vec())
        .await
        .map_err(|e| store_error(&e))?;
    Ok(existing.is_none())
}

#[utoipa::path(
    get, path = "/exec/files/{path}", tag = "exec", operation_id = "exec_get_file", security(("bearer_jwt" = []), ("api_key" = [])), params(("path" = String, Path, description = "A relative path inside the sandbox: 1 to 1024 bytes, no `..` or `.` component, no NUL.")),
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
    let data = read_as(&state, &auth.user_id, &raw).await?;
    let mut res = data.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(res)
}

/// The bytes of `user`'s file at `raw`; a path naming a directory, or under a file, is refused
/// as such rather than as missing.
pub(crate) async fn read_as(
    state: &ExecState,
    user: &UserId,
    raw: &str,
) -> Result<Vec<u8>, ApiError> {
    let path = sandbox_path(raw)?;
    let inner = &state.inner;
    let owner = inner.sandboxes.name_for(user);
    let read = inner
        .workspaces
        .read(&owner, &path)
        .await
        .map_err(|e| store_error(&e))?;
    let Some((data, _)) = read else {
        let files = inner
            .workspaces
            .list(&owner)
            .await
            .map_err(|e| store_error(&e))?;
        return Err(shape_refusal(
            shape_of(&files, path.as_str()),
            fs_error(FsError::NotFound),
        ));
    };
    Ok(data)
}

#[utoipa::path(
    delete, path = "/exec/files/{path}", tag = "exec", operation_id = "exec_delete_file", security(("bearer_jwt" = []), ("api_key" = [])), params(("path" = String, Path, description = "A relative path inside the sandbox: 1 to 1024 bytes, no `..` or `.` component, no NUL.")),
    responses((status = 204, description = "The file is deleted."),
        (status = 400, description = "`invalid_path`."), (status = 403, description = "`insufficient_scope`, `symlink_refused`."),
        (status = 404, description = "`not_found`: no such file."),
        (status = 409, description = "`workspace_busy`, `is_a_directory`, `not_a_directory`, `not_a_file`."))
)]
pub async fn delete_file(
    State(state): State<ExecState>,
    auth: Authenticated,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require_scope(Scope::Exec)?;
    delete_as(&state, &auth.user_id, &raw).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes `user`'s file at `raw` under the lease.
pub(crate) async fn delete_as(state: &ExecState, user: &UserId, raw: &str) -> Result<(), ApiError> {
    let path = sandbox_path(raw)?;
    let lease = Lease::take_for_files(state, user).await?;
    let result = delete_leased(state, user, &path).await;
    lease.release(state).await;
    result
}

async fn delete_leased(
    state: &ExecState,
    user: &UserId,
    path: &SandboxPath,
) -> Result<(), ApiError> {
    let inner = &state.inner;
    let owner = inner.sandboxes.name_for(user);
    if inner
        .workspaces
        .delete(&owner, path)
        .await
        .map_err(|e| store_error(&e))?
    {
        return Ok(());
    }
    let files = inner
        .workspaces
        .list(&owner)
        .await
        .map_err(|e| store_error(&e))?;
    Err(match shape_of(&files, path.as_str()) {
        Shape::Directory => fs_error(FsError::NotEmpty),
        Shape::UnderAFile => fs_error(FsError::NotADirectory),
        Shape::File | Shape::Absent => fs_error(FsError::NotFound),
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// At most 1024 bytes; the components before its last `/` obey the path rules.
    prefix: Option<String>,
}

#[utoipa::path(
    get, path = "/exec/files", tag = "exec", operation_id = "exec_list_files", security(("bearer_jwt" = []), ("api_key" = [])),
    params(ListQuery),
    responses((status = 200, description = "The caller's files.", body = crate::wire::FileList),
        (status = 400, description = "`invalid_path`: the prefix breaks the path rules in the components it completes, is too long or has a NUL."),
        (status = 403, description = "`insufficient_scope`: the API key lacks the `read` scope."))
)]
pub async fn list(
    State(state): State<ExecState>,
    auth: Authenticated,
    Query(q): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth.require_scope(Scope::Read)?;
    list_as(&state, &auth.user_id, q.prefix).await.map(Json)
}

/// `user`'s files whose path starts with `prefix` (every file without one), at most 1000, with
/// the workspace's usage and quota: the route's JSON body.
pub(crate) async fn list_as(
    state: &ExecState,
    user: &UserId,
    prefix: Option<String>,
) -> Result<serde_json::Value, ApiError> {
    let prefix = prefix.unwrap_or_default();
    SandboxPath::check_prefix(&prefix)
        .map_err(|e| ApiError::invalid("invalid_path", e.to_string()))?;
    let inner = &state.inner;
    let owner = inner.sandboxes.name_for(user);
    let stored = inner
        .workspaces
        .list(&owner)
        .await
        .map_err(|e| store_error(&e))?;
    let usage = Usage::of(&stored);
    let matching: Vec<_> = stored
        .iter()
        .filter(|f| f.path.starts_with(&prefix))
        .collect();
    let files: Vec<_> = matching
        .iter()
        .take(MAX_LISTED)
        .map(|f| json!({"path": f.path, "size": f.size}))
        .collect();
    Ok(json!({
        "files": files,
        "truncated": matching.len() > MAX_LISTED,
        "usage": {"bytes": usage.bytes, "files": usage.files},
        "quota": {"bytes": inner.config.quota_bytes, "files": inner.config.quota_files},
    }))
}
