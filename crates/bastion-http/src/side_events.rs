//! Invocations that are not API Gateway requests (exec's DynamoDB stream records), claimed by
//! the function before the API Gateway conversion and answered with their own document.
//!
//! Only what an event source mapping or an IAM principal allowed to invoke the function sends
//! can look like one: API Gateway's events put everything a client sends inside strings
//! (path, headers, body), never in a top-level `Records` array.

use std::sync::Arc;

use lambda_http::BoxFuture;

/// The answer to a claimed event, or an invocation error (the event source then retries it).
pub type SideFuture = BoxFuture<'static, Result<serde_json::Value, lambda_http::Error>>;

pub trait SideEvents: Send + Sync + 'static {
    /// The handling of `raw` when it is this function's kind of event; `None` leaves it to the
    /// API Gateway path.
    fn claim(&self, raw: &str) -> Option<SideFuture>;
}

/// What a function may hand the entry point besides its router.
pub type Side = Option<Arc<dyn SideEvents>>;
