//! The librdkafka clients of the `kafka` source and sink: their
//! configuration, the errors they report, and the questions a source asks
//! brokers (which partitions there are, where to start in each).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indexmap::IndexMap;
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError as RdError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::error::{Class, Classify};

/// How long a question to the brokers may take: librdkafka retries
/// unreachable brokers by itself, so without a deadline a dead cluster
/// would hold the job for good.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// Why talking to Kafka failed.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("cannot {action} on the Kafka brokers {servers}: {why}{}", cause_of(.cause))]
    Client {
        action: &'static str,
        servers: String,
        /// librdkafka's error, as text: its error type is large, and
        /// every source and sink call's result would carry its size.
        why: String,
        /// The last errors librdkafka reported on its own (a refused
        /// connection, a failed authentication), which say why the
        /// request itself only timed out.
        cause: Option<String>,
    },
    /// librdkafka refused the client's options (`librdkafka_options`).
    #[error("cannot create a Kafka client for {servers}: {why}")]
    Config { servers: String, why: String },
    #[error("the Kafka topic `{topic}` does not exist on {servers}")]
    NoTopic { topic: String, servers: String },
    #[error("no Kafka topic on {servers} matches `{pattern}`")]
    NoMatch { pattern: String, servers: String },
    #[error("the checkpoint's record of the transactions of sink `{node}` is damaged: {why}")]
    Damaged { node: String, why: String },
    /// A restore would write again what the topic already holds.
    #[error("the topic `{topic}` holds output of sink `{node}` that is not in chk-{checkpoint}'s past (producer `{producer}` committed the output of chk-{marker}): a restore from chk-{checkpoint} would write it again, and Kafka cannot take messages back; restore a newer checkpoint (`--from latest`), or write to another topic")]
    NewerOutput {
        node: String,
        topic: String,
        producer: String,
        marker: u64,
        checkpoint: u64,
    },
    /// The records of a transaction to write again are no longer there.
    #[error("cannot write again a transaction the checkpoint recorded: partition {partition} of `{topic}` holds {found} of its {count} records from offset {first} (deleted by the topic's retention?)")]
    Gone {
        topic: String,
        partition: i32,
        first: i64,
        count: u64,
        found: u64,
    },
    /// A record too large for the brokers: the same record fails again.
    #[error("a message for the Kafka topic `{topic}` on {servers} is larger than allowed: {why} (raise `message.max.bytes` in `librdkafka_options` and the topic's `max.message.bytes`, or write smaller records)")]
    TooLarge {
        topic: String,
        servers: String,
        why: String,
    },
    #[error("a bug in dataflow: {0}")]
    Bug(&'static str),
}

fn cause_of(cause: &Option<String>) -> String {
    match cause {
        Some(cause) => format!(" (librdkafka reported: {cause})"),
        None => String::new(),
    }
}

impl Classify for KafkaError {
    fn class(&self) -> Class {
        match self {
            KafkaError::Config { .. }
            | KafkaError::NoTopic { .. }
            | KafkaError::NoMatch { .. }
            | KafkaError::NewerOutput { .. }
            | KafkaError::TooLarge { .. } => Class::User,
            KafkaError::Client { .. } | KafkaError::Damaged { .. } | KafkaError::Gone { .. } => {
                Class::External
            }
            KafkaError::Bug(_) => Class::Bug,
        }
    }
}

/// A client's context: it keeps the last error librdkafka reported
/// outside any request, for the message of a request that then failed,
/// and sends librdkafka's own log lines to ours, with every secret of
/// the client's options masked (librdkafka repeats a property's value in
/// some of its errors).
#[derive(Clone, Default)]
pub struct Context {
    /// The last few distinct errors, oldest first: the last alone is
    /// often only "1/1 brokers are down", after the refusal that says why.
    errors: Arc<Mutex<VecDeque<String>>>,
    secrets: Arc<Vec<String>>,
}

impl Context {
    /// The context of a client given `options`.
    pub fn new(options: &IndexMap<String, String>) -> Context {
        Context {
            errors: Arc::default(),
            secrets: Arc::new(
                super::secret_values(options)
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            ),
        }
    }

    /// `text` with every secret value masked.
    pub fn mask(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_owned(), |text, secret| {
            text.replace(secret.as_str(), "***")
        })
    }

    /// The errors librdkafka reported lately, for a failed request's message.
    pub fn last_error(&self) -> Option<String> {
        let errors = self.errors.lock().ok()?;
        (!errors.is_empty()).then(|| Vec::from(errors.clone()).join("; "))
    }

    fn note(&self, error: String) {
        if let Ok(mut errors) = self.errors.lock() {
            errors.retain(|e| *e != error);
            if errors.len() == 3 {
                errors.pop_front();
            }
            errors.push_back(error);
        }
    }
}

/// A librdkafka log line without the thread it names (`[thrd:main]: `).
fn without_thread(message: &str) -> &str {
    match message.split_once("]: ") {
        Some((thread, rest)) if thread.starts_with("[thrd:") => rest,
        _ => message,
    }
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                let message = self.mask(message);
                tracing::error!("librdkafka {facility}: {message}");
                self.note(message);
            }
            // An offset reset after a failed fetch: the records from the
            // offset a source was to read next are gone from the topic,
            // and it reads on from the oldest kept. Records were lost
            // before the job could read them, which a user must hear of.
            RDKafkaLogLevel::Warning if facility == "OFFSET" => tracing::warn!(
                "Kafka: {}; records this job had not read yet are no longer in the topic (deleted by its retention, or truncated), and it reads on from the oldest kept",
                self.mask(without_thread(message))
            ),
            RDKafkaLogLevel::Warning => {
                tracing::debug!("librdkafka {facility}: {}", self.mask(message))
            }
            _ => {}
        }
    }

    fn error(&self, error: RdError, reason: &str) {
        self.note(self.mask(&format!("{error}: {reason}")));
    }
}

impl ConsumerContext for Context {}

/// A client's configuration: the brokers, the node's `defaults`, the
/// user's properties over those, then what the node sets itself (`own`).
pub fn config(
    servers: &str,
    defaults: &[(&str, &str)],
    properties: &IndexMap<String, String>,
    own: &[(&str, &str)],
) -> ClientConfig {
    let mut config = ClientConfig::new();
    // rust-rdkafka takes the level from the `log` crate, which dataflow
    // does not use (its default passes errors only); [`Context::log`]
    // chooses what to show of warnings.
    config.set_log_level(RDKafkaLogLevel::Warning);
    config.set("bootstrap.servers", servers);
    for (k, v) in defaults {
        config.set(*k, *v);
    }
    for (k, v) in properties {
        config.set(k, v);
    }
    for (k, v) in own {
        config.set(*k, *v);
    }
    config
}

/// A consumer as a source reads with, or as a sink asks questions with.
pub struct Reader {
    /// Shared with the thread that commits offsets.
    pub consumer: Arc<BaseConsumer<Context>>,
    pub context: Context,
    pub servers: String,
}

impl Reader {
    pub fn new(
        config: &ClientConfig,
        servers: &str,
        context: Context,
    ) -> Result<Reader, KafkaError> {
        let consumer = config
            .create_with_context(context.clone())
            .map_err(|source| KafkaError::Config {
                servers: servers.to_owned(),
                why: context.mask(&source.to_string()),
            })?;
        Ok(Reader {
            consumer: Arc::new(consumer),
            context,
            servers: servers.to_owned(),
        })
    }

    /// The error of a failed request, with its cause.
    pub fn failed(&self, action: &'static str, source: RdError) -> KafkaError {
        KafkaError::Client {
            action,
            servers: self.servers.clone(),
            why: self.context.mask(&source.to_string()),
            cause: self.context.last_error(),
        }
    }

    /// Every partition of the topics named (each must exist) or of those
    /// whose name matches `pattern`, sorted.
    pub fn partitions(
        &self,
        topics: &[String],
        pattern: Option<&regex::Regex>,
    ) -> Result<Vec<(String, i32)>, KafkaError> {
        let metadata = self.consumer.fetch_metadata(None, DEADLINE).map_err(|e| {
            // librdkafka hands its errors (a refused connection) to the
            // context when polled: poll, unless records are assigned,
            // which a poll would take.
            if self.consumer.assignment().is_ok_and(|a| a.count() == 0) {
                let _ = self.consumer.poll(Duration::ZERO);
            }
            self.failed("list the topics", e)
        })?;
        let mut found = Vec::new();
        for topic in metadata.topics() {
            let wanted = match pattern {
                Some(p) => p.is_match(topic.name()),
                None => topics.iter().any(|t| t == topic.name()),
            };
            if !wanted {
                continue;
            }
            if let Some(code) = topic.error() {
                let code = RDKafkaErrorCode::from(code);
                if code != RDKafkaErrorCode::UnknownTopicOrPartition {
                    return Err(self.failed("list the topics", RdError::MetadataFetch(code)));
                }
                continue;
            }
            found.extend(
                topic
                    .partitions()
                    .iter()
                    .map(|p| (topic.name().to_owned(), p.id())),
            );
        }
        if pattern.is_none() {
            if let Some(missing) = topics.iter().find(|t| !found.iter().any(|(f, _)| f == *t)) {
                return Err(KafkaError::NoTopic {
                    topic: missing.clone(),
                    servers: self.servers.clone(),
                });
            }
        }
        found.sort();
        Ok(found)
    }

    /// The oldest offset kept and the next one to be written.
    pub fn bounds(&self, topic: &str, partition: i32) -> Result<(i64, i64), KafkaError> {
        self.consumer
            .fetch_watermarks(topic, partition, DEADLINE)
            .map_err(|e| self.failed("ask for a partition's offsets", e))
    }

    /// The group's committed offset in each partition, where it has one.
    pub fn committed(&self, partitions: &[(String, i32)]) -> Result<Vec<Option<i64>>, KafkaError> {
        let mut tpl = TopicPartitionList::new();
        for (topic, partition) in partitions {
            tpl.add_partition(topic, *partition);
        }
        let committed = self
            .consumer
            .committed_offsets(tpl, DEADLINE)
            .map_err(|e| self.failed("read the group's committed offsets", e))?;
        Ok(partitions
            .iter()
            .map(
                |(topic, partition)| match committed.find_partition(topic, *partition) {
                    Some(p) => match p.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    },
                    None => None,
                },
            )
            .collect())
    }

    /// The offset of the first record at or after `millis` in each
    /// partition; the end where there is none.
    pub fn at_time(
        &self,
        partitions: &[(String, i32)],
        millis: i64,
    ) -> Result<Vec<i64>, KafkaError> {
        let mut tpl = TopicPartitionList::new();
        for (topic, partition) in partitions {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(millis))
                .map_err(|e| self.failed("look up offsets by time", e))?;
        }
        let found = self
            .consumer
            .offsets_for_times(tpl, DEADLINE)
            .map_err(|e| self.failed("look up offsets by time", e))?;
        partitions
            .iter()
            .map(|(topic, partition)| {
                match found.find_partition(topic, *partition).map(|p| p.offset()) {
                    Some(Offset::Offset(o)) => Ok(o),
                    _ => Ok(self.bounds(topic, *partition)?.1),
                }
            })
            .collect()
    }
}
