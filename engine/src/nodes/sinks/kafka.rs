//! `type: kafka`: records written to a Kafka topic.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::check_latency_field;
use crate::diag::Diagnostic;
use crate::nodes::{Delivery, Instance, PlannedSink, SinkType};
use crate::operators::{OpError, Sink};
use crate::plan::NodeCx;

/// Records written to a Kafka topic, one message each, with an
/// idempotent producer.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Kafka {
    /// Brokers to start from, `host:port`, comma-separated.
    pub bootstrap_servers: String,
    /// The topic written to; it must exist.
    pub topic: String,
    /// The field (or path, `user.id`) whose value is each message's key,
    /// which picks its partition; a string as itself, any other value as
    /// JSON, a missing field no key. Without it, messages have no key.
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub format: KafkaOutput,
    /// What a restore promises of the messages written.
    #[serde(default)]
    pub delivery: KafkaDelivery,
    /// With `delivery: exactly_once`: the start of the transactional ids
    /// of the sink's producers (`<prefix>-<instance>-<slot>`), which must
    /// differ from every other writer's on the cluster and stay the same
    /// across the runs of the job. Default `dataflow-<job>-<sink>`.
    #[serde(default)]
    pub transactional_id_prefix: Option<String>,
    /// Client properties passed to librdkafka as they are
    /// (`compression.type`, `security.protocol`, `sasl.username`, …).
    /// Values of secret ones (`sasl.password`, …) never appear in output.
    #[serde(default)]
    pub librdkafka_options: IndexMap<String, String>,
    /// As for every sink: the field latency is measured from.
    #[serde(default)]
    pub latency_field: Option<String>,
}

/// How a record becomes a message's value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KafkaOutput {
    /// The record as JSON.
    #[default]
    Json,
    /// A string as itself, any other value as JSON.
    Text,
}

/// What the sink promises after failures and restores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KafkaDelivery {
    /// Every message is acknowledged by the brokers before the checkpoint
    /// it precedes completes: none is lost, and those written after the
    /// checkpoint a restore resumes from are written again.
    #[default]
    AtLeastOnce,
    /// Each checkpoint's messages are written in Kafka transactions,
    /// committed when the checkpoint completes: a `read_committed` reader
    /// sees every message once, after any failure and restore.
    ExactlyOnce,
}

/// Properties this sink sets itself.
const OWN_PROPERTIES: [(&str, &str); 4] = [
    (
        "transactional.id",
        "transactional_id_prefix (with `delivery: exactly_once`)",
    ),
    ("bootstrap.servers", "bootstrap_servers"),
    (
        "allow.auto.create.topics",
        "nothing: the topic must exist, so that a mistyped one is refused",
    ),
    (
        "enable.idempotence",
        "nothing: the producer is idempotent, which retries need to write no message twice",
    ),
];

impl SinkType for Kafka {
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Box<dyn PlannedSink> {
        check_latency_field(cx, self.latency_field.as_deref());
        crate::kafka::check_built(cx, "sink");
        crate::kafka::check_servers(cx, &self.bootstrap_servers);
        crate::kafka::check_topic(cx, &["topic"], &self.topic);
        if let Some(key) = &self.key {
            if !crate::expr::is_field_path(key) {
                let name = cx.name();
                let d = Diagnostic::error(
                    "invalid-field",
                    format!("`key` of sink `{name}` must be a field or a path, not `{key}`"),
                )
                .at(cx.span("key"), "expected a field such as `word` or `user.id`");
                cx.error(d);
            }
        }
        crate::kafka::check_properties(cx, &self.librdkafka_options, &OWN_PROPERTIES);
        let name = cx.name().to_owned();
        if self.delivery == KafkaDelivery::ExactlyOnce && cx.spec().checkpoint.is_none() {
            let d = Diagnostic::error(
                "needs-checkpoints",
                format!("sink `{name}` writes exactly once, which needs checkpoints: its transactions commit when one completes"),
            )
            .at(cx.span("delivery"), "without a `checkpoint:` section")
            .help("add e.g. `checkpoint: {interval: 10s}`, or use `delivery: at_least_once`");
            cx.error(d);
        }
        if let Some(prefix) = &self.transactional_id_prefix {
            if prefix.trim().is_empty() {
                let d = Diagnostic::error(
                    "invalid-value",
                    format!("`transactional_id_prefix` of sink `{name}` is empty"),
                )
                .at(cx.span("transactional_id_prefix"), "empty");
                cx.error(d);
            }
        }
        let mut planned = self.clone();
        planned.transactional_id_prefix = Some(
            self.transactional_id_prefix
                .clone()
                .unwrap_or_else(|| format!("dataflow-{}-{name}", cx.spec().job.name)),
        );
        Box::new(planned)
    }
}

impl Kafka {
    /// The transactional ids' prefix, its default filled in by `plan`.
    pub fn prefix(&self) -> &str {
        self.transactional_id_prefix.as_deref().unwrap_or("dataflow")
    }
}

impl PlannedSink for Kafka {
    fn delivery(&self) -> Delivery {
        match self.delivery {
            KafkaDelivery::AtLeastOnce => Delivery::AtLeastOnce,
            KafkaDelivery::ExactlyOnce => Delivery::TwoPhaseCommit,
        }
    }

    fn latency_field(&self) -> Option<&str> {
        self.latency_field.as_deref()
    }

    fn secrets(&self) -> Vec<&str> {
        crate::kafka::secret_values(&self.librdkafka_options)
    }

    #[cfg(feature = "kafka")]
    fn build(&self, at: Instance, _: bool) -> Result<Box<dyn Sink>, OpError> {
        use crate::operators::sinks::kafka::{transactional::TransactionalKafkaSink, KafkaSink};
        Ok(match self.delivery {
            KafkaDelivery::AtLeastOnce => Box::new(KafkaSink::open(self)?),
            KafkaDelivery::ExactlyOnce => Box::new(TransactionalKafkaSink::open(
                self,
                self.prefix(),
                at.index,
            )?),
        })
    }

    /// Exactly once: fences what earlier runs left open and writes again
    /// what the restored checkpoint pre-committed and no one committed.
    #[cfg(feature = "kafka")]
    fn recover(
        &self,
        at: &crate::nodes::SinkRestore<'_>,
    ) -> Result<Option<String>, crate::operators::SinkError> {
        match self.delivery {
            KafkaDelivery::AtLeastOnce => Ok(None),
            KafkaDelivery::ExactlyOnce => crate::kafka::recovery::recover(self, at)
                .map_err(|e| crate::operators::SinkError::Kafka(Box::new(e))),
        }
    }

    #[cfg(not(feature = "kafka"))]
    fn build(&self, _: Instance, _: bool) -> Result<Box<dyn Sink>, OpError> {
        Err(OpError::Bug("a Kafka sink in a build without Kafka"))
    }
}
