//! The chat engine: one turn is read history → the agent loop (a credit debited before each
//! model call, the tools it asks for run in between) → write the turn with its steps; credits
//! of calls that produced nothing, or of a turn that was not stored, are given back.

use std::sync::Arc;

use async_trait::async_trait;
use bastion_core::crypto::random_bytes;
use bastion_core::tools::ToolName;
use bastion_core::{Clock, Owner, Plan, RequestId, Timestamp};
use bastion_store::{
    BillingStore, ConversationId, ConversationRecord, MessageRecord, MessageRole, Page, StoreError,
    Stores,
};
use sha2::{Digest, Sha256};

use crate::agent::{Step, StopReason, ToolAudit};
use crate::claim::TurnClaim;
use crate::config::{ChatConfig, ChatSetup};
use crate::context::assemble;
use crate::events::TurnEvents;
use crate::message::{ChatMessage, ModelName};
use crate::provider::{Provider, ProviderError, ServedBy, Usage};
use crate::tool_runner::{NoTools, ToolRunner};

mod agent_loop;
mod credits;
mod turn;
use agent_loop::LoopInput;
use credits::HeldCredits;
use turn::{
    Question, append_failure, counter_expiry, credit_day, debit_verdict, open_thread, reply_from,
    turn_write,
};

/// Conversations per listing page.
pub const CONVERSATION_PAGE: usize = 20;
/// Messages per listing page.
pub const MESSAGE_PAGE: usize = 50;
/// Tries of one channel reply that keeps losing races with overlapping deliveries.
const CHANNEL_ATTEMPTS: u32 = 10;
/// Pause before retrying a channel turn whose conversation another delivery holds, times the
/// attempt (about 4.5 s in all, well inside the platforms' webhook timeouts).
const CHANNEL_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// Where an owner's plan comes from.
#[async_trait]
pub trait PlanSource: Send + Sync {
    async fn plan(&self, owner: &Owner) -> Result<Plan, StoreError>;
}

/// Plans as Stripe set them through the webhooks function: an account's plan is its billing
/// state at the engine's clock (one read); channel owners have no account and stay `Free`.
#[derive(Clone)]
pub struct BillingPlans {
    billing: Arc<dyn BillingStore>,
    clock: Arc<dyn Clock>,
}

impl BillingPlans {
    pub fn new(billing: Arc<dyn BillingStore>, clock: Arc<dyn Clock>) -> Self {
        Self { billing, clock }
    }
}

#[async_trait]
impl PlanSource for BillingPlans {
    async fn plan(&self, owner: &Owner) -> Result<Plan, StoreError> {
        match owner.user_id() {
            Some(user) => self.billing.plan_of(user, self.clock.now()).await,
            None => Ok(Plan::Free),
        }
    }
}

/// Every owner on the free plan, whatever billing says: for benches and tests that do not
/// exercise plans.
#[derive(Debug, Clone, Copy, Default)]
pub struct FreePlans;

#[async_trait]
impl PlanSource for FreePlans {
    async fn plan(&self, _owner: &Owner) -> Result<Plan, StoreError> {
        Ok(Plan::Free)
    }
}

/// Why a turn or a read did not happen. Texts never contain message content.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// No such conversation for this owner (another owner's counts as none).
    #[error("conversation not found")]
    NotFound,
    /// `code` is `empty_message`, `message_too_long` or `invalid_message`.
    #[error("invalid message: {code}")]
    InvalidMessage { code: &'static str, message: String },
    #[error("model not allowed")]
    ModelNotAllowed,
    #[error("invalid cursor")]
    InvalidCursor,
    /// Today's credits are used up until `resets_at` (the next UTC midnight).
    #[error("daily credits exhausted until {}", resets_at.to_rfc3339())]
    QuotaExceeded {
        resets_at: Timestamp,
        allowance: u64,
    },
    /// The provider failed (status, transport, malformed reply); the credit was refunded.
    #[error("provider failed: {0}")]
    ProviderFailed(ProviderError),
    /// The provider did not answer within the deadline; the credit was refunded.
    #[error("provider timed out")]
    ProviderTimeout,
    /// Another turn changed the conversation first; the credit was refunded.
    #[error("conversation changed concurrently")]
    Conflict,
    /// A streamed turn's client went away before anything was generated: nothing is stored
    /// and the credit was refunded. Nobody is left to answer.
    #[error("the client went away before the turn produced anything")]
    ClientGone,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<bastion_core::ValidationError> for ChatError {
    fn from(v: bastion_core::ValidationError) -> Self {
        ChatError::InvalidMessage {
            code: v.code,
            message: v.message,
        }
    }
}

/// The outcome of a successful turn.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnReply {
    pub conversation_id: ConversationId,
    pub message: MessageRecord,
    /// Every model call's usage summed.
    pub usage: Usage,
    pub credits_remaining: u64,
    pub steps: Vec<Step>,
    pub stop_reason: StopReason,
    /// Which provider answered the turn's last model call.
    pub served_by: ServedBy,
}

/// One HTTP turn as the chat function asks for it.
pub struct TurnRequest<'a> {
    pub owner: &'a Owner,
    /// Continue this conversation, or start one.
    pub conversation: Option<&'a ConversationId>,
    pub message: &'a ChatMessage,
    pub model: Option<&'a str>,
    /// The tools this turn offers (the configuration's, narrowed by the request).
    pub tools: &'a [ToolName],
    /// Where each tool call is audited.
    pub audit: &'a dyn ToolAudit,
    pub request_id: &'a RequestId,
}

/// Which conversation a turn continues.
enum Target<'a> {
    New,
    Existing(&'a ConversationId),
    /// A channel owner's single conversation (created on first use), its context already
    /// read, and the id this delivery's user message is stored under.
    Channel {
        id: ConversationId,
        context: Context,
        turn: String,
    },
}

/// A conversation (if it exists) and its most recent messages, newest first.
type Context = (Option<ConversationRecord>, Vec<MessageRecord>);

/// What a turn starts from: the conversation as read (if any), its recent messages, newest
/// first, and for a channel turn its conversation id and user message id.
type Start = (
    Option<ConversationRecord>,
    Vec<MessageRecord>,
    Option<(ConversationId, String)>,
);

#[derive(Clone)]
pub struct ChatEngine {
    stores: Stores,
    provider: Arc<dyn Provider>,
    /// Where tool calls run; without one, no tool is offered.
    tools: Option<Arc<dyn ToolRunner>>,
    plans: Arc<dyn PlanSource>,
    clock: Arc<dyn Clock>,
    config: Arc<ChatConfig>,
}

impl ChatSetup {
    /// The engine as deployed: each account's plan is its Stripe billing state in `stores`.
    pub fn into_engine(self, stores: Stores, clock: Arc<dyn Clock>) -> ChatEngine {
        let plans = Arc::new(BillingPlans::new(stores.billing.clone(), clock.clone()));
        ChatEngine::new(stores, self.provider, plans, clock, self.config)
    }
}

impl ChatEngine {
    pub fn new(
        stores: Stores,
        provider: Arc<dyn Provider>,
        plans: Arc<dyn PlanSource>,
        clock: Arc<dyn Clock>,
        config: ChatConfig,
    ) -> Self {
        Self {
            stores,
            provider,
            tools: None,
            plans,
            clock,
            config: Arc::new(config),
        }
    }

    /// This engine offering the configured tools and running their calls through `tools`
    /// (without a runner, no tool is offered).
    pub fn with_tools(mut self, tools: Arc<dyn ToolRunner>) -> Self {
        self.tools = Some(tools);
        self
    }

    /// The tools a turn offers: the configured ones narrowed by `requested` (a name that is no
    /// tool is refused), none when this engine has no runner.
    pub fn turn_tools(&self, requested: Option<&[String]>) -> Result<Vec<ToolName>, String> {
        let tools = self.config.agent.narrowed(requested)?;
        Ok(if self.tools.is_some() {
            tools
        } else {
            Vec::new()
        })
    }

    /// The runner tool calls go to.
    fn runner(&self) -> &dyn ToolRunner {
        match &self.tools {
            Some(tools) => tools.as_ref(),
            None => &NoTools,
        }
    }

    pub fn config(&self) -> &ChatConfig {
        &self.config
    }

    pub fn provider_name(&self) -> &'static str {
        self.provider.name()
    }

    /// A turn that offers no tools: continue `conversation` (or start one) with `message`.
    pub async fn turn(
        &self,
        owner: &Owner,
        conversation: Option<&ConversationId>,
        message: &ChatMessage,
        model: Option<&str>,
        request_id: &RequestId,
    ) -> Result<TurnReply, ChatError> {
        self.agent_turn(TurnRequest {
            owner,
            conversation,
            message,
            model,
            tools: &[],
            audit: &RefusedOnly,
            request_id,
        })
        .await
    }

    /// One HTTP turn of the agent: continue the conversation (or start one), offering `tools`.
    pub async fn agent_turn(&self, req: TurnRequest<'_>) -> Result<TurnReply, ChatError> {
        self.http_turn(req, None).await
    }

    /// [`Self::agent_turn`], streamed: [`crate::TurnEvent::Started`] once the first credit is
    /// taken (anything refused before that is this call's error, for an error status), then
    /// the model's text and the tool steps as they happen. When the receiving side is dropped
    /// the turn stops before its next model call or tool run and stores what was generated
    /// with the stop reason `client_disconnected`; credits already taken stay taken.
    pub async fn agent_turn_streamed(
        &self,
        req: TurnRequest<'_>,
        events: &TurnEvents,
    ) -> Result<TurnReply, ChatError> {
        self.http_turn(req, Some(events)).await
    }

    async fn http_turn(
        &self,
        req: TurnRequest<'_>,
        events: Option<&TurnEvents>,
    ) -> Result<TurnReply, ChatError> {
        let (owner, request_id) = (req.owner, req.request_id);
        let (target, claim) = match req.conversation {
            Some(id) => (
                Target::Existing(id),
                Some(self.claim_turn(owner, id, request_id).await?),
            ),
            // A new conversation gets a fresh id nobody else can race on.
            None => (Target::New, None),
        };
        let offer = Offer {
            tools: req.tools,
            audit: req.audit,
            events,
        };
        let result = self
            .run_turn(owner, target, req.message, req.model, offer, request_id)
            .await;
        if let Some(claim) = claim {
            claim.release().await;
        }
        result
    }

    /// Claims `id`'s turn before its history is read or anything is spent: concurrent turns
    /// on one conversation stop here (`Conflict`) instead of each debiting a credit and
    /// calling the provider, only for all but one to lose at write time.
    async fn claim_turn(
        &self,
        owner: &Owner,
        id: &ConversationId,
        request_id: &RequestId,
    ) -> Result<TurnClaim, ChatError> {
        let now = self.clock.now();
        TurnClaim::take(self.stores.deliveries.clone(), owner, id, request_id, now)
            .await?
            .ok_or(ChatError::Conflict)
    }

    /// A channel (Telegram, Messenger) reply: continues the owner's one conversation, creating
    /// it on first use, debits the owner's credits and returns the assistant's text.
    ///
    /// `delivery` names the platform delivery (e.g. `telegram#<update_id>`). A retried
    /// delivery whose turn was already stored (its answer then failed to send, or the attempt
    /// died before finishing) gets the stored answer back: no second debit, provider call or
    /// history entry. The stored turn is found among the recent messages the turn reads.
    pub async fn channel_reply(
        &self,
        owner: &Owner,
        text: &str,
        delivery: &str,
        request_id: &RequestId,
    ) -> Result<String, ChatError> {
        let message = ChatMessage::parse(text)?;
        let id = channel_conversation_id(owner);
        let turn = channel_turn_id(owner, delivery, message.as_str());
        // Deliveries of one chat can overlap; a turn that lost the race (its credit already
        // refunded) is simply run again on the winner's state.
        let mut attempt = 1;
        loop {
            let claim = match self.claim_turn(owner, &id, request_id).await {
                Ok(claim) => claim,
                Err(ChatError::Conflict) if attempt < CHANNEL_ATTEMPTS => {
                    // Another delivery of this chat is being answered: wait for its turn.
                    tokio::time::sleep(CHANNEL_BACKOFF * attempt).await;
                    attempt += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let context = self.read_context(owner, &id).await?;
            if let Some(answer) = stored_answer(&context.1, &turn) {
                claim.release().await;
                tracing::info!(%request_id, owner = %owner.key(), "channel delivery already answered; replaying the stored answer");
                return Ok(answer);
            }
            let target = Target::Channel {
                id: id.clone(),
                context,
                turn: turn.clone(),
            };
            // Channel turns stay text-only: no tool is offered, so none can run.
            let offer = Offer {
                tools: &[],
                audit: &RefusedOnly,
                events: None,
            };
            let result = self
                .run_turn(owner, target, &message, None, offer, request_id)
                .await;
            claim.release().await;
            match result {
                Err(ChatError::Conflict) if attempt < CHANNEL_ATTEMPTS => attempt += 1,
                other => return other.map(|reply| reply.message.content),
            }
        }
    }

    /// One turn on `target`, the claim (if any) already held: the decisions are `turn`'s and
    /// `agent`'s, this sequences the reads, the loop, the write and the settlement.
    async fn run_turn(
        &self,
        owner: &Owner,
        target: Target<'_>,
        message: &ChatMessage,
        model: Option<&str>,
        offer: Offer<'_>,
        request_id: &RequestId,
    ) -> Result<TurnReply, ChatError> {
        let model = self
            .config
            .resolve_model(model)
            .ok_or(ChatError::ModelNotAllowed)?;
        let now = self.clock.now();
        let (existing, history, channel) = self.start(owner, target).await?;
        let (channel_id, turn_id) = channel.unzip();
        let thread = open_thread(owner, existing, channel_id, message, now);
        let question = Question {
            message,
            id: turn_id.unwrap_or_else(message_id),
            asked: now,
            model: &model,
        };
        let day = credit_day(now);
        let prompt = assemble(
            &self.config.system_prompt,
            &history,
            message,
            self.config.context_budget_chars,
        );
        let input = LoopInput {
            owner,
            conversation: &thread.conversation.id,
            model: &model,
            prompt,
            tools: offer.tools,
            audit: offer.audit,
            request_id,
            day,
            events: offer.events,
        };
        // From the first debit on, credits are given back unless the turn is stored, also when
        // this future is dropped or unwinds.
        let mut held = HeldCredits::new(self.stores.credits.clone(), owner, day, request_id);
        let outcome = match self.agent_loop(input, &mut held).await {
            Ok(outcome)
                if outcome.stop == StopReason::ClientDisconnected
                    && outcome.generated_nothing() =>
            {
                held.refund_all().await;
                tracing::info!(%request_id, owner = %owner.key(), "streamed chat client went away before anything was generated; nothing stored, credit refunded");
                return Err(ChatError::ClientGone);
            }
            Ok(outcome) => outcome,
            Err(e) => {
                held.refund_all().await;
                return Err(e);
            }
        };
        let steps = crate::agent::steps::encode(&outcome.steps);
        let write = turn_write(
            thread,
            &question,
            &outcome,
            steps,
            message_id(),
            self.clock.now(),
        );
        if let Err(e) = self.stores.conversations.append_turn(&write).await {
            tracing::warn!(%request_id, owner = %owner.key(), error = %e, "chat turn could not be stored; refunding its credits");
            held.refund_all().await;
            return Err(append_failure(e));
        }
        held.keep();
        log_turn(request_id, owner, &model, &outcome, offer.events.is_some());
        reply_from(write, outcome)
    }

    /// Reads (or takes from a channel turn) what `target`'s turn starts from.
    async fn start(&self, owner: &Owner, target: Target<'_>) -> Result<Start, ChatError> {
        Ok(match target {
            Target::New => (None, Vec::new(), None),
            Target::Existing(id) => {
                let (conv, history) = self.read_context(owner, id).await?;
                (Some(conv.ok_or(ChatError::NotFound)?), history, None)
            }
            Target::Channel { id, context, turn } => (context.0, context.1, Some((id, turn))),
        })
    }

    /// The conversation and its most recent messages, read concurrently.
    async fn read_context(
        &self,
        owner: &Owner,
        id: &ConversationId,
    ) -> Result<(Option<ConversationRecord>, Vec<MessageRecord>), ChatError> {
        let conversations = &self.stores.conversations;
        let limit = self.config.context_max_messages;
        let (conv, history) = tokio::try_join!(conversations.get_conversation(owner, id), async {
            if limit == 0 {
                return Ok(None);
            }
            conversations.list_messages(owner, id, None, limit).await
        })?;
        let history = match (&conv, history) {
            (Some(_), Some(page)) => page.items,
            _ => Vec::new(),
        };
        Ok((conv, history))
    }

    async fn debit(
        &self,
        owner: &Owner,
        day: i64,
        request_id: &RequestId,
    ) -> Result<u64, ChatError> {
        let plan = self.plans.plan(owner).await?;
        let allowance = self.config.allowance(plan);
        let debit = self
            .stores
            .credits
            .debit(owner, day, allowance, counter_expiry(day))
            .await?;
        let verdict = debit_verdict(debit, day, allowance);
        if verdict.is_err() {
            tracing::info!(%request_id, owner = %owner.key(), plan = plan.as_str(), allowance, "chat quota exceeded");
        }
        verdict
    }

    /// The owner's conversations, newest first.
    pub async fn conversations(
        &self,
        owner: &Owner,
        cursor: Option<&str>,
    ) -> Result<Page<ConversationRecord>, ChatError> {
        self.stores
            .conversations
            .list_conversations(owner, cursor, CONVERSATION_PAGE)
            .await?
            .ok_or(ChatError::InvalidCursor)
    }

    /// One of the owner's conversations and a page of its messages, newest first.
    pub async fn messages(
        &self,
        owner: &Owner,
        id: &ConversationId,
        cursor: Option<&str>,
    ) -> Result<(ConversationRecord, Page<MessageRecord>), ChatError> {
        let conversations = &self.stores.conversations;
        let (conv, page) = tokio::try_join!(
            conversations.get_conversation(owner, id),
            conversations.list_messages(owner, id, cursor, MESSAGE_PAGE)
        )?;
        let conv = conv.ok_or(ChatError::NotFound)?;
        Ok((conv, page.ok_or(ChatError::InvalidCursor)?))
    }

    /// Deletes one of the owner's conversations with its messages.
    pub async fn delete(&self, owner: &Owner, id: &ConversationId) -> Result<(), ChatError> {
        if self
            .stores
            .conversations
            .delete_conversation(owner, id)
            .await?
        {
            Ok(())
        } else {
            Err(ChatError::NotFound)
        }
    }
}

/// The per-turn usage metric: counts and ids only, never content.
fn log_turn(
    request_id: &RequestId,
    owner: &Owner,
    model: &ModelName,
    outcome: &agent_loop::LoopOutcome,
    streamed: bool,
) {
    tracing::info!(
        %request_id,
        owner = %owner.key(),
        model = model.as_str(),
        prompt_tokens = outcome.usage.prompt_tokens,
        completion_tokens = outcome.usage.completion_tokens,
        tool_calls = outcome.steps.len() / 2,
        stop_reason = outcome.stop.as_str(),
        credits_remaining = outcome.credits_remaining,
        provider = outcome.served_by.as_str(),
        streamed,
        "chat turn"
    );
}

fn message_id() -> String {
    hex::encode(random_bytes::<16>())
}

/// The stored id of the user message a channel delivery produces: derived from the owner, the
/// delivery and the text, so a retry of the delivery recognises its own turn. The text is in
/// it because platform ids can come round again (Telegram picks a random `update_id` after a
/// quiet week), and a reused id with other text must not be answered from the old turn.
fn channel_turn_id(owner: &Owner, delivery: &str, text: &str) -> String {
    let mut hasher = Sha256::new();
    for part in ["bastion-channel-turn", &owner.key(), delivery, text] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(&hasher.finalize()[..16])
}

/// The assistant's answer to the user message `turn`, if that turn is among `history`.
fn stored_answer(history: &[MessageRecord], turn: &str) -> Option<String> {
    let asked = history
        .iter()
        .find(|m| m.role == MessageRole::User && m.id == turn)?;
    history
        .iter()
        .find(|m| m.role == MessageRole::Assistant && m.seq == asked.seq + 1)
        .map(|m| m.content.clone())
}

/// A channel owner's one conversation: derived from the owner, so every delivery finds it
/// without a lookup table. Never exposed over HTTP (channel owners have no HTTP access).
pub fn channel_conversation_id(owner: &Owner) -> ConversationId {
    let digest = Sha256::digest(format!("bastion-channel-conversation\0{}", owner.key()));
    let mut tail = [0u8; 16];
    tail.copy_from_slice(&digest[..16]);
    ConversationId::from_parts(Timestamp(0), tail)
}

/// The tools a turn offers and where their calls are audited.
struct Offer<'a> {
    tools: &'a [ToolName],
    audit: &'a dyn ToolAudit,
    /// A streamed turn's events.
    events: Option<&'a TurnEvents>,
}

/// The audit of a turn that offers no tools (a channel turn, [`ChatEngine::turn`]): only
/// refused calls can reach it, and a refusal ran nothing, so it is logged rather than stored.
struct RefusedOnly;

#[async_trait]
impl ToolAudit for RefusedOnly {
    async fn record(&self, call: &crate::agent::ToolCallAudit) -> Result<(), StoreError> {
        tracing::warn!(
            tool = call.tool,
            ok = call.ok,
            "a tool call on a turn without tools was refused"
        );
        Ok(())
    }
}
