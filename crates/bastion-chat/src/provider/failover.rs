//! The fallback provider: a model call the primary could not serve (connect error, timeout,
//! 429, 5xx) before producing any output goes, whole, to a second provider with its own model,
//! key and wire format; a circuit breaker ([`super::breaker`]) stops sending calls to a
//! primary that keeps failing. A call that produced output on one provider is never sent to
//! the other: the client would see an answer twice, or two halves of different answers.

use std::sync::Arc;

use async_trait::async_trait;

use super::breaker::{Breaker, Outcome, Route, Transition};
use super::failover_metric::FailoverMetric;
use super::{Completion, CompletionRequest, Provider, ProviderError, ServedBy, TextSink};

/// The primary with a fallback behind it.
pub struct FailoverProvider {
    primary: Arc<dyn Provider>,
    fallback: Arc<dyn Provider>,
    /// `LLM_FALLBACK_MODEL`: replaces the request's model on every fallback call.
    fallback_model: String,
    breaker: Breaker,
    metric: FailoverMetric,
}

impl std::fmt::Debug for FailoverProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailoverProvider")
            .field("primary", &self.primary.name())
            .field("fallback", &self.fallback.name())
            .field("fallback_model", &self.fallback_model)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

/// Whether an error says the primary is unavailable (worth another provider) rather than that
/// this request or its answer is wrong (which the fallback would not fix).
pub fn is_availability_failure(e: &ProviderError) -> bool {
    match e {
        ProviderError::Transport(_) | ProviderError::Timeout => true,
        ProviderError::Status(code) => *code == 429 || (500..=599).contains(code),
        ProviderError::Malformed(_) => false,
    }
}

/// The error's class for logs and the metric's `Reason`: never its text, which may quote a
/// transport library's message.
pub fn reason(e: &ProviderError) -> String {
    match e {
        ProviderError::Timeout => "timeout".to_owned(),
        ProviderError::Status(code) => format!("status_{code}"),
        ProviderError::Malformed(_) => "malformed".to_owned(),
        ProviderError::Transport(_) => "transport".to_owned(),
    }
}

/// Forwards text to the caller's sink (none for a buffered call) and remembers whether any
/// reached it: after that, a failure can no longer go to the fallback.
struct Counting<'s> {
    inner: Option<&'s mut dyn TextSink>,
    wrote: bool,
}

#[async_trait]
impl TextSink for Counting<'_> {
    async fn text(&mut self, chunk: &str) {
        if chunk.is_empty() {
            return;
        }
        self.wrote = true;
        if let Some(inner) = self.inner.as_deref_mut() {
            inner.text(chunk).await;
        }
    }
}

impl FailoverProvider {
    pub fn new(
        primary: Arc<dyn Provider>,
        fallback: Arc<dyn Provider>,
        fallback_model: impl Into<String>,
        breaker: Breaker,
        metric: FailoverMetric,
    ) -> Self {
        Self {
            primary,
            fallback,
            fallback_model: fallback_model.into(),
            breaker,
            metric,
        }
    }

    /// The breaker, shared with every clone of it (tests read its state).
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// One model call, buffered (`sink` is `None`) or streamed.
    async fn call(
        &self,
        request: &CompletionRequest,
        sink: Option<&mut dyn TextSink>,
    ) -> Result<Completion, ProviderError> {
        let route = self.breaker.admit();
        if matches!(route, Route::Fallback) {
            tracing::warn!(
                primary = self.primary.name(),
                fallback = self.fallback.name(),
                reason = "breaker_open",
                "chat provider failover: the primary's circuit breaker is open"
            );
            self.metric.failover("breaker_open");
            return self.on_fallback(request, sink).await;
        }
        let mut counting = Counting {
            inner: sink,
            wrote: false,
        };
        let result = if counting.inner.is_some() {
            self.primary.stream(request, &mut counting).await
        } else {
            self.primary.complete(request).await
        };
        let failed = result.as_ref().err().filter(|e| is_availability_failure(e));
        let outcome = match failed {
            Some(_) => Outcome::Unavailable,
            None => Outcome::Answered,
        };
        self.settle(route, outcome);
        match result {
            Ok(mut completion) => {
                completion.served_by = ServedBy::Primary;
                tracing::info!(
                    provider = self.primary.name(),
                    served_by = "primary",
                    "model call answered"
                );
                Ok(completion)
            }
            Err(e) if outcome == Outcome::Answered || counting.wrote => {
                if counting.wrote {
                    tracing::warn!(
                        provider = self.primary.name(),
                        reason = %reason(&e),
                        "the primary failed after streaming text; not failing over"
                    );
                }
                Err(e)
            }
            Err(e) => {
                let why = reason(&e);
                tracing::warn!(
                    primary = self.primary.name(),
                    fallback = self.fallback.name(),
                    reason = %why,
                    "chat provider failover: the primary failed before any output"
                );
                self.metric.failover(&why);
                self.on_fallback(request, counting.inner).await
            }
        }
    }

    /// Reports the primary's outcome to the breaker and logs a change of state.
    fn settle(&self, route: Route, outcome: Outcome) {
        let transition = match route {
            Route::Primary => self.breaker.primary(outcome),
            Route::Probe(ticket) => ticket.report(outcome),
            Route::Fallback => Transition::None,
        };
        match transition {
            Transition::Opened => tracing::warn!(
                provider = self.primary.name(),
                open_for_secs = super::breaker::OPEN_FOR_SECS,
                "chat provider circuit breaker opened: calls go to the fallback"
            ),
            Transition::Closed => tracing::info!(
                provider = self.primary.name(),
                "chat provider circuit breaker closed: calls go to the primary again"
            ),
            Transition::None => {}
        }
    }

    /// The same call on the fallback, with its model.
    async fn on_fallback(
        &self,
        request: &CompletionRequest,
        sink: Option<&mut dyn TextSink>,
    ) -> Result<Completion, ProviderError> {
        let request = CompletionRequest {
            model: self.fallback_model.clone(),
            messages: request.messages.clone(),
            tools: request.tools.clone(),
        };
        let result = match sink {
            Some(sink) => self.fallback.stream(&request, sink).await,
            None => self.fallback.complete(&request).await,
        };
        match result {
            Ok(mut completion) => {
                completion.served_by = ServedBy::Fallback;
                tracing::info!(
                    provider = self.fallback.name(),
                    served_by = "fallback",
                    "model call answered"
                );
                Ok(completion)
            }
            Err(e) => {
                tracing::warn!(
                    provider = self.fallback.name(),
                    reason = %reason(&e),
                    "the fallback provider failed too"
                );
                Err(e)
            }
        }
    }
}

#[async_trait]
impl Provider for FailoverProvider {
    fn name(&self) -> &'static str {
        self.primary.name()
    }

    async fn complete(&self, request: &CompletionRequest) -> Result<Completion, ProviderError> {
        self.call(request, None).await
    }

    async fn stream(
        &self,
        request: &CompletionRequest,
        sink: &mut dyn TextSink,
    ) -> Result<Completion, ProviderError> {
        self.call(request, Some(sink)).await
    }
}

#[cfg(test)]
#[path = "failover_tests.rs"]
mod tests;
