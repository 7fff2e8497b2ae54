//! The agent's tools, run for the chat function: each [`ToolCall`] is the exec route it names,
//! past that route's extractors (`run_command` is `POST /exec/run` with `command`,
//! `read_file`/`write_file` are GET/PUT `/exec/files/{path}`, `list_files` is
//! `GET /exec/files`), for the invocation's user, under the same rate limit, policy, lease,
//! workspace, quotas, output caps and audit.
//!
//! Whose workspace is the invocation's `user_id` and nothing else: the arguments are the strict
//! types of `bastion_core::tools`, none of which can name a user, a workspace or a limit. That
//! id is trusted because only a direct invoke can deliver the event (see [`ToolInvocations`]).
//!
//! Every refusal is a result for the model, with the route's code and client-safe message; a
//! failure inside exec is `unavailable` with a generic message, its chain logged with the
//! invocation's request id.

use std::time::Instant;

use base64::Engine;
use bastion_core::RequestId;
use bastion_core::tools::{ToolCall, ToolError, ToolInvocation, ToolName, ToolOutcome};
use bastion_http::side_events::{SideEvents, SideFuture};
use bastion_http::{ApiError, ClientIp, ErrorKind, Limits, RateLimitSlot, RequestMeta, UserAgent};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::ExecState;
use crate::files::{list_as, put_as, read_as};
use crate::run::{RunRequest, run_as};

/// The User-Agent an invocation's audit events carry: no client reached exec over the network.
pub const AGENT_USER_AGENT: &str = "bastion-chat-agent";
/// What the model is told when exec itself failed; the cause is only logged.
const UNAVAILABLE: &str = "the workspace is temporarily unavailable; try again later";
/// What a malformed invocation is answered; the reason is only logged.
const INVALID_INVOCATION: &str = "the tool invocation is not valid";

impl ExecState {
    /// Runs one tool call in its user's workspace. Never fails: a refusal or a failure is an
    /// error outcome (see the module's documentation).
    ///
    /// The work runs on a task of its own, so a caller that stops waiting (the agent's time
    /// budget) leaves it to finish and release the user's lease rather than dropping it midway
    /// with the lease still held until its expiry.
    pub async fn run_tool(&self, invocation: &ToolInvocation) -> ToolOutcome {
        let started = Instant::now();
        let tool = invocation.call.name();
        let (state, owned) = (self.clone(), invocation.clone());
        let result = match tokio::spawn(async move { state.dispatch(&owned).await }).await {
            Ok(result) => result,
            Err(e) => Err(ApiError::internal(&e)),
        };
        let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let request_id = &invocation.request_id;
        match result {
            Ok(output) => {
                tracing::info!(%request_id, %tool, latency_us, "tool invocation served");
                ToolOutcome::Ok(output)
            }
            Err(e) => ToolOutcome::Err(tool_error(&e, request_id, tool, latency_us)),
        }
    }

    async fn dispatch(&self, invocation: &ToolInvocation) -> Result<Value, ApiError> {
        let user = &invocation.user_id;
        match &invocation.call {
            ToolCall::RunCommand(args) => {
                let meta = invocation_meta(&invocation.request_id);
                // A counting slot of its own: there are no response headers to report it in.
                let limits = Limits::new(self.edge.limiter.clone(), RateLimitSlot::default());
                let req = RunRequest::command_line(args.command.clone());
                run_as(self, &limits, &meta, user, req).await
            }
            ToolCall::ReadFile(args) => {
                let data = read_as(self, user, &args.path).await?;
                Ok(file_content(&args.path, &data))
            }
            ToolCall::WriteFile(args) => {
                let data = Bytes::from(args.content.clone().into_bytes());
                let size = data.len();
                let created = put_as(self, user, &args.path, data).await?;
                Ok(json!({"path": args.path, "size": size, "created": created}))
            }
            ToolCall::ListFiles(args) => list_as(self, user, args.prefix.clone()).await,
        }
    }
}

/// The request facts an invocation's audit events record: its own request id, no client IP
/// (the caller is the chat function, not a network client).
fn invocation_meta(request_id: &RequestId) -> RequestMeta {
    RequestMeta {
        ip: ClientIp(String::new()),
        user_agent: UserAgent(AGENT_USER_AGENT.to_owned()),
        request_id: request_id.clone(),
    }
}

/// A file's bytes for the model: text when they are UTF-8, else standard base64.
fn file_content(path: &str, data: &[u8]) -> Value {
    let (content, encoding) = match std::str::from_utf8(data) {
        Ok(text) => (text.to_owned(), "utf8"),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(data),
            "base64",
        ),
    };
    json!({"path": path, "size": data.len(), "encoding": encoding, "content": content})
}

/// The route's refusal as a result: its code and message; a failure inside exec (a store or
/// the sandbox) becomes `unavailable` with a generic message, and its chain is logged.
fn tool_error(e: &ApiError, request_id: &RequestId, tool: ToolName, latency_us: u64) -> ToolError {
    match e.kind() {
        ErrorKind::Internal
        | ErrorKind::Unavailable
        | ErrorKind::UpstreamError
        | ErrorKind::UpstreamTimeout => {
            tracing::error!(%request_id, %tool, latency_us, code = %e.code(), cause = e.cause().unwrap_or(""), "tool invocation failed");
            ToolError::new("unavailable", UNAVAILABLE)
        }
        _ => {
            tracing::info!(%request_id, %tool, latency_us, code = %e.code(), "tool invocation refused");
            ToolError::new(e.code(), e.message())
        }
    }
}

/// The direct invoke the chat function runs a tool with: a document whose one top-level key is
/// `bastion_tool_invocation`, answered with the outcome's JSON. API Gateway never builds such a
/// document (everything a client sends is inside its strings), so only a principal allowed to
/// invoke the function can send one. A document with the key that is not a valid invocation
/// (any other top-level field, an unknown field, a bad id) runs nothing and answers
/// `invalid_invocation`.
pub struct ToolInvocations {
    state: ExecState,
}

impl ToolInvocations {
    pub fn new(state: ExecState) -> Self {
        Self { state }
    }
}

impl SideEvents for ToolInvocations {
    fn claim(&self, raw: &str) -> Option<SideFuture> {
        let decoded = ToolInvocation::decode(raw)?;
        let state = self.state.clone();
        Some(Box::pin(async move {
            let outcome = match decoded {
                Ok(invocation) => state.run_tool(&invocation).await,
                Err(e) => {
                    // The reason names no value (see `ToolInvocation::decode`). No request id
                    // in the document can be trusted.
                    tracing::warn!(
                        event = "tool_invocation_refused",
                        reason = %e,
                        "a malformed tool invocation"
                    );
                    ToolOutcome::Err(ToolError::new("invalid_invocation", INVALID_INVOCATION))
                }
            };
            Ok(outcome.to_value())
        }))
    }
}

/// Several side-event handlers in one (exec has the table's stream and the tool invocations):
/// the first that claims an event handles it. Their shapes exclude each other (a top-level
/// `Records` array, a top-level `bastion_tool_invocation`); a document with both is claimed by
/// the invocation handler, which refuses it.
pub struct FirstClaim(pub Vec<Box<dyn SideEvents>>);

impl SideEvents for FirstClaim {
    fn claim(&self, raw: &str) -> Option<SideFuture> {
        self.0.iter().find_map(|handler| handler.claim(raw))
    }
}
