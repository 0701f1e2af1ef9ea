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
}

/// Properties this sink sets itself.
const OWN_PROPERTIES: [(&str, &str); 3] = [
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
        Box::new(self.clone())
    }
}

impl PlannedSink for Kafka {
    fn delivery(&self) -> Delivery {
        match self.delivery {
            KafkaDelivery::AtLeastOnce => Delivery::AtLeastOnce,
        }
    }

    fn latency_field(&self) -> Option<&str> {
        self.latency_field.as_deref()
    }

    fn secrets(&self) -> Vec<&str> {
        crate::kafka::secret_values(&self.librdkafka_options)
    }

    #[cfg(feature = "kafka")]
    fn build(&self, _: Instance, _: bool) -> Result<Box<dyn Sink>, OpError> {
        Ok(Box::new(crate::operators::sinks::kafka::KafkaSink::open(self)?))
    }

    #[cfg(not(feature = "kafka"))]
    fn build(&self, _: Instance, _: bool) -> Result<Box<dyn Sink>, OpError> {
        Err(OpError::Bug("a Kafka sink in a build without Kafka"))
    }
}
