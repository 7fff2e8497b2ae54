//! The `ChatProviderFailover` metric: one CloudWatch Embedded Metric Format line per model call
//! the failover wrapper sent to the fallback, dimensioned by `Reason`. Shaped like the lines
//! `bastion-http`'s `Metrics` writes (which this crate may not depend on), with the one
//! dimension an operator splits failovers by.

use std::io::Write;
use std::sync::Arc;

use bastion_core::{Clock, Timestamp};

/// The metric's name, as the template's alarms and dashboards read it.
pub const FAILOVER_METRIC: &str = "ChatProviderFailover";

/// Where metric lines go: stdout in the functions, a buffer in tests.
pub trait MetricLines: Send + Sync {
    fn write_line(&self, line: &str);
}

/// The process's stdout, one whole line per write so it never interleaves with a log line.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdoutLines;

impl MetricLines for StdoutLines {
    fn write_line(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        // A metric that cannot be written is lost like a log line would be: nothing to report to.
        let _ = writeln!(out, "{line}");
    }
}

/// Writes the failover count under one namespace (`METRICS_NAMESPACE`).
#[derive(Clone)]
pub struct FailoverMetric {
    namespace: String,
    clock: Arc<dyn Clock>,
    lines: Arc<dyn MetricLines>,
}

impl std::fmt::Debug for FailoverMetric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailoverMetric")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl FailoverMetric {
    pub fn new(
        namespace: impl Into<String>,
        clock: Arc<dyn Clock>,
        lines: Arc<dyn MetricLines>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            clock,
            lines,
        }
    }

    /// One failover, for `reason` (`status_503`, `timeout`, `transport`, `breaker_open`). The
    /// reason is a class, never an error's text: the line is a log line.
    pub fn failover(&self, reason: &str) {
        let nanos = self.clock.now_nanos();
        let line = serde_json::json!({
            "_aws": {
                "Timestamp": nanos / 1_000_000,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [["Reason"]],
                    "Metrics": [{"Name": FAILOVER_METRIC, "Unit": "Count"}],
                }],
            },
            "timestamp": rfc3339_millis(nanos),
            "level": "WARN",
            "metric": "chat_provider_failover",
            "Reason": reason,
            FAILOVER_METRIC: 1.0,
        });
        self.lines.write_line(&line.to_string());
    }
}

/// RFC 3339 in UTC with milliseconds, as Lambda's JSON log format reads `timestamp`.
fn rfc3339_millis(nanos: u64) -> String {
    let secs = i64::try_from(nanos / 1_000_000_000).unwrap_or(i64::MAX);
    let millis = nanos / 1_000_000 % 1000;
    let whole = Timestamp(secs).to_rfc3339();
    match whole.strip_suffix('Z') {
        Some(seconds) => format!("{seconds}.{millis:03}Z"),
        None => whole,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bastion_core::ManualClock;

    use super::*;

    #[derive(Default)]
    struct Buffer(Mutex<Vec<String>>);

    impl MetricLines for Buffer {
        fn write_line(&self, line: &str) {
            self.0.lock().unwrap().push(line.to_owned());
        }
    }

    #[test]
    fn a_failover_is_one_embedded_metric_line_with_its_reason_as_the_dimension() {
        let buffer = Arc::new(Buffer::default());
        let clock = Arc::new(ManualClock::new(Timestamp(1_764_000_000)));
        FailoverMetric::new("Bastion/prod", clock, buffer.clone()).failover("status_503");
        let lines = buffer.0.lock().unwrap();
        assert_eq!(lines.len(), 1);
        let line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(
            line,
            serde_json::json!({
                "_aws": {
                    "Timestamp": 1_764_000_000_000_u64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Bastion/prod",
                        "Dimensions": [["Reason"]],
                        "Metrics": [{"Name": "ChatProviderFailover", "Unit": "Count"}],
                    }],
                },
                "timestamp": "2025-11-24T16:00:00.000Z",
                "level": "WARN",
                "metric": "chat_provider_failover",
                "Reason": "status_503",
                "ChatProviderFailover": 1.0,
            })
        );
    }
}
