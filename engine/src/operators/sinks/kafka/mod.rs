//! The `kafka` sink. At least once: an idempotent producer, flushed at
//! every barrier so that a checkpoint completes only once every message
//! before it is acknowledged. Exactly once: [`transactional`].

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::{Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

use crate::kafka::client::{config, Context, KafkaError, DEADLINE};
use crate::nodes::sinks::kafka::{Kafka, KafkaOutput};
use crate::operators::{Sink, SinkError};
use crate::value::{Name, Value};

pub mod transactional;

/// How long a flush may wait for the brokers' acknowledgements before
/// the sink fails: librdkafka's own delivery timeout (`message.timeout.ms`,
/// 5 minutes by default) usually ends it first, with the reason.
const FLUSH_DEADLINE: Duration = Duration::from_secs(300);

/// How long a flush serves acknowledgements before it asks again whether
/// all have come.
const FLUSH_POLL: Duration = Duration::from_millis(1);

/// The producer's context: the client's, plus the first message the
/// brokers refused for good (after librdkafka's retries), and for a
/// transactional producer where its messages landed.
#[derive(Clone)]
pub(crate) struct Delivery {
    client: Context,
    /// Why, and whether for the message's size.
    failed: Arc<Mutex<Option<(String, bool)>>>,
    landed: Option<Arc<Landed>>,
}

/// Per partition of the topic, the offset of the first message of the
/// open transaction and how many were acknowledged: atomics, as the
/// acknowledgements come on the sink's own thread but through a context
/// librdkafka requires to be shared.
pub(crate) struct Landed {
    partitions: Vec<(AtomicI64, AtomicU64)>,
    /// A message went to a partition the topic did not have when the sink
    /// opened.
    grew: AtomicBool,
}

impl Landed {
    fn new(partitions: usize) -> Landed {
        let landed = Landed {
            partitions: (0..partitions)
                .map(|_| (AtomicI64::new(0), AtomicU64::new(0)))
                .collect(),
            grew: AtomicBool::new(false),
        };
        landed.reset();
        landed
    }

    fn reset(&self) {
        for (first, count) in &self.partitions {
            first.store(i64::MAX, Ordering::Relaxed);
            count.store(0, Ordering::Relaxed);
        }
    }

    fn note(&self, partition: i32, offset: i64) {
        match usize::try_from(partition)
            .ok()
            .and_then(|p| self.partitions.get(p))
        {
            Some((first, count)) => {
                first.fetch_min(offset, Ordering::Relaxed);
                count.fetch_add(1, Ordering::Relaxed);
            }
            None => self.grew.store(true, Ordering::Relaxed),
        }
    }

    /// `(partition, first offset, count)` of every partition written.
    fn written(&self) -> Vec<(i32, i64, u64)> {
        self.partitions
            .iter()
            .enumerate()
            .filter_map(|(p, (first, count))| {
                let count = count.load(Ordering::Relaxed);
                (count > 0).then(|| (p as i32, first.load(Ordering::Relaxed), count))
            })
            .collect()
    }
}

impl ClientContext for Delivery {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.client.log(level, facility, message);
    }

    fn error(&self, error: RdError, reason: &str) {
        self.client.error(error, reason);
    }
}

impl ProducerContext for Delivery {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) => {
                if let Some(landed) = &self.landed {
                    landed.note(message.partition(), message.offset());
                }
            }
            Err((e, _)) => {
                if let Ok(mut failed) = self.failed.lock() {
                    failed.get_or_insert_with(|| (self.client.mask(&e.to_string()), too_large(e)));
                }
            }
        }
    }
}

/// Whether a message was refused for its size, by the client
/// (`message.max.bytes`) or by the brokers (the topic's
/// `max.message.bytes`): sending it again cannot help.
fn too_large(e: &RdError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::MessageBatchTooLarge)
    )
}

/// A producer and what it needs to say what went wrong.
pub(crate) struct Writer {
    pub(crate) producer: BaseProducer<Delivery>,
    context: Delivery,
    pub(crate) topic: String,
    pub(crate) servers: String,
}

impl Writer {
    /// A producer for `spec`'s topic with the options `own` on top of the
    /// user's; with `landed`, counting where its messages land.
    pub(crate) fn open(
        spec: &Kafka,
        config: &ClientConfig,
        landed: Option<Arc<Landed>>,
    ) -> Result<Writer, KafkaError> {
        let context = Delivery {
            client: Context::new(&spec.librdkafka_options),
            failed: Arc::default(),
            landed,
        };
        let producer: BaseProducer<Delivery> = config
            .create_with_context(context.clone())
            .map_err(|e| KafkaError::Config {
                servers: spec.bootstrap_servers.clone(),
                why: context.client.mask(&e.to_string()),
            })?;
        Ok(Writer {
            producer,
            context,
            topic: spec.topic.clone(),
            servers: spec.bootstrap_servers.clone(),
        })
    }

    /// The number of partitions of the topic, which must exist: a sink
    /// that waited for one, message after message, would hold the job
    /// with nothing said.
    pub(crate) fn partitions(&self) -> Result<usize, KafkaError> {
        let metadata = self
            .producer
            .client()
            .fetch_metadata(Some(&self.topic), DEADLINE)
            .map_err(|e| self.failed("look up the topic", e))?;
        let found = metadata.topics().iter().find(|t| {
            t.name() == self.topic
                && t.error().is_none_or(|c| {
                    RDKafkaErrorCode::from(c) != RDKafkaErrorCode::UnknownTopicOrPartition
                })
        });
        match found {
            Some(t) => Ok(t.partitions().len()),
            None => Err(KafkaError::NoTopic {
                topic: self.topic.clone(),
                servers: self.servers.clone(),
            }),
        }
    }

    pub(crate) fn failed(&self, action: &'static str, e: RdError) -> KafkaError {
        KafkaError::Client {
            action,
            servers: self.servers.clone(),
            why: self.context.client.mask(&e.to_string()),
            cause: self.context.client.last_error(),
        }
    }

    pub(crate) fn sink_error(&self, action: &'static str, e: RdError) -> SinkError {
        SinkError::Kafka(Box::new(self.failed(action, e)))
    }

    /// The first message the brokers refused, as the sink's failure.
    pub(crate) fn delivered(&self) -> Result<(), SinkError> {
        let failed = self.context.failed.lock().ok().and_then(|f| f.clone());
        match failed {
            None => Ok(()),
            Some((why, true)) => Err(self.too_large(why)),
            Some((why, false)) => Err(SinkError::Kafka(Box::new(KafkaError::Client {
                action: "write to",
                servers: format!("{} (topic `{}`)", self.servers, self.topic),
                why,
                cause: self.context.client.last_error(),
            }))),
        }
    }

    fn too_large(&self, why: String) -> SinkError {
        SinkError::Kafka(Box::new(KafkaError::TooLarge {
            topic: self.topic.clone(),
            servers: self.servers.clone(),
            why,
        }))
    }

    /// Sends one message; a full queue is backpressure: it waits for
    /// acknowledgements.
    fn send(
        &self,
        value: &str,
        key: Option<&str>,
        headers: Option<&OwnedHeaders>,
    ) -> Result<(), SinkError> {
        let mut message = BaseRecord::<str, str>::to(&self.topic).payload(value);
        if let Some(key) = key {
            message = message.key(key);
        }
        if let Some(headers) = headers {
            message = message.headers(headers.clone());
        }
        while let Err((e, back)) = self.producer.send(message) {
            if too_large(&e) {
                return Err(self.too_large(self.context.client.mask(&e.to_string())));
            }
            if e.rdkafka_error_code() != Some(RDKafkaErrorCode::QueueFull) {
                return Err(self.sink_error("write to", e));
            }
            self.producer.poll(Duration::from_millis(10));
            self.delivered()?;
            message = back;
        }
        Ok(())
    }

    /// Waits until every message sent is acknowledged or refused.
    ///
    /// rdkafka's `flush` serves acknowledgements in polls of up to 100 ms
    /// that last their whole length, so every barrier waited out the rest
    /// of a poll after its last acknowledgement, with the chain stopped.
    /// Asked with no wait, it only starts sending what lingers and says
    /// whether all is acknowledged; the acknowledgements are served here,
    /// [`FLUSH_POLL`] at a time.
    pub(crate) fn flush(&self) -> Result<(), SinkError> {
        let started = Instant::now();
        loop {
            match self.producer.flush(Duration::ZERO) {
                Ok(()) => break,
                Err(RdError::Flush(RDKafkaErrorCode::OperationTimedOut))
                    if started.elapsed() < FLUSH_DEADLINE =>
                {
                    self.producer.poll(FLUSH_POLL);
                    self.delivered()?
                }
                Err(e) => return Err(self.sink_error("flush messages to", e)),
            }
        }
        self.delivered()
    }
}

/// How a record becomes a message's value and key; its buffers are reused
/// from record to record.
struct Encoder {
    key: Option<Vec<Name>>,
    format: KafkaOutput,
    value: String,
    key_text: String,
}

impl Encoder {
    fn new(spec: &Kafka) -> Encoder {
        Encoder {
            key: spec
                .key
                .as_ref()
                .map(|k| k.split('.').map(crate::value::intern).collect()),
            format: spec.format,
            value: String::new(),
            key_text: String::new(),
        }
    }

    /// Encodes `record`: its value, and its key if it has one.
    fn encode(&mut self, record: &Value) -> (&str, Option<&str>) {
        self.value.clear();
        match self.format {
            KafkaOutput::Json => record.write_json(&mut self.value),
            KafkaOutput::Text => record.write_text(&mut self.value),
        }
        self.key_text.clear();
        let keyed = match self.key.as_ref().and_then(|path| record.path(path)) {
            Some(key) => {
                key.write_text(&mut self.key_text);
                true
            }
            None => false,
        };
        (&self.value, keyed.then_some(self.key_text.as_str()))
    }
}

pub struct KafkaSink {
    writer: Writer,
    encoder: Encoder,
}

impl KafkaSink {
    pub fn open(spec: &Kafka) -> Result<KafkaSink, KafkaError> {
        // Producers may create the topics they name; a mistyped one would
        // then be created instead of refused.
        let own = [
            ("enable.idempotence", "true"),
            ("allow.auto.create.topics", "false"),
        ];
        let config = config(&spec.bootstrap_servers, &[], &spec.librdkafka_options, &own);
        let writer = Writer::open(spec, &config, None)?;
        writer.partitions()?;
        Ok(KafkaSink {
            writer,
            encoder: Encoder::new(spec),
        })
    }
}

impl Sink for KafkaSink {
    fn write(&mut self, batch: &[Value]) -> Result<(), SinkError> {
        for record in batch {
            let (value, key) = self.encoder.encode(record);
            self.writer.send(value, key, None)?;
        }
        self.writer.producer.poll(Duration::ZERO);
        self.writer.delivered()
    }

    fn on_barrier(&mut self, _id: u64) -> Result<(), SinkError> {
        self.writer.flush()
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.writer.flush()
    }
}
