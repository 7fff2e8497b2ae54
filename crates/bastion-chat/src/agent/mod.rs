//! The agent: a turn as a bounded loop of model calls and tool runs. This module holds what the
//! loop decides apart from the engine's reads and writes: why a turn stopped, how one tool call
//! a model asked for is checked and run, and the audit record it leaves. The loop itself is the
//! engine's (`engine::agent_loop`), which owns the credits and the store.
//!
//! Everything a model or a tool says is data: a call is parsed strictly against the tools this
//! turn offers, runs as the turn's user (never anyone the arguments name), and whatever goes
//! wrong comes back as an error result for the model, never as an error of the turn.

pub mod config;
pub mod replay;
pub mod steps;

use std::time::Duration;

use async_trait::async_trait;
use bastion_core::tools::{ToolCall, ToolError, ToolInvocation, ToolName, ToolOutcome};
use bastion_core::{RequestId, UserId};
use bastion_store::{ConversationId, StoreError};
use tokio::time::Instant;

pub use config::AgentConfig;
pub use steps::Step;

use crate::provider::ModelToolCall;
use crate::tool_runner::ToolRunner;

/// Tool calls run per model answer; the rest are answered with an error result.
pub const MAX_CALLS_PER_ANSWER: usize = 16;

/// Why a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The model answered without asking for a tool.
    EndTurn,
    /// The turn made `AGENT_MAX_STEPS` model calls and the last still asked for tools.
    MaxSteps,
    /// The daily credits ran out after at least one model call.
    CreditsExhausted,
    /// `AGENT_DEADLINE_SECS` passed.
    Deadline,
    /// The provider failed after at least one model call had answered.
    ProviderError,
    /// A streamed turn's client went away: what was generated is stored, marked incomplete.
    ClientDisconnected,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::MaxSteps => "max_steps",
            StopReason::CreditsExhausted => "credits_exhausted",
            StopReason::Deadline => "deadline",
            StopReason::ProviderError => "provider_error",
            StopReason::ClientDisconnected => "client_disconnected",
        }
    }

    /// The error result of a call the model asked for that this stop leaves unrun.
    fn unrun(self) -> ToolError {
        let why = match self {
            StopReason::MaxSteps => "the turn reached its step limit",
            StopReason::CreditsExhausted => "the daily credits ran out",
            StopReason::Deadline => "the turn ran out of time",
            StopReason::ClientDisconnected => "the client went away",
            StopReason::EndTurn | StopReason::ProviderError => "the turn ended",
        };
        ToolError::new("not_run", format!("{why} before this call ran"))
    }
}

/// What the audit of one tool call records: ids, the tool, how it went and how long it took,
/// never the arguments or the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallAudit {
    pub conversation: ConversationId,
    /// The tool's name, or `unknown` for a name that is no tool.
    pub tool: &'static str,
    pub ok: bool,
    /// The error code of a failed call.
    pub error: Option<String>,
    pub exit_code: Option<i64>,
    pub duration: Duration,
}

impl ToolCallAudit {
    /// The audit event's detail text.
    pub fn detail(&self) -> String {
        format!(
            "conversation={} tool={} ok={} error={} exit={} duration_ms={}",
            self.conversation,
            self.tool,
            self.ok,
            self.error.as_deref().unwrap_or("none"),
            self.exit_code.map_or("none".to_owned(), |c| c.to_string()),
            self.duration.as_millis()
        )
    }
}

/// Where a turn's tool calls are audited (the chat function writes `chat_tool_call` events).
/// A failed write fails the turn: an unrecorded tool run is not an option.
#[async_trait]
pub trait ToolAudit: Send + Sync {
    async fn record(&self, call: &ToolCallAudit) -> Result<(), StoreError>;
}

/// One call of the loop's, with what it needs to run.
pub(crate) struct CallContext<'a> {
    pub user: Option<&'a UserId>,
    pub request_id: &'a RequestId,
    pub conversation: &'a ConversationId,
    pub offered: &'a [ToolName],
    pub runner: &'a dyn ToolRunner,
    pub audit: &'a dyn ToolAudit,
    pub deadline: Instant,
}

/// The error result of a call that is not run because the turn stops first.
pub(crate) fn unrun(reason: StopReason) -> ToolOutcome {
    ToolOutcome::Err(reason.unrun())
}

/// The error result of a call beyond [`MAX_CALLS_PER_ANSWER`].
pub(crate) fn too_many() -> ToolOutcome {
    ToolOutcome::Err(ToolError::new(
        "too_many_tool_calls",
        format!("at most {MAX_CALLS_PER_ANSWER} tool calls run per answer"),
    ))
}

/// Checks and runs one call the model asked for, audits it, and returns its result.
pub(crate) async fn run_call(
    ctx: &CallContext<'_>,
    call: &ModelToolCall,
) -> Result<ToolOutcome, StoreError> {
    let started = Instant::now();
    let tool = ToolName::parse(&call.name);
    let outcome = match checked(ctx, call) {
        Err(refused) => ToolOutcome::Err(refused),
        Ok(invocation) => {
            let left = ctx.deadline.saturating_duration_since(started);
            // The runner bounds itself by the budget; this is the loop's own backstop.
            match tokio::time::timeout(left, ctx.runner.run(&invocation, left)).await {
                Ok(outcome) => outcome,
                Err(_) => ToolOutcome::Err(ToolError::new(
                    "deadline",
                    "the turn ran out of time while the tool ran",
                )),
            }
        }
    };
    let record = ToolCallAudit {
        conversation: ctx.conversation.clone(),
        tool: tool.map_or("unknown", ToolName::as_str),
        ok: outcome.is_ok(),
        error: match &outcome {
            ToolOutcome::Err(e) => Some(safe_code(&e.code)),
            ToolOutcome::Ok(_) => None,
        },
        exit_code: exit_code(&outcome),
        duration: started.elapsed(),
    };
    ctx.audit.record(&record).await?;
    Ok(outcome)
}

/// The invocation a call becomes, or why it is refused: a name that is no tool, a tool this
/// turn does not offer, arguments that break its schema, or a turn without a user.
fn checked(ctx: &CallContext<'_>, call: &ModelToolCall) -> Result<ToolInvocation, ToolError> {
    let parsed = ToolCall::parse(&call.name, &call.arguments)?;
    if !ctx.offered.contains(&parsed.name()) {
        return Err(ToolError::new(
            "tool_not_offered",
            format!("{} is not available on this turn", parsed.name()),
        ));
    }
    let user = ctx
        .user
        .ok_or_else(|| ToolError::new("tool_not_offered", "no tools are available on this turn"))?;
    Ok(ToolInvocation {
        user_id: user.clone(),
        request_id: ctx.request_id.clone(),
        call: parsed,
    })
}

fn exit_code(outcome: &ToolOutcome) -> Option<i64> {
    match outcome {
        ToolOutcome::Ok(output) => output.get("exit_code").and_then(serde_json::Value::as_i64),
        ToolOutcome::Err(_) => None,
    }
}

/// An error code as it may be recorded: it came back from a runner, so it is bounded here.
fn safe_code(code: &str) -> String {
    code.chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons_have_their_wire_names() {
        let all = [
            (StopReason::EndTurn, "end_turn"),
            (StopReason::MaxSteps, "max_steps"),
            (StopReason::CreditsExhausted, "credits_exhausted"),
            (StopReason::Deadline, "deadline"),
            (StopReason::ProviderError, "provider_error"),
        ];
        for (reason, name) in all {
            assert_eq!(reason.as_str(), name);
        }
    }

    #[test]
    fn an_audit_detail_names_ids_and_counts_only() {
        let record = ToolCallAudit {
            conversation: ConversationId::parse(&"a".repeat(44)).unwrap(),
            tool: "run_command",
            ok: true,
            error: None,
            exit_code: Some(0),
            duration: Duration::from_millis(12),
        };
        assert_eq!(
            record.detail(),
            format!(
                "conversation={} tool=run_command ok=true error=none exit=0 duration_ms=12",
                "a".repeat(44)
            )
        );
        assert_eq!(safe_code("bad code\n<x>"), "bad?code??x?");
    }
}
