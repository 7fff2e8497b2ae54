//! The `RateLimit-*` response headers of a decision, shared by the pipeline (every answer) and
//! the error envelope (a 429), so neither has to import the other.

use bastion_core::rate_limit::Decision;
use http::{HeaderMap, HeaderValue};

/// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` for a decision.
pub fn write_headers(headers: &mut HeaderMap, d: &Decision) {
    for (name, value) in [
        ("ratelimit-limit", d.limit),
        ("ratelimit-remaining", d.remaining),
        ("ratelimit-reset", d.reset_secs),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
            headers.insert(name, v);
        }
    }
}
