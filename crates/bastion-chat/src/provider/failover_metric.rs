//! The `ChatProviderFailover` metric: one CloudWatch Embedded Metric Format line per model call
//! the failover wrapper sent to the fallback, dimensioned by `Reason`, written by the same
//! [`Metrics`] the edge uses.

use std::sync::Arc;

use bastion_core::Clock;
use bastion_core::metrics::{LineSink, Metric, Metrics};

/// The metric's name, as the template's alarms and dashboards read it.
pub const FAILOVER_METRIC: &str = "ChatProviderFailover";

/// Writes the failover count under one namespace (`METRICS_NAMESPACE`).
#[derive(Debug, Clone)]
pub struct FailoverMetric(Metrics);

impl FailoverMetric {
    pub fn new(
        namespace: impl Into<String>,
        clock: Arc<dyn Clock>,
        lines: Arc<dyn LineSink>,
    ) -> Self {
        Self(Metrics::new(namespace, clock, lines))
    }

    /// One failover, for `reason` (`status_503`, `timeout`, `transport`, `breaker_open`). The
    /// reason is a class, never an error's text: the line is a log line.
    pub fn failover(&self, reason: &str) {
        self.0.emit_by(
            tracing::Level::WARN,
            &[("Reason", reason)],
            &[("metric", "chat_provider_failover")],
            &[Metric {
                name: FAILOVER_METRIC,
                unit: "Count",
                value: 1.0,
            }],
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bastion_core::{ManualClock, Timestamp};

    use super::*;

    #[derive(Default)]
    struct Buffer(Mutex<Vec<String>>);

    impl LineSink for Buffer {
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
