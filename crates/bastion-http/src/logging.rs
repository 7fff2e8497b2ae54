//! Log setup for the binaries: one JSON line per event in Lambda (CloudWatch stamps the time),
//! and the `RUST_LOG` filter (default `info`) every binary shares.

use tracing_subscriber::EnvFilter;

/// The filter from `RUST_LOG`, or `info` when it is unset or malformed.
pub fn env_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the Lambda subscriber: JSON without timestamps or the current span (the Lambda
/// runtime and CloudWatch add both).
pub fn init_lambda() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(env_filter())
        .with_current_span(false)
        .without_time()
        .init();
}
