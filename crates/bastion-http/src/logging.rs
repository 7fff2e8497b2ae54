//! Log setup for the binaries: one JSON line per event in Lambda, and the `RUST_LOG` filter
//! (default `info`) every binary shares; and the metric lines (CloudWatch Embedded Metric Format)
//! the functions write beside them.
//!
//! Lambda's JSON log format filters application lines by their `level` and reads their time from
//! `timestamp` (RFC 3339); a line without a valid `timestamp` is treated as INFO whatever its level
//! says, so every line carries one, read from the [`Clock`] like every other time in the code.
//!
//! Lambda reads `RUST_LOG` as a list of `level` and `target=level` directives
//! ([`Targets`]): enough for an operator, and it keeps the regex engine behind `EnvFilter`'s
//! span and field matching out of the bootstraps. The local server keeps `EnvFilter`.

use std::str::FromStr;
use std::sync::Arc;

use bastion_core::config::{Env, ProcessEnv};
use bastion_core::{Clock, SystemClock};

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
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

/// Installs the Lambda subscriber: JSON with `timestamp` and `level`, without the current span
/// (the Lambda runtime adds the request id itself).
pub fn init_lambda() {
    let rust_log = ProcessEnv.get("RUST_LOG");
    tracing_subscriber::registry()
        .with(
            lambda_format(Arc::new(SystemClock), std::io::stdout)
                .with_filter(targets(rust_log.as_deref())),
        )
        .init();
}

/// The Lambda line format, stamped by `clock` and written to `writer`.
fn lambda_format<S, W>(clock: Arc<dyn Clock>, writer: W) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(false)
        .with_timer(ClockTime(clock))
        .with_writer(writer)
}

/// The `timestamp` of a log line, from a [`Clock`].
struct ClockTime(Arc<dyn Clock>);

impl FormatTime for ClockTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        w.write_str(&rfc3339_millis(self.0.now_nanos()))
    }
}

pub use bastion_core::metrics::{LineSink, Metric, Metrics, Stdout, rfc3339_millis};

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use bastion_core::Timestamp;
    use tracing::Level;

    /// Collects what the format writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    /// A clock that knows sub-second time: 2025-11-24T16:00:00.250Z.
    #[derive(Debug)]
    struct QuarterPast;

    impl Clock for QuarterPast {
        fn now(&self) -> Timestamp {
            Timestamp(1_764_000_000)
        }
        fn now_nanos(&self) -> u64 {
            1_764_000_000_250_000_000
        }
    }

    #[test]
    fn a_json_line_carries_the_rfc_3339_timestamp_and_the_level_lambda_filters_on() {
        let out = Captured::default();
        let subscriber =
            tracing_subscriber::registry().with(lambda_format(Arc::new(QuarterPast), out.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(event = "secret_refresh", "kept the last good configuration");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(line["level"], "WARN", "{text}");
        assert_eq!(line["timestamp"], "2025-11-24T16:00:00.250Z", "{text}");
        assert_eq!(line["fields"]["event"], "secret_refresh", "{text}");
    }

    #[test]
    fn rfc_3339_keeps_milliseconds_and_pads_them() {
        assert_eq!(
            rfc3339_millis(1_764_000_000_007_999_999),
            "2025-11-24T16:00:00.007Z"
        );
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
    }

    struct Lines(Mutex<Vec<String>>);

    impl LineSink for Lines {
        fn write_line(&self, line: &str) {
            self.0.lock().unwrap().push(line.to_owned());
        }
    }

    #[test]
    fn a_metric_line_is_embedded_metric_format_under_the_namespace() {
        let lines = Arc::new(Lines(Mutex::new(Vec::new())));
        let metrics = Metrics::new("Bastion/prod", Arc::new(QuarterPast), lines.clone());
        metrics.emit(
            Level::WARN,
            &[("metric", "secret_refresh")],
            &[Metric {
                name: "SecretAgeSeconds",
                unit: "Seconds",
                value: 612.0,
            }],
        );
        let lines = lines.0.lock().unwrap();
        let line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(
            line,
            serde_json::json!({
                "_aws": {
                    "Timestamp": 1_764_000_000_250_u64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Bastion/prod",
                        "Dimensions": [[]],
                        "Metrics": [{"Name": "SecretAgeSeconds", "Unit": "Seconds"}],
                    }],
                },
                "timestamp": "2025-11-24T16:00:00.250Z",
                "level": "WARN",
                "metric": "secret_refresh",
                "SecretAgeSeconds": 612.0,
            })
        );
        assert_eq!(lines.len(), 1);
    }

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
