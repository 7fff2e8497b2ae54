//! The webhooks function's part of the OpenAPI document: its routes, described beside each
//! handler, and the body of a verified delivery.

use utoipa::{OpenApi, ToSchema};

use crate::{facebook, stripe, telegram};

/// The answer to a verified delivery (`delivery::Processed`).
#[derive(ToSchema)]
#[allow(dead_code)] // only its schema is used
pub struct DeliveryStatus {
    #[schema(inline)]
    status: DeliveryOutcome,
}

/// `processed` the first time, `duplicate` for a delivery already handled.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // only its schema is used
pub enum DeliveryOutcome {
    Processed,
    Duplicate,
}

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
