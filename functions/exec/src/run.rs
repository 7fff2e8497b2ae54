//! `POST /exec/run`: parse and bound the request, check it against the command policy, run it
//! in a fresh directory holding the caller's workspace (one run at a time per user across
//! instances, under the exec lease), write back what changed, audit it, and report.
//!
//! Output is returned as UTF-8 text when it is valid UTF-8 (a multi-byte character cut by the
//! cap is dropped), otherwise as standard base64 with `"stdout_encoding": "base64"`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use base64::Engine;
use bastion_core::audit::Outcome;
use bastion_core::{Scope, UserId};
use bastion_http::{ApiError, Authenticated, ErrorKind, JsonBody, Limit, Limits, RequestMeta};
use bastion_sandbox::{MAX_STAGES, PipelineSpec, PolicyError, RunOutput, Stage, split_pipeline};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::files::store_error;
use crate::lease::{Lease, run_lease_secs};
use crate::workspace::Usage;
use crate::{ExecState, Inner, audit, blocking, materialise};

pub const MAX_ARGS: usize = 64;
pub const MAX_ARG_BYTES: usize = 4096;
pub const MAX_STDIN_BYTES: usize = 64 * 1024;
/// A command line can be no longer than the argv it may split into.
pub const MAX_COMMAND_BYTES: usize = MAX_ARGS * MAX_ARG_BYTES;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// The program and its arguments (give exactly one of `argv`, `command`, `pipeline`): 1 to 64 items of at most 4096 bytes, no NUL.
    #[schema(min_items = 1, max_items = 64)]
    argv: Option<Vec<String>>,
    /// A command line split like a shell would, without any expansion; an unquoted `|` separates the stages of a pipeline (at most 8, none empty).
    #[schema(max_length = 262144)]
    command: Option<String>,
    /// A pipeline as argvs, each bounded like `argv`: 1 to 8 stages, at most 262144 bytes of arguments in all.
    #[schema(min_items = 1, max_items = 8)]
    pipeline: Option<Vec<Vec<String>>>,
    /// At most 65536 bytes.
    stdin: Option<String>,
    /// 1 to the configured maximum (EXEC_TIMEOUT_MS, 10000 by default).
    #[schema(minimum = 1)]
    timeout_ms: Option<u64>,
}

impl RunRequest {
    /// A command line with every other field at its default (no stdin, the configured maximum
    /// timeout): the agent's `run_command`.
    pub(crate) fn command_line(command: String) -> Self {
        Self {
            argv: None,
            command: Some(command),
            pipeline: None,
            stdin: None,
            timeout_ms: None,
        }
    }
}

/// A run request that passed every bound.
struct Parsed {
    /// One argv per stage; a single command is one stage.
    stages: Vec<Vec<String>>,
    stdin: Vec<u8>,
    timeout: Duration,
}

fn invalid(code: &'static str, message: impl Into<std::borrow::Cow<'static, str>>) -> ApiError {
    ApiError::invalid(code, message)
}

fn parse(req: RunRequest, max_timeout: Duration) -> Result<Parsed, ApiError> {
    let stages = match (req.argv, req.command, req.pipeline) {
        (None, None, None) => {
            return Err(invalid(
                "invalid_request",
                "argv, command or pipeline is required",
            ));
        }
        (Some(argv), None, None) => vec![argv],
        (None, Some(command), None) => {
            if command.len() > MAX_COMMAND_BYTES {
                return Err(invalid(
                    "invalid_argv",
                    "command is longer than 262144 bytes",
                ));
            }
            split_pipeline(&command).map_err(|e| invalid("invalid_command", e.to_string()))?
        }
        (None, None, Some(pipeline)) => {
            if pipeline.is_empty() || pipeline.len() > MAX_STAGES {
                return Err(invalid("invalid_argv", "pipeline must have 1 to 8 stages"));
            }
            if pipeline.iter().flatten().map(String::len).sum::<usize>() > MAX_COMMAND_BYTES {
                return Err(invalid(
                    "invalid_argv",
                    "pipeline arguments are longer than 262144 bytes in all",
                ));
            }
            pipeline
        }
        (Some(_), Some(_), None) => {
            return Err(invalid("invalid_request", "give argv or command, not both"));
        }
        _ => {
            return Err(invalid(
                "invalid_request",
                "give exactly one of argv, command and pipeline",
            ));
        }
    };
    let piped = stages.len() > 1;
    for (i, argv) in stages.iter().enumerate() {
        check_argv(argv).map_err(|m| invalid("invalid_argv", stage_message(piped, i, m)))?;
    }
    let stdin = req.stdin.unwrap_or_default().into_bytes();
    if stdin.len() > MAX_STDIN_BYTES {
        return Err(invalid(
            "invalid_stdin",
            "stdin must be at most 65536 bytes",
        ));
    }
    let max_ms = u64::try_from(max_timeout.as_millis()).unwrap_or(10_000);
    let timeout_ms = req.timeout_ms.unwrap_or(max_ms);
    if !(1..=max_ms).contains(&timeout_ms) {
        return Err(invalid(
            "invalid_timeout",
            format!("timeout_ms must be between 1 and {max_ms}"),
        ));
    }
    Ok(Parsed {
        stages,
        stdin,
        timeout: Duration::from_millis(timeout_ms),
    })
}

/// The bounds every argv (each stage's) must keep.
fn check_argv(argv: &[String]) -> Result<(), &'static str> {
    if argv.is_empty() || argv.len() > MAX_ARGS {
        return Err("argv must have 1 to 64 items");
    }
    if argv.iter().any(|a| a.len() > MAX_ARG_BYTES) {
        return Err("each argument must be at most 4096 bytes");
    }
    if argv.iter().any(|a| a.contains('\0')) {
        return Err("arguments must not contain NUL");
    }
    Ok(())
}

/// `message` about stage `index` (from 0), named "stage N: " in a pipeline only, so a single
/// command's messages stay as they were.
fn stage_message(piped: bool, index: usize, message: impl std::fmt::Display) -> String {
    if piped {
        format!("stage {}: {message}", index + 1)
    } else {
        message.to_string()
    }
}

fn policy_error(e: &PolicyError, piped: bool, index: usize) -> ApiError {
    let message = stage_message(piped, index, e);
    match e {
        PolicyError::Path { .. } => invalid("invalid_path", message),
        _ => invalid("command_not_allowed", message),
    }
}

#[utoipa::path(
    post, path = "/exec/run", tag = "exec", operation_id = "exec_run", security(("bearer_jwt" = []), ("api_key" = [])),
    request_body = RunRequest,
    responses((status = 200, description = "The program ran (whatever its exit status).", body = crate::wire::RunResponse),
        (status = 400, description = "`invalid_request`, `invalid_argv`, `invalid_command`, `invalid_stdin`, `invalid_timeout`, `invalid_path`, `command_not_allowed`."),
        (status = 403, description = "`insufficient_scope`: the API key lacks the `exec` scope."),
        (status = 409, description = "`run_in_progress`, `sandbox_quota_exceeded`."))
)]
pub async fn run(
    State(state): State<ExecState>,
    meta: RequestMeta,
    limits: Limits,
    auth: Authenticated,
    JsonBody(req): JsonBody<RunRequest>,
) -> Result<Json<Value>, ApiError> {
    auth.require_scope(Scope::Exec)?;
    run_as(&state, &limits, &meta, &auth.user_id, req)
        .await
        .map(Json)
}

/// A run for `user` once the caller is known to be allowed one (the route's scope check, or a
/// direct invoke from the chat function): the user's run rate limit, the bounds, the policy,
/// the lease, the run in the workspace and its audit. Answers the route's JSON body.
pub(crate) async fn run_as(
    state: &ExecState,
    limits: &Limits,
    meta: &RequestMeta,
    user: &UserId,
    req: RunRequest,
) -> Result<Value, ApiError> {
    let inner = state.inner.clone();
    limits.enforce(Limit::ExecRun, user.as_str()).await?;
    let parsed = parse(req, inner.config.timeout)?;
    let piped = parsed.stages.len() > 1;
    let names: Vec<String> = parsed.stages.iter().map(|a| a[0].clone()).collect();
    let command = names.join("|");
    let arg_count: usize = parsed.stages.iter().map(|a| a.len() - 1).sum();
    // Every stage is checked before anything runs: one refused stage refuses the whole run.
    let mut programs = Vec::with_capacity(parsed.stages.len());
    for (i, argv) in parsed.stages.iter().enumerate() {
        match inner.config.commands.check(argv) {
            Ok(p) => programs.push(p.to_path_buf()),
            Err(e) => {
                let stage = if piped {
                    format!(" stage={}", i + 1)
                } else {
                    String::new()
                };
                let detail = format!(
                    "refused=command_not_allowed command={} args={}{stage}",
                    audit::safe_name(&argv[0]),
                    argv.len() - 1
                );
                audit::record(state, meta, Outcome::Failure, user, detail).await?;
                return Err(policy_error(&e, piped, i));
            }
        }
    }
    let Some(lease) = Lease::try_take(state, user, run_lease_secs(inner.config.timeout)).await?
    else {
        return Err(
            ApiError::new(ErrorKind::Conflict, "another run of yours is in progress")
                .with_code("run_in_progress"),
        );
    };
    let owner = inner.sandboxes.name_for(user);
    // `rm` only frees space, so it runs over the quota too: otherwise a workspace over its
    // quota (after the quota was lowered) could not be cleaned up in one command.
    let frees_space = names.iter().all(|n| n == "rm");
    let job = Job {
        programs,
        parsed,
        frees_space,
    };
    let result = run_in_workspace(&inner, &owner, job).await;
    lease.release(state).await;
    let (outcome, saved) = result?;
    let detail = format!(
        "command={command} args={arg_count} exit={} signal={} timed_out={} output_limit={} duration_ms={}",
        outcome
            .exit_code
            .map_or("none".to_owned(), |c| c.to_string()),
        outcome.signal.map_or("none".to_owned(), |s| s.to_string()),
        outcome.timed_out,
        outcome.output_limit_exceeded,
        outcome.duration.as_millis(),
    );
    let detail = if piped {
        format!("{detail} stages={}", names.len())
    } else {
        detail
    };
    audit::record(state, meta, Outcome::Success, user, detail).await?;
    let mut body = render(&outcome);
    if piped {
        body["stages"] = stage_statuses(&names, &outcome);
    }
    body["files_saved"] = Value::Bool(saved);
    Ok(body)
}

/// A checked command ready to run.
struct Job {
    /// One per stage, in order.
    programs: Vec<PathBuf>,
    parsed: Parsed,
    frees_space: bool,
}

/// Downloads the caller's workspace (only what the kept copy lacks), runs in a fresh directory
/// removed before returning, and writes back what changed; returns whether it was saved.
async fn run_in_workspace(
    inner: &Arc<Inner>,
    owner: &str,
    job: Job,
) -> Result<(RunOutput, bool), ApiError> {
    let listing = inner
        .workspaces
        .list(owner)
        .await
        .map_err(|e| store_error(&e))?;
    let before = Usage::of(&listing);
    if !job.frees_space
        && (before.bytes > inner.config.quota_bytes || before.files > inner.config.quota_files)
    {
        return Err(materialise::over_quota());
    }
    let cached = inner.sandboxes.take_cached(owner);
    let snapshot = materialise::download(inner, owner, &listing, cached).await?;
    let worker = inner.clone();
    let (outcome, after, snapshot) = blocking(move || -> Result<_, ApiError> {
        let run_dir = worker
            .sandboxes
            .fresh_run_dir()
            .map_err(|e| ApiError::internal(&e))?;
        materialise::lay_out(run_dir.dir(), &snapshot)?;
        let stages: Vec<Stage<'_>> = job
            .programs
            .iter()
            .zip(&job.parsed.stages)
            .map(|(program, argv)| Stage { program, argv })
            .collect();
        let outcome = worker
            .runner
            .run_pipeline(&PipelineSpec {
                stages: &stages,
                stdin: &job.parsed.stdin,
                sandbox: run_dir.dir().path(),
                timeout: job.parsed.timeout,
                output_cap: worker.config.output_cap,
                output_hard_cap: worker.config.output_hard_cap,
            })
            .map_err(|e| ApiError::internal(&e))?;
        let after = materialise::collect(run_dir.dir(), before, &worker)?;
        Ok((outcome, after, snapshot))
    })
    .await??;
    let Some(after) = after else {
        inner.sandboxes.keep(owner, snapshot);
        return Ok((outcome, false));
    };
    let (kept, _) = materialise::write_back(inner, owner, snapshot, after).await?;
    inner.sandboxes.keep(owner, kept);
    Ok((outcome, true))
}

/// Text if the bytes are UTF-8 (allowing a character cut at a truncation), else base64.
fn encode(bytes: &[u8], truncated: bool) -> (String, &'static str) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_owned(), "utf8"),
        Err(e) if truncated && e.error_len().is_none() => (
            String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned(),
            "utf8",
        ),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(bytes),
            "base64",
        ),
    }
}

fn render(o: &RunOutput) -> Value {
    let (stdout, stdout_encoding) = encode(&o.stdout, o.stdout_truncated);
    let (stderr, stderr_encoding) = encode(&o.stderr, o.stderr_truncated);
    json!({
        "exit_code": o.exit_code,
        "signal": o.signal,
        "stdout": stdout,
        "stderr": stderr,
        "stdout_encoding": stdout_encoding,
        "stderr_encoding": stderr_encoding,
        "stdout_truncated": o.stdout_truncated,
        "stderr_truncated": o.stderr_truncated,
        "timed_out": o.timed_out,
        "output_limit_exceeded": o.output_limit_exceeded,
        "duration_ms": u64::try_from(o.duration.as_millis()).unwrap_or(u64::MAX),
    })
}

/// How each stage of a pipeline ended, by name: the response's `stages`.
fn stage_statuses(names: &[String], o: &RunOutput) -> Value {
    names
        .iter()
        .zip(&o.stages)
        .map(|(name, s)| json!({"command": name, "exit_code": s.exit_code, "signal": s.signal}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(body: Value) -> Result<Vec<Vec<String>>, (String, String)> {
        let req: RunRequest = serde_json::from_value(body).unwrap();
        parse(req, Duration::from_secs(10))
            .map(|p| p.stages)
            .map_err(|e| (e.code().to_owned(), e.message().to_owned()))
    }

    fn err(code: &str, message: &str) -> Result<Vec<Vec<String>>, (String, String)> {
        Err((code.to_owned(), message.to_owned()))
    }

    #[test]
    fn a_pipeline_is_parsed_and_bounded_stage_by_stage() {
        assert_eq!(
            parsed(json!({"command": "cat f|sort -r"})),
            Ok(vec![
                vec!["cat".to_owned(), "f".to_owned()],
                vec!["sort".to_owned(), "-r".to_owned()]
            ])
        );
        assert_eq!(
            parsed(json!({"pipeline": [["cat", "f"], []]})),
            err("invalid_argv", "stage 2: argv must have 1 to 64 items")
        );
        assert_eq!(
            parsed(json!({"pipeline": vec![vec!["cat"]; 9]})),
            err("invalid_argv", "pipeline must have 1 to 8 stages")
        );
        assert_eq!(
            parsed(json!({"command": &["cat"; 9].join("|")})),
            err("invalid_command", "a pipeline has at most 8 stages")
        );
        assert_eq!(
            parsed(json!({"argv": ["cat"], "pipeline": [["cat"]]})),
            err(
                "invalid_request",
                "give exactly one of argv, command and pipeline"
            )
        );
        assert_eq!(
            parsed(json!({"argv": []})),
            err("invalid_argv", "argv must have 1 to 64 items")
        );
    }

    #[test]
    fn output_is_text_when_utf8_and_base64_otherwise() {
        assert_eq!(encode(b"hi\n", false), ("hi\n".to_owned(), "utf8"));
        assert_eq!(encode(&[0xff, 0xfe], false), ("//4=".to_owned(), "base64"));
        // "é" is two bytes; a cap that cuts it leaves valid text behind.
        assert_eq!(encode(&[b'a', 0xc3], true), ("a".to_owned(), "utf8"));
        assert_eq!(encode(&[b'a', 0xc3], false), ("YcM=".to_owned(), "base64"));
    }
}
