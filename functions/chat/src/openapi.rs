//! The chat function's part of the OpenAPI document: its routes, described beside each handler.

use utoipa::OpenApi;

use crate::handlers;

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
