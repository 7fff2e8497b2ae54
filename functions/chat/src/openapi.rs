//! The chat function's part of the OpenAPI document: its routes, described beside each handler.

use utoipa::{OpenApi, ToSchema};

use crate::handlers;

/// Tokens the provider reported for a turn (`bastion_chat::Usage`).
#[derive(ToSchema)]
#[allow(dead_code)] // only its schema is used
pub struct UsageView {
    #[schema(minimum = 0)]
    prompt_tokens: u64,
    #[schema(minimum = 0)]
    completion_tokens: u64,
}

/// Every chat route.
#[derive(OpenApi)]
#[openapi(paths(
    crate::health,
    handlers::send,
    handlers::list,
    handlers::show,
    handlers::delete,
))]
pub struct ChatApi;
