//! `type: kafka`: records from the partitions of Kafka topics.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

use super::default_max_record_bytes;
use crate::diag::Diagnostic;
use crate::nodes::{Instance, PlannedSource, SourceType};
use crate::operators::{OpError, Source};
use crate::plan::NodeCx;
use crate::runtime::cancel::Cancel;
use crate::spec::Duration;

/// Records from Kafka topics. Partitions are dealt to the instances by a
/// fixed rule (as Flink's and Arroyo's Kafka sources do, with no consumer
/// group rebalancing), and a checkpoint records each partition's offset.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Kafka {
    /// Brokers to start from, `host:port`, comma-separated.
    pub bootstrap_servers: String,
    /// Topics to read; or `topic_pattern`.
    #[serde(default)]
    pub topics: Vec<String>,
    /// A regular expression the whole name of each topic to read matches,
    /// tried again at each discovery.
    #[serde(default)]
    pub topic_pattern: Option<String>,
    /// The consumer group offsets are committed to when a checkpoint
    /// completes (for lag monitoring; the checkpoint is what a restore
    /// reads) and that `start: committed` reads from. Default:
    /// `dataflow-<job>-<source>`.
    #[serde(default)]
    pub group_id: Option<String>,
    /// Where a run that is not restored starts in each partition.
    #[serde(default)]
    pub start: Start,
    #[serde(default)]
    pub format: KafkaFormat,
    /// With `format: csv`: the names of the columns, which make each
    /// record a map; without them a record is a list of its fields.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Each record as a map of `value` (the decoded message) and the
    /// message's `key`, `topic`, `partition`, `offset`, `timestamp`
    /// (milliseconds since the epoch) and `headers`.
    #[serde(default)]
    pub metadata: bool,
    /// How often the topics are listed again for new partitions (and, with
    /// `topic_pattern`, new topics); `0s` never.
    #[serde(default = "default_discovery_interval")]
    pub discovery_interval: Duration,
    /// Read up to the end the partitions had when the job started, then
    /// end (Flink's bounded mode), instead of reading forever; a restore
    /// keeps those ends.
    #[serde(default)]
    pub bounded: bool,
    /// The largest message value kept, in bytes; a larger one is a bad
    /// record for `on_error`.
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: u32,
    /// Client properties passed to librdkafka as they are
    /// (`security.protocol`, `sasl.mechanism`, `sasl.username`, …).
    /// Values of secret ones (`sasl.password`, …) never appear in output.
    #[serde(default)]
    pub librdkafka_options: IndexMap<String, String>,
}

/// Where a partition is first read from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Start {
    /// The oldest record still kept.
    #[default]
    Earliest,
    /// Only records written after the run starts.
    Latest,
    /// The group's committed offsets; the oldest record where it has none.
    Committed,
    /// The first record at or after this time (RFC 3339, like
    /// `2026-12-01T08:00:00Z`).
    Timestamp(String),
}

/// How a message's value becomes a record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KafkaFormat {
    /// The value as a string (UTF-8).
    #[default]
    Text,
    /// The value as a JSON document.
    Json,
    /// The value as one line of comma-separated fields.
    Csv,
}

/// Flink's default partition discovery interval.
fn default_discovery_interval() -> Duration {
    Duration(std::time::Duration::from_secs(300))
}

/// Properties this source sets itself from its own settings.
const OWN_PROPERTIES: [(&str, &str); 6] = [
    ("bootstrap.servers", "bootstrap_servers"),
    ("group.id", "group_id"),
    ("enable.auto.commit", "nothing: offsets are committed when checkpoints complete"),
    ("enable.auto.offset.store", "nothing: offsets are committed when checkpoints complete"),
    ("auto.offset.reset", "start"),
    (
        "isolation.level",
        "nothing: the source reads committed records only, so that what an exactly-once producer aborts is never read",
    ),
];

impl Kafka {
    /// The consumer group, its default filled in.
    pub fn group(&self, job: &str, node: &str) -> String {
        self.group_id
            .clone()
            .unwrap_or_else(|| format!("dataflow-{job}-{node}"))
    }

    /// The time of `start: timestamp`, in milliseconds since the epoch.
    pub fn start_millis(&self) -> Option<i64> {
        match &self.start {
            Start::Timestamp(t) => chrono::DateTime::parse_from_rfc3339(t)
                .ok()
                .map(|t| t.timestamp_millis()),
            _ => None,
        }
    }
}

impl SourceType for Kafka {
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Box<dyn PlannedSource> {
        super::check_max_record_bytes(cx, self.max_record_bytes);
        let name = cx.name().to_owned();
        crate::kafka::check_built(cx, "source");
        crate::kafka::check_servers(cx, &self.bootstrap_servers);
        match (self.topics.is_empty(), &self.topic_pattern) {
            (true, None) => {
                let d = Diagnostic::error(
                    "missing-field",
                    format!("source `{name}` names no topic: set `topics` or `topic_pattern`"),
                )
                .at(cx.key_span(None), "no topic");
                cx.error(d);
            }
            (false, Some(_)) => {
                let d = Diagnostic::error(
                    "conflicting-fields",
                    format!("source `{name}` has both `topics` and `topic_pattern`: keep one"),
                )
                .at(cx.span("topic_pattern"), "and `topics`");
                cx.error(d);
            }
            (true, Some(pattern)) => {
                if let Err(e) = regex::Regex::new(pattern) {
                    let d = Diagnostic::error(
                        "invalid-pattern",
                        format!("`topic_pattern` of source `{name}` is not a regular expression: {e}"),
                    )
                    .at(cx.span("topic_pattern"), "invalid");
                    cx.error(d);
                }
            }
            (false, None) => {
                for (i, topic) in self.topics.iter().enumerate() {
                    crate::kafka::check_topic(cx, &["topics", &i.to_string()], topic);
                }
            }
        }
        if let (Start::Timestamp(t), None) = (&self.start, self.start_millis()) {
            let d = Diagnostic::error(
                "invalid-value",
                format!("`start` of source `{name}` is not an RFC 3339 time: `{t}`"),
            )
            .at(cx.span_in(&["start", "timestamp"]), "expected a time")
            .help("e.g. `start: {timestamp: 2026-12-01T08:00:00Z}`");
            cx.error(d);
        }
        if !self.columns.is_empty() && self.format != KafkaFormat::Csv {
            let d = Diagnostic::error(
                "conflicting-fields",
                format!("source `{name}` has `columns`, which only `format: csv` reads"),
            )
            .at(cx.span("columns"), "unused");
            cx.error(d);
        }
        if self.group_id.as_deref().is_some_and(|g| g.trim().is_empty()) {
            // librdkafka takes an empty group, then refuses every commit.
            let d = Diagnostic::error(
                "invalid-value",
                format!("`group_id` of source `{name}` is empty"),
            )
            .at(cx.span("group_id"), "empty")
            .help("leave it out for `dataflow-<job>-<source>`");
            cx.error(d);
        }
        crate::kafka::check_properties(cx, &self.librdkafka_options, &OWN_PROPERTIES);
        let mut planned = self.clone();
        planned.group_id = Some(self.group(&cx.spec().job.name, &name));
        Box::new(planned)
    }
}

impl PlannedSource for Kafka {
    /// A checkpoint records the offset of every partition read.
    fn replayable(&self) -> bool {
        true
    }

    fn secrets(&self) -> Vec<&str> {
        crate::kafka::secret_values(&self.librdkafka_options)
    }

    #[cfg(feature = "kafka")]
    fn build(&self, at: Instance, cancel: &Cancel) -> Result<Box<dyn Source>, OpError> {
        Ok(Box::new(crate::operators::sources::kafka::KafkaSource::open(
            self,
            at,
            cancel.clone(),
        )?))
    }

    #[cfg(not(feature = "kafka"))]
    fn build(&self, _: Instance, _: &Cancel) -> Result<Box<dyn Source>, OpError> {
        Err(OpError::Bug("a Kafka source in a build without Kafka"))
    }
}
