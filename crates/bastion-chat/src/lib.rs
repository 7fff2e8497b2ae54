//! The chat engine as a library: the chat function is its HTTP face, and the webhooks function
//! reuses it (`ChatEngine::channel_reply`) to answer Telegram and Messenger users.

pub mod agent;
mod claim;
pub mod config;
pub mod context;
pub mod engine;
pub mod events;
pub mod message;
pub mod provider;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tool_runner;

pub use agent::{AgentConfig, Step, StopReason, ToolAudit, ToolCallAudit};
pub use config::{ChatConfig, ChatSetup, RuntimeMode};
pub use engine::{
    BillingPlans, ChatEngine, ChatError, FreePlans, PlanSource, TurnReply, TurnRequest,
};
pub use events::{TurnEvent, TurnEvents};
pub use message::{ChatMessage, ModelName};
pub use provider::{Provider, ProviderError, Usage};
pub use tool_runner::{NoTools, ToolRunner};
