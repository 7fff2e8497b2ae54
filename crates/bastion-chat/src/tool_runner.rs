//! The tool-runner port: how the agent loop has a checked tool call run in the user's exec
//! workspace. In-process in `bastion-local`; a direct Lambda Invoke of the exec function as
//! deployed. The loop knows neither transport.

use std::time::Duration;

use async_trait::async_trait;
use bastion_core::tools::{ToolError, ToolInvocation, ToolOutcome};

#[async_trait]
pub trait ToolRunner: Send + Sync {
    /// A short label for logs and start-up messages.
    fn name(&self) -> &'static str;
    /// Runs `invocation` in its user's workspace. Every failure (a refusal, a quota, the exec
    /// function unreachable or slower than `budget`) is an error outcome for the model, never
    /// an error of the turn.
    async fn run(&self, invocation: &ToolInvocation, budget: Duration) -> ToolOutcome;
}

/// The runner of a deployment that offers no tools: every call is refused.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTools;

#[async_trait]
impl ToolRunner for NoTools {
    fn name(&self) -> &'static str {
        "none"
    }

    async fn run(&self, _invocation: &ToolInvocation, _budget: Duration) -> ToolOutcome {
        ToolOutcome::Err(ToolError::new(
            "tool_not_offered",
            "no tools are available on this turn",
        ))
    }
}
