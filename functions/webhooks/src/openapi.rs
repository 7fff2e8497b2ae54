//! The webhooks function's part of the OpenAPI document: its routes, described beside each
//! handler.

use utoipa::OpenApi;

use crate::{facebook, stripe, telegram};

/// Every webhook route.
#[derive(OpenApi)]
#[openapi(paths(
    crate::health,
    telegram::deliver,
    facebook::verify_subscription,
    facebook::deliver,
    stripe::deliver,
))]
pub struct WebhooksApi;
