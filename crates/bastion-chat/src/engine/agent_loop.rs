//! The agent loop of one turn: debit a credit, call the model, run the tools it asks for in
//! order, hand back their results, until it answers or a bound stops it (the step cap, the
//! credits, the deadline, a streamed turn's client going away). What a call or a stop means is
//! `agent`'s; this sequences them with the engine's credits and provider, and tells a streamed
//! turn's client each step as it happens.

use bastion_core::tools::{ToolName, ToolOutcome};
use bastion_core::{Owner, RequestId, UserId};
use bastion_store::ConversationId;
use tokio::time::Instant;

use super::credits::HeldCredits;
use super::turn::provider_failure;
use super::{ChatEngine, ChatError};
use crate::agent::{
    CallContext, MAX_CALLS_PER_ANSWER, Step, StopReason, ToolAudit, run_call, too_many, unrun,
};
use crate::events::{DeltaSink, TurnEvent, TurnEvents};
use crate::message::ModelName;
use crate::provider::{
    Completion, CompletionRequest, PromptMessage, ProviderError, ServedBy, Usage,
};

/// What the loop is given.
pub(super) struct LoopInput<'a> {
    pub owner: &'a Owner,
    pub conversation: &'a ConversationId,
    pub model: &'a ModelName,
    pub prompt: Vec<PromptMessage>,
    pub tools: &'a [ToolName],
    pub audit: &'a dyn ToolAudit,
    pub request_id: &'a RequestId,
    pub day: i64,
    /// A streamed turn's events; `None` for a buffered one.
    pub events: Option<&'a TurnEvents>,
}

/// How the loop ended.
pub(super) struct LoopOutcome {
    /// The last answer's text (empty when the model gave none).
    pub answer: String,
    pub steps: Vec<Step>,
    pub usage: Usage,
    pub stop: StopReason,
    pub credits_remaining: u64,
    /// Which provider answered the last model call.
    pub served_by: ServedBy,
}

impl LoopOutcome {
    /// No text and no step: a turn whose client left before the model said anything.
    pub fn generated_nothing(&self) -> bool {
        self.answer.is_empty() && self.steps.is_empty()
    }
}

/// The loop's running state.
struct Progress {
    messages: Vec<PromptMessage>,
    steps: Vec<Step>,
    usage: Usage,
    answer: String,
    credits_remaining: u64,
    served_by: ServedBy,
}

/// Why a model call gave no completion.
enum CallError {
    Provider(ProviderError),
    /// The streamed turn's client went away during the call; the text it had been sent.
    Disconnected(String),
}

impl Progress {
    fn stop(self, stop: StopReason) -> LoopOutcome {
        LoopOutcome {
            answer: self.answer,
            steps: self.steps,
            usage: self.usage,
            stop,
            credits_remaining: self.credits_remaining,
            served_by: self.served_by,
        }
    }
}

impl ChatEngine {
    /// Runs the loop; an error is a turn that made no model call that answered (its credit
    /// already given back), anything later ends with a [`StopReason`].
    pub(super) async fn agent_loop(
        &self,
        mut input: LoopInput<'_>,
        held: &mut HeldCredits,
    ) -> Result<LoopOutcome, ChatError> {
        let agent = &self.config.agent;
        let deadline = Instant::now() + agent.deadline;
        let user: Option<UserId> = input.owner.user_id().cloned();
        let ctx = CallContext {
            user: user.as_ref(),
            request_id: input.request_id,
            conversation: input.conversation,
            offered: input.tools,
            runner: self.runner(),
            audit: input.audit,
            deadline,
        };
        let mut progress = Progress {
            messages: std::mem::take(&mut input.prompt),
            steps: Vec::new(),
            usage: Usage::default(),
            answer: String::new(),
            credits_remaining: 0,
            served_by: ServedBy::Primary,
        };
        for step in 1..=agent.max_steps {
            if input.events.is_some_and(TurnEvents::is_closed) {
                return Ok(progress.stop(StopReason::ClientDisconnected));
            }
            match self.debit(input.owner, input.day, input.request_id).await {
                Ok(remaining) => progress.credits_remaining = remaining,
                Err(ChatError::QuotaExceeded { .. }) if step > 1 => {
                    return Ok(progress.stop(StopReason::CreditsExhausted));
                }
                Err(e) => return Err(e),
            }
            held.add();
            if let (1, Some(events)) = (step, input.events) {
                let conversation_id = input.conversation.clone();
                events.send(TurnEvent::Started { conversation_id }).await;
            }
            let completion = match self.call_model(&input, &progress.messages, deadline).await {
                Ok(c) => c,
                // The client saw this call's text so far, and its credit stays taken.
                Err(CallError::Disconnected(partial)) => {
                    tracing::info!(request_id = %input.request_id, owner = %input.owner.key(), step, "streamed chat client went away; the turn stops and is stored incomplete");
                    progress.answer = partial;
                    return Ok(progress.stop(StopReason::ClientDisconnected));
                }
                Err(CallError::Provider(e)) => {
                    held.give_back_one().await;
                    tracing::warn!(request_id = %input.request_id, owner = %input.owner.key(), step, provider = self.provider.name(), error = %e, "chat provider failed; its credit is given back");
                    return match (step, e) {
                        (1, e) => Err(provider_failure(e)),
                        (_, ProviderError::Timeout) if Instant::now() >= deadline => {
                            Ok(progress.stop(StopReason::Deadline))
                        }
                        _ => Ok(progress.stop(StopReason::ProviderError)),
                    };
                }
            };
            progress.usage = progress.usage.plus(completion.usage);
            progress.answer = completion.content.clone();
            progress.served_by = completion.served_by;
            if completion.tool_calls.is_empty() {
                return Ok(progress.stop(StopReason::EndTurn));
            }
            let last = step == agent.max_steps;
            if let Some(stop) = self
                .run_tools(&ctx, step, completion, last, &mut progress, input.events)
                .await?
            {
                return Ok(progress.stop(stop));
            }
        }
        Ok(progress.stop(StopReason::MaxSteps))
    }

    /// One model call, bounded by what is left of the turn; streamed when the turn is, and
    /// then dropped (its connection with it) as soon as the client goes away.
    async fn call_model(
        &self,
        input: &LoopInput<'_>,
        messages: &[PromptMessage],
        deadline: Instant,
    ) -> Result<Completion, CallError> {
        let left = deadline.saturating_duration_since(Instant::now());
        let request = CompletionRequest {
            model: input.model.as_str().to_owned(),
            messages: messages.to_vec(),
            tools: input.tools.to_vec(),
        };
        let Some(events) = input.events else {
            return match tokio::time::timeout(left, self.provider.complete(&request)).await {
                Ok(result) => result.map_err(CallError::Provider),
                Err(_) => Err(CallError::Provider(ProviderError::Timeout)),
            };
        };
        let mut sink = DeltaSink {
            events,
            text: String::new(),
        };
        let streamed = {
            let call = tokio::time::timeout(left, self.provider.stream(&request, &mut sink));
            tokio::select! {
                result = call => Some(result),
                () = events.closed() => None,
            }
        };
        match streamed {
            Some(Ok(result)) => result.map_err(CallError::Provider),
            Some(Err(_)) => Err(CallError::Provider(ProviderError::Timeout)),
            None => Err(CallError::Disconnected(sink.text)),
        }
    }

    /// Runs an answer's calls in order (or answers them unrun when the turn stops first) and
    /// appends them with their results; returns why the turn stops, if it does.
    async fn run_tools(
        &self,
        ctx: &CallContext<'_>,
        step: u32,
        completion: Completion,
        last: bool,
        progress: &mut Progress,
        events: Option<&TurnEvents>,
    ) -> Result<Option<StopReason>, ChatError> {
        let mut stop = last.then_some(StopReason::MaxSteps);
        let mut results = Vec::with_capacity(completion.tool_calls.len());
        for (i, call) in completion.tool_calls.iter().enumerate() {
            let asked = Step::call(step, &call.id, &call.name, &call.arguments);
            if let Some(events) = events {
                events.send(TurnEvent::ToolCall(asked.clone())).await;
            }
            progress.steps.push(asked);
            if stop.is_none() && Instant::now() >= ctx.deadline {
                stop = Some(StopReason::Deadline);
            }
            if stop.is_none() && events.is_some_and(TurnEvents::is_closed) {
                stop = Some(StopReason::ClientDisconnected);
            }
            let outcome: ToolOutcome = match stop {
                Some(reason) => unrun(reason),
                None if i >= MAX_CALLS_PER_ANSWER => too_many(),
                None => run_call(ctx, call).await?,
            };
            let result = Step::result(step, &call.id, &call.name, outcome.to_value());
            results.push(PromptMessage::tool_result(
                &call.id,
                &call.name,
                result.model_text(),
            ));
            if let Some(events) = events {
                events.send(TurnEvent::ToolResult(result.clone())).await;
            }
            progress.steps.push(result);
        }
        progress.messages.push(PromptMessage::assistant(
            completion.content,
            completion.tool_calls,
        ));
        progress.messages.extend(results);
        if stop.is_none() && Instant::now() >= ctx.deadline {
            stop = Some(StopReason::Deadline);
        }
        Ok(stop)
    }
}
