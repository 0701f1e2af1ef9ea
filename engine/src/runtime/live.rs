//! A running job as people watch it: its instances' counters sampled a few
//! times a second, with the rates and shares of time derived from them,
//! and its checkpoint history. The control endpoint serves this as JSON
//! and as Prometheus metrics; nothing here is on the path of records (the
//! supervisor samples, the endpoint reads).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::metrics::{Metrics, NO_WATERMARK};
use super::tap::Taps;
use super::Job;
use crate::checkpoint::history::History;
use crate::plan::Plan;

/// Rates and shares are taken over this much of the recent past (as the
/// status line's).
const WINDOW: Duration = Duration::from_secs(5);

/// The least time between two samples.
const SAMPLE_EVERY: Duration = Duration::from_millis(200);

/// What the run shares with whoever watches it; outlives its attempts.
pub struct Live {
    /// The plan, with the settings in force, as `check --format json` shows it.
    pub plan: serde_json::Value,
    /// The spec's text, secrets redacted.
    pub spec: String,
    /// The plan's nodes in order: name, and whether its records carry
    /// event times (only then is a watermark shown).
    nodes: Vec<(String, bool)>,
    attempt: Mutex<Attempt>,
    /// Samples of what each node puts out, for `dataflow tap`.
    pub taps: Taps,
    /// The run's checkpoints, over all its attempts.
    pub checkpoints: Arc<Mutex<History>>,
}

#[derive(Default)]
struct Attempt {
    /// 1 for the first attempt, 2 after the first restart, …; 0 before one starts.
    number: u32,
    instances: Vec<Watched>,
    /// Oldest first, spanning at least [`WINDOW`] once there are enough.
    samples: VecDeque<Sample>,
}

struct Watched {
    node: usize,
    instance: String,
    metrics: Arc<Metrics>,
}

struct Sample {
    at: Instant,
    counts: Vec<Counts>,
}

#[derive(Clone, Copy, Default)]
struct Counts {
    records_in: u64,
    records_out: u64,
    dropped: u64,
    late: u64,
    blocked_ns: u64,
    idle_ns: u64,
    watermark: i64,
}

impl Counts {
    fn of(m: &Metrics) -> Counts {
        Counts {
            records_in: m.records_in.load(Ordering::Relaxed),
            records_out: m.records_out.load(Ordering::Relaxed),
            dropped: m.dropped.load(Ordering::Relaxed),
            late: m.late.load(Ordering::Relaxed),
            blocked_ns: m.activity.blocked_ns.load(Ordering::Relaxed),
            idle_ns: m.activity.idle_ns.load(Ordering::Relaxed),
            watermark: m.watermark.load(Ordering::Relaxed),
        }
    }
}

/// One instance, as `GET /v1/metrics` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceView {
    /// `<node>#<index>`.
    pub instance: String,
    pub records_in: u64,
    pub records_out: u64,
    pub dropped: u64,
    pub late: u64,
    /// Per second, over the last few seconds.
    pub records_in_per_second: f64,
    pub records_out_per_second: f64,
    /// Shares of the last few seconds, 0 to 1, of the thread that runs
    /// the instance's chain: blocked sending (its readers are slower),
    /// waiting for input, and the rest, working.
    pub backpressure: f64,
    pub idle: f64,
    pub busy: f64,
    /// Total seconds blocked sending, and waiting for input.
    pub blocked_seconds: f64,
    pub idle_seconds: f64,
    /// Epoch milliseconds; absent before the first watermark, and for
    /// nodes without event time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watermark_ms: Option<i64>,
}

/// The instances of each node, by node in the plan's order.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsView {
    /// Which attempt of the run the counters are of (they start again
    /// from 0 at each restart).
    pub attempt: u32,
    /// Seconds the rates and shares are taken over.
    pub window_seconds: f64,
    pub nodes: Vec<NodeView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    pub node: String,
    pub instances: Vec<InstanceView>,
}

/// What `/v1/spec` shows for a spec whose secrets could not all be masked.
const WITHHELD: &str = "# The text of this spec is withheld: it holds a secret (a store's key or token, a Kafka password) written in a way that could not be masked. GET /v1/plan shows its settings.\n";

/// The spec's text with every secret masked: the secret options of every
/// location written in it (by name, percent-encoded or not), and the
/// secret values the plan's store was given wherever they appear. Then
/// read back as YAML, whose escapes and line folding could hide a secret
/// from a search of the text: if any string in it still holds one, the
/// text is withheld.
fn shown_spec(plan: &Plan, text: &str) -> String {
    use crate::plan::store::{redact, redact_text};
    let secrets = plan.secrets();
    let mut shown = redact_text(text);
    for secret in &secrets {
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        shown = shown.replace(secret, "***").replace(&encoded, "***");
    }
    fn holds_secret(value: &serde_yaml::Value, secrets: &[&str]) -> bool {
        let holds = |v| holds_secret(v, secrets);
        match value {
            serde_yaml::Value::String(s) => {
                redact(s) != *s || secrets.iter().any(|secret| s.contains(secret))
            }
            serde_yaml::Value::Sequence(items) => items.iter().any(holds),
            serde_yaml::Value::Mapping(m) => m.iter().any(|(k, v)| holds(k) || holds(v)),
            serde_yaml::Value::Tagged(t) => holds(&t.value),
            _ => false,
        }
    }
    match serde_yaml::from_str::<serde_yaml::Value>(&shown) {
        Ok(value) if !holds_secret(&value, &secrets) => shown,
        _ => WITHHELD.to_owned(),
    }
}

impl Live {
    /// `spec`: the text the plan was made from.
    pub fn new(plan: &Plan, spec: &str) -> Live {
        Live {
            plan: plan.summary_json(),
            spec: shown_spec(plan, spec),
            nodes: plan
                .order()
                .iter()
                .map(|&n| (plan.graph()[n].name.clone(), plan.graph()[n].timed))
                .collect(),
            taps: Taps::new(plan.order().iter().map(|&n| plan.graph()[n].name.clone())),
            attempt: Mutex::new(Attempt::default()),
            checkpoints: Arc::default(),
        }
    }

    /// The run's checkpoints as they stand.
    pub fn checkpoints(&self) -> History {
        self.checkpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn attempt(&self) -> MutexGuard<'_, Attempt> {
        // A panic elsewhere while holding it leaves figures, not invariants.
        self.attempt.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new attempt's instances are running: watch them instead.
    pub fn attempt_started(&self, job: &Job) {
        let mut attempt = self.attempt();
        attempt.number += 1;
        attempt.samples.clear();
        attempt.instances = job
            .nodes
            .iter()
            .enumerate()
            .flat_map(|(node, stats)| {
                stats
                    .instances
                    .iter()
                    .enumerate()
                    .map(move |(i, metrics)| Watched {
                        node,
                        instance: format!("{}#{i}", stats.name),
                        metrics: Arc::clone(metrics),
                    })
            })
            .collect();
        drop(attempt);
        self.sample();
    }

    /// Reads every instance's counters, at most once per [`SAMPLE_EVERY`];
    /// closes the taps nobody reads any more.
    pub fn sample(&self) {
        self.taps.forget_unread();
        let now = Instant::now();
        let mut attempt = self.attempt();
        if attempt
            .samples
            .back()
            .is_some_and(|s| now.duration_since(s.at) < SAMPLE_EVERY)
        {
            return;
        }
        let counts = attempt
            .instances
            .iter()
            .map(|w| Counts::of(&w.metrics))
            .collect();
        attempt.samples.push_back(Sample { at: now, counts });
        while attempt
            .samples
            .get(1)
            .is_some_and(|s| now.duration_since(s.at) >= WINDOW)
        {
            attempt.samples.pop_front();
        }
    }

    /// The counters as last sampled, with rates and shares over the window.
    pub fn metrics(&self) -> MetricsView {
        let attempt = self.attempt();
        let mut view: Vec<NodeView> = self
            .nodes
            .iter()
            .map(|(node, _)| NodeView {
                node: node.clone(),
                instances: Vec::new(),
            })
            .collect();
        let (Some(first), Some(last)) = (attempt.samples.front(), attempt.samples.back()) else {
            return MetricsView {
                attempt: attempt.number,
                window_seconds: 0.0,
                nodes: view,
            };
        };
        let span = last.at.duration_since(first.at).as_secs_f64();
        for (k, watched) in attempt.instances.iter().enumerate() {
            let (a, b) = (first.counts[k], last.counts[k]);
            let per_second = |x: u64, y: u64| {
                if span > 0.0 {
                    y.saturating_sub(x) as f64 / span
                } else {
                    0.0
                }
            };
            let share = |x: u64, y: u64| (per_second(x, y) / 1e9).clamp(0.0, 1.0);
            let backpressure = share(a.blocked_ns, b.blocked_ns);
            let idle = share(a.idle_ns, b.idle_ns).min(1.0 - backpressure);
            let instance = InstanceView {
                instance: watched.instance.clone(),
                records_in: b.records_in,
                records_out: b.records_out,
                dropped: b.dropped,
                late: b.late,
                records_in_per_second: per_second(a.records_in, b.records_in),
                records_out_per_second: per_second(a.records_out, b.records_out),
                backpressure,
                idle,
                busy: if span > 0.0 {
                    1.0 - backpressure - idle
                } else {
                    0.0
                },
                blocked_seconds: b.blocked_ns as f64 / 1e9,
                idle_seconds: b.idle_ns as f64 / 1e9,
                watermark_ms: (self.nodes[watched.node].1 && b.watermark != NO_WATERMARK)
                    .then_some(b.watermark),
            };
            if let Some(node) = view.get_mut(watched.node) {
                node.instances.push(instance);
            }
        }
        MetricsView {
            attempt: attempt.number,
            window_seconds: span,
            nodes: view,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(store: &str) -> String {
        let text = format!(
            "name: s\ncheckpoint: {{interval: 1s, store: \"{store}\"}}\nsources:\n  a: {{type: generate}}\nsinks:\n  o: {{type: blackhole, inputs: [a]}}\n"
        );
        shown_spec(&crate::plan::from_text(&text), &text)
    }

    #[test]
    fn no_spelling_of_a_secret_shows() {
        for store in [
            "s3://b/p?region=x&secret_access_key=S3CR3TKEY",
            "s3://b/p?region=x&secret%5Faccess%5Fkey=S3CR3TKEY",
            "s3://b/p?region=x&\\x73ecret_access_key=S3CR3TKEY",
            "s3://b/p?region=x&secret_access_key=S3CR%33TKEY",
            "s3://b/p?secret_access_key=S3CR3TKEY&region=x",
        ] {
            let text = shown(store);
            for secret in ["S3CR3TKEY", "S3CR%33TKEY"] {
                assert!(!text.contains(secret), "{store}: {text}");
            }
        }
        // Masked in place when it can be; the rest of the text stays.
        let text = shown("s3://b/p?region=x&secret_access_key=S3CR3TKEY");
        assert!(text.contains("secret_access_key=***"), "{text}");
        assert!(text.contains("region=x"), "{text}");
        assert_eq!(shown("file:///tmp/x"), shown("file:///tmp/x"));
        assert!(shown("file:///tmp/x").contains("file:///tmp/x"));
    }

    #[test]
    fn a_kafka_password_never_shows() {
        for written in [
            "sasl.password: hunter2secret",
            "sasl.password: \"hunter2\\x73ecret\"",
            "sasl.password: >-\n        hunter2secret",
        ] {
            let text = format!(
                "name: k\nsources:\n  a:\n    type: kafka\n    bootstrap_servers: h:9092\n    topics: [t]\n    librdkafka_options:\n      sasl.username: me\n      {written}\nsinks:\n  o: {{type: blackhole, inputs: [a]}}\n"
            );
            let shown = shown_spec(&crate::plan::from_text(&text), &text);
            assert!(!shown.contains("hunter2"), "{written}: {shown}");
            assert!(
                shown.contains("sasl.username: me") || shown == WITHHELD,
                "{shown}"
            );
        }
    }
}
