//! CloudWatch Embedded Metric Format lines: one JSON log line per measurement, which CloudWatch
//! Logs turns into metrics. Here so that every crate (the edge's secret refresh, the chat
//! engine's failover) writes them one way.

use std::io::Write;
use std::sync::Arc;

use crate::{Clock, Timestamp};

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-24T10:52:51.250Z`: lines within one second
/// keep their order in CloudWatch.
pub fn rfc3339_millis(nanos: u64) -> String {
    let secs = i64::try_from(nanos / 1_000_000_000).unwrap_or(i64::MAX);
    let millis = nanos / 1_000_000 % 1000;
    let whole = Timestamp(secs).to_rfc3339();
    match whole.strip_suffix('Z') {
        Some(seconds) => format!("{seconds}.{millis:03}Z"),
        None => whole,
    }
}

/// Where metric lines go: stdout in the functions (CloudWatch Logs extracts the metrics), a
/// buffer in tests.
pub trait LineSink: Send + Sync {
    fn write_line(&self, line: &str);
}

/// The process's stdout, one whole line per write so a line never interleaves with a log line.
pub struct Stdout;

impl LineSink for Stdout {
    fn write_line(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        // A metric that cannot be written is lost like a log line would be; nothing to report to.
        let _ = writeln!(out, "{line}");
    }
}

/// One metric value of an EMF line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: &'static str,
    pub value: f64,
}

/// Writes CloudWatch Embedded Metric Format lines under one namespace (the template's
/// `Bastion/<env>`), without dimensions unless a line names some: an alarm reads one metric
/// across every function and instance.
#[derive(Clone)]
pub struct Metrics {
    namespace: String,
    clock: Arc<dyn Clock>,
    sink: Arc<dyn LineSink>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new(
        namespace: impl Into<String>,
        clock: Arc<dyn Clock>,
        sink: Arc<dyn LineSink>,
    ) -> Self {
        Self {
            namespace: namespace.into(),
            clock,
            sink,
        }
    }

    /// One line: the metrics, `fields` as searchable properties, and the `level` and `timestamp`
    /// Lambda's log filtering reads (a WARN line survives an `ApplicationLogLevel` of WARN).
    /// `fields` must not hold a secret: the line is a log line.
    pub fn emit(&self, level: tracing::Level, fields: &[(&str, &str)], metrics: &[Metric]) {
        self.emit_by(level, &[], fields, metrics);
    }

    /// [`Self::emit`] with the metrics split by `dimensions` (name and value; the value is also a
    /// property of the line, as EMF requires).
    pub fn emit_by(
        &self,
        level: tracing::Level,
        dimensions: &[(&str, &str)],
        fields: &[(&str, &str)],
        metrics: &[Metric],
    ) {
        let nanos = self.clock.now_nanos();
        let names: Vec<&str> = dimensions.iter().map(|(name, _)| *name).collect();
        let mut line = serde_json::Map::new();
        line.insert(
            "_aws".into(),
            serde_json::json!({
                "Timestamp": nanos / 1_000_000,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [names],
                    "Metrics": metrics
                        .iter()
                        .map(|m| serde_json::json!({"Name": m.name, "Unit": m.unit}))
                        .collect::<Vec<_>>(),
                }],
            }),
        );
        line.insert("timestamp".into(), rfc3339_millis(nanos).into());
        line.insert("level".into(), level.as_str().into());
        for (key, value) in dimensions.iter().chain(fields) {
            line.insert((*key).into(), (*value).into());
        }
        for m in metrics {
            line.insert(m.name.into(), m.value.into());
        }
        self.sink
            .write_line(&serde_json::Value::Object(line).to_string());
    }
}
