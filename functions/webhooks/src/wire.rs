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

/// The answers of a messaging platform's delivery route (Telegram, Messenger); Stripe's differ
/// in its 400.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // only its schema is used
pub enum ChannelDeliveryResponses {
    #[response(
        status = 200,
        description = "Verified and processed now (`processed`) or earlier (`duplicate`)."
    )]
    Delivered(DeliveryStatus),
    #[response(
        status = 400,
        description = "`invalid_request`: the body is not the platform's JSON."
    )]
    InvalidRequest,
    #[response(
        status = 401,
        description = "`invalid_signature`: the signature is missing, malformed or does not match."
    )]
    InvalidSignature,
    #[response(
        status = 413,
        description = "`payload_too_large`: the body is over 1 MiB."
    )]
    PayloadTooLarge,
    #[response(
        status = 502,
        description = "`delivery_failed`: the answer could not be sent to the platform; it will retry."
    )]
    DeliveryFailed,
    #[response(
        status = 503,
        description = "`webhook_not_configured`, `delivery_in_progress`, `delivery_failed`, `unavailable`."
    )]
    Unavailable,
}
