//! Log setup for the binaries: one JSON line per event in Lambda (CloudWatch stamps the time),
//! and the `RUST_LOG` filter (default `info`) every binary shares.
//!
//! Lambda reads `RUST_LOG` as a list of `level` and `target=level` directives
//! ([`Targets`]): enough for an operator, and it keeps the regex engine behind `EnvFilter`'s
//! span and field matching out of the bootstraps. The local server keeps `EnvFilter`.

use std::str::FromStr;

use bastion_core::config::{Env, ProcessEnv};

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The filter from `RUST_LOG`, or `info` when it is unset or malformed.
pub fn env_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// `RUST_LOG` as target directives; `info` when it is unset, empty or not of that form.
pub fn targets(rust_log: Option<&str>) -> Targets {
    rust_log
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| Targets::from_str(v.trim()).ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

/// Installs the Lambda subscriber: JSON without timestamps or the current span (the Lambda
/// runtime and CloudWatch add both).
pub fn init_lambda() {
    let rust_log = ProcessEnv.get("RUST_LOG");
    let format = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(false)
        .without_time();
    tracing_subscriber::registry()
        .with(format.with_filter(targets(rust_log.as_deref())))
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn an_unset_or_malformed_rust_log_means_info() {
        for value in [
            None,
            Some(""),
            Some("  "),
            Some("not a level=at all=really"),
        ] {
            let t = targets(value);
            assert!(t.would_enable("bastion_auth", &Level::INFO), "{value:?}");
            assert!(!t.would_enable("bastion_auth", &Level::DEBUG), "{value:?}");
        }
    }

    #[test]
    fn rust_log_sets_a_default_and_per_target_levels() {
        let t = targets(Some("warn,bastion_http=debug"));
        assert!(t.would_enable("bastion_http::secrets", &Level::DEBUG));
        assert!(!t.would_enable("aws_smithy_runtime", &Level::INFO));
        assert!(t.would_enable("aws_smithy_runtime", &Level::WARN));
    }
}
