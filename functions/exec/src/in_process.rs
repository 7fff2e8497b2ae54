//! The agent's tool runner in the same process as exec (`bastion-local`, the e2e tests): a
//! call is [`ExecState::run_tool`] itself, with no transport between. As deployed, chat reaches
//! exec through a Lambda Invoke instead (`bastion-chat-fn`'s `LambdaTools`).

use std::time::Duration;

use async_trait::async_trait;
use bastion_chat::ToolRunner;
use bastion_core::tools::{ToolError, ToolInvocation, ToolOutcome};

use crate::ExecState;

pub struct InProcessTools(pub ExecState);

#[async_trait]
impl ToolRunner for InProcessTools {
    fn name(&self) -> &'static str {
        "in-process exec"
    }

    async fn run(&self, invocation: &ToolInvocation, budget: Duration) -> ToolOutcome {
        // `run_tool` works on a task of its own: a run this stops waiting for still finishes
        // and releases the user's lease.
        match tokio::time::timeout(budget, self.0.run_tool(invocation)).await {
            Ok(outcome) => outcome,
            Err(_) => ToolOutcome::Err(ToolError::new(
                "deadline",
                "the turn ran out of time while the tool ran",
            )),
        }
    }
}
