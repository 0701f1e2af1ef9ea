//! `GET /metrics`: a running job in Prometheus's text format (version
//! 0.0.4), named as Prometheus's conventions ask: a `dataflow_` prefix,
//! base units (seconds, bytes) in the name, `_total` on counters.
//!
//! Labels are `job_name`, `node` and `subtask` (an instance's index), as
//! Flink's reporter names them, never `job` or `instance`: Prometheus
//! gives every scraped series those two itself (the scrape job and the
//! target), and a metric's own would be renamed `exported_*`.

use std::fmt::Write;

use crate::checkpoint::history::{History, DURATION_BUCKETS};
use crate::runtime::live::MetricsView;

/// A label value with `\`, `"` and line ends escaped.
fn escaped(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out
}

/// A sample value as Prometheus reads it.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

struct Exposition {
    text: String,
    job: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let _ = write!(self.text, "{name}{{job_name=\"{}\"", escaped(&self.job));
        for (k, v) in labels {
            let _ = write!(self.text, ",{k}=\"{}\"", escaped(v));
        }
        let _ = writeln!(self.text, "}} {}", number(value));
    }
}

/// The exposition of job `job`'s run `run`.
pub fn render(job: &str, run: &str, metrics: &MetricsView, checkpoints: &History) -> String {
    let mut e = Exposition {
        text: String::new(),
        job: job.to_owned(),
    };
    e.family(
        "dataflow_run_info",
        "gauge",
        "The run being served: always 1, with its id.",
    );
    e.sample("dataflow_run_info", &[("run", run)], 1.0);
    e.family(
        "dataflow_restarts_total",
        "counter",
        "Automatic restarts of this run after failures.",
    );
    e.sample(
        "dataflow_restarts_total",
        &[],
        metrics.attempt.saturating_sub(1) as f64,
    );

    type Field = fn(&crate::runtime::live::InstanceView) -> f64;
    let per_instance: [(&str, &str, &str, Field); 7] = [
        ("dataflow_records_in_total", "counter", "Records an instance took in (since the run's last restart).", |i| i.records_in as f64),
        ("dataflow_records_out_total", "counter", "Records an instance put out (since the run's last restart).", |i| i.records_out as f64),
        ("dataflow_records_dropped_total", "counter", "Records an instance dropped under on_error: skip or log.", |i| i.dropped as f64),
        ("dataflow_records_late_total", "counter", "Records a window left out as late.", |i| i.late as f64),
        ("dataflow_backpressure_seconds_total", "counter", "Time the thread running an instance's chain was blocked sending into a full channel.", |i| i.blocked_seconds),
        ("dataflow_idle_seconds_total", "counter", "Time the thread running an instance's chain waited for input.", |i| i.idle_seconds),
        ("dataflow_watermark_timestamp_seconds", "gauge", "An instance's event-time watermark, in seconds since the epoch (+Inf once event time has ended).", |i| match i.watermark_ms {
            Some(i64::MAX) => f64::INFINITY,
            Some(ms) => ms as f64 / 1e3,
            None => f64::NAN,
        }),
    ];
    for (name, kind, help, field) in per_instance {
        e.family(name, kind, help);
        for node in &metrics.nodes {
            for (subtask, instance) in node.instances.iter().enumerate() {
                let value = field(instance);
                if value.is_nan() {
                    continue;
                }
                let subtask = subtask.to_string();
                e.sample(name, &[("node", &node.node), ("subtask", &subtask)], value);
            }
        }
    }

    e.family(
        "dataflow_checkpoints_total",
        "counter",
        "Checkpoints that ended, by how: completed, failed (counted against tolerable_failures) or abandoned.",
    );
    for (status, n) in [
        ("completed", checkpoints.completed),
        ("failed", checkpoints.failed),
        ("abandoned", checkpoints.abandoned),
    ] {
        e.sample(
            "dataflow_checkpoints_total",
            &[("status", status)],
            n as f64,
        );
    }
    e.family(
        "dataflow_checkpoints_in_progress",
        "gauge",
        "Checkpoints under way.",
    );
    e.sample(
        "dataflow_checkpoints_in_progress",
        &[],
        checkpoints.in_progress.len() as f64,
    );
    e.family(
        "dataflow_checkpoint_duration_seconds",
        "histogram",
        "Completed checkpoints' durations, from trigger to completion.",
    );
    let mut cumulative = 0;
    for (k, le) in DURATION_BUCKETS.iter().enumerate() {
        cumulative += checkpoints.duration_counts[k];
        e.sample(
            "dataflow_checkpoint_duration_seconds_bucket",
            &[("le", &number(*le))],
            cumulative as f64,
        );
    }
    e.sample(
        "dataflow_checkpoint_duration_seconds_bucket",
        &[("le", "+Inf")],
        checkpoints.completed as f64,
    );
    e.sample(
        "dataflow_checkpoint_duration_seconds_sum",
        &[],
        checkpoints.duration_sum_s,
    );
    e.sample(
        "dataflow_checkpoint_duration_seconds_count",
        &[],
        checkpoints.completed as f64,
    );
    e.family(
        "dataflow_checkpoint_written_bytes_total",
        "counter",
        "Bytes of state completed checkpoints wrote to the store.",
    );
    e.sample(
        "dataflow_checkpoint_written_bytes_total",
        &[],
        checkpoints.bytes_written as f64,
    );
    if let Some(last) = checkpoints.last_completed() {
        let gauges = [
            (
                "dataflow_last_checkpoint_id",
                "The newest completed checkpoint's number.",
                last.id as f64,
            ),
            (
                "dataflow_last_checkpoint_duration_seconds",
                "How long the newest completed checkpoint took.",
                last.duration_ms as f64 / 1e3,
            ),
            (
                "dataflow_last_checkpoint_size_bytes",
                "Bytes of state the newest completed checkpoint wrote.",
                last.bytes as f64,
            ),
            (
                "dataflow_last_checkpoint_timestamp_seconds",
                "When the newest completed checkpoint was triggered, in seconds since the epoch.",
                last.triggered_at_ms as f64 / 1e3,
            ),
        ];
        for (name, help, value) in gauges {
            e.family(name, "gauge", help);
            e.sample(name, &[], value);
        }
    }
    e.text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::history::{CheckpointRecord, Status};
    use crate::runtime::live::{InstanceView, NodeView};

    fn instance(watermark_ms: Option<i64>) -> InstanceView {
        InstanceView {
            instance: "n#0".into(),
            records_in: 10,
            records_out: 7,
            dropped: 1,
            late: 0,
            records_in_per_second: 1.0,
            records_out_per_second: 1.0,
            backpressure: 0.5,
            idle: 0.25,
            busy: 0.25,
            blocked_seconds: 1.5,
            idle_seconds: 0.25,
            watermark_ms,
        }
    }

    #[test]
    fn families_samples_labels_and_the_histogram() {
        let metrics = MetricsView {
            attempt: 2,
            window_seconds: 5.0,
            nodes: vec![
                NodeView {
                    node: "a\"b".into(),
                    instances: vec![instance(None), instance(Some(1_500))],
                },
                NodeView {
                    node: "w".into(),
                    instances: vec![instance(Some(i64::MAX))],
                },
            ],
        };
        let mut history = History::default();
        history.ended([CheckpointRecord {
            id: 4,
            savepoint: false,
            status: Status::Completed,
            triggered_at_ms: 2_000,
            duration_ms: 30,
            bytes: 99,
            acknowledged: 1,
            participants: 1,
            cause: None,
            instances: Vec::new(),
        }]);
        let text = render("wc", "r1", &metrics, &history);
        for line in [
            "# TYPE dataflow_records_in_total counter",
            "dataflow_records_in_total{job_name=\"wc\",node=\"a\\\"b\",subtask=\"1\"} 10",
            "dataflow_restarts_total{job_name=\"wc\"} 1",
            "dataflow_backpressure_seconds_total{job_name=\"wc\",node=\"w\",subtask=\"0\"} 1.5",
            "dataflow_watermark_timestamp_seconds{job_name=\"wc\",node=\"a\\\"b\",subtask=\"1\"} 1.5",
            "dataflow_watermark_timestamp_seconds{job_name=\"wc\",node=\"w\",subtask=\"0\"} +Inf",
            "dataflow_checkpoint_duration_seconds_bucket{job_name=\"wc\",le=\"0.025\"} 0",
            "dataflow_checkpoint_duration_seconds_bucket{job_name=\"wc\",le=\"0.05\"} 1",
            "dataflow_checkpoint_duration_seconds_bucket{job_name=\"wc\",le=\"+Inf\"} 1",
            "dataflow_checkpoint_duration_seconds_count{job_name=\"wc\"} 1",
            "dataflow_checkpoints_total{job_name=\"wc\",status=\"completed\"} 1",
            "dataflow_last_checkpoint_size_bytes{job_name=\"wc\"} 99",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from\n{text}");
        }
        assert!(
            !text.contains("node=\"a\\\"b\",subtask=\"0\"} NaN"),
            "no watermark, no sample"
        );
        assert_eq!(
            text.matches("# TYPE dataflow_watermark_timestamp_seconds")
                .count(),
            1
        );
    }
}
