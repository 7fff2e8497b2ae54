//! The body a verified delivery is answered with (`delivery::Processed`), for the OpenAPI
//! document.

use utoipa::ToSchema;

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
