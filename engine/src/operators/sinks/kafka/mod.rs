//! The `kafka` sink. At least once: an idempotent producer, flushed at
//! every barrier so that a checkpoint completes only once every message
//! before it is acknowledged. Exactly once: [`transactional`].

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::Message;
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

/// Where the open transaction's messages landed: per partition of the
/// topic, runs of consecutive offsets. The run each partition is
/// extending is kept in atomics; a message that does not continue it
/// (another producer's or a transaction marker came between) ends it
/// into `ended`, the only lock, taken once per run. Atomics, as
/// librdkafka requires the context to be shared, though acknowledgements
/// come only on the thread that polls, the sink's own.
pub(crate) struct Landed {
    /// Per partition: the first offset of the run being extended, and
    /// its length.
    current: Vec<(AtomicI64, AtomicU64)>,
    ended: Mutex<Vec<(i32, i64, u64)>>,
    /// A message went to a partition the topic did not have when the sink
    /// opened.
    grew: AtomicBool,
}

impl Landed {
    pub(crate) fn new(partitions: usize) -> Landed {
        Landed {
            current: (0..partitions)
                .map(|_| (AtomicI64::new(0), AtomicU64::new(0)))
                .collect(),
            ended: Mutex::default(),
            grew: AtomicBool::new(false),
        }
    }

    fn ended(&self) -> std::sync::MutexGuard<'_, Vec<(i32, i64, u64)>> {
        // A push cannot leave the list half-changed.
        self.ended
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn reset(&self) {
        for (_, count) in &self.current {
            count.store(0, Ordering::Relaxed);
        }
        self.ended().clear();
    }

    fn note(&self, partition: i32, offset: i64) {
        let Some((first, count)) = usize::try_from(partition)
            .ok()
            .and_then(|p| self.current.get(p))
        else {
            self.grew.store(true, Ordering::Relaxed);
            return;
        };
        let (f, n) = (first.load(Ordering::Relaxed), count.load(Ordering::Relaxed));
        if n > 0 && crate::kafka::transactions::run_end(f, n) == offset {
            count.store(n + 1, Ordering::Relaxed);
            return;
        }
        if n > 0 {
            self.ended().push((partition, f, n));
        }
        first.store(offset, Ordering::Relaxed);
        count.store(1, Ordering::Relaxed);
    }

    /// `(partition, first offset, count)` of every run, in offset order.
    fn written(&self) -> Vec<(i32, i64, u64)> {
        let mut runs = self.ended().clone();
        for (p, (first, count)) in self.current.iter().enumerate() {
            let n = count.load(Ordering::Relaxed);
            if n > 0 {
                runs.push((p as i32, first.load(Ordering::Relaxed), n));
            }
        }
        crate::kafka::transactions::joined(runs)
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
    fn send(&self, value: &[u8], key: Option<&[u8]>) -> Result<(), SinkError> {
        let mut message = BaseRecord::<[u8], [u8]>::to(&self.topic).payload(value);
        if let Some(key) = key {
            message = message.key(key);
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
    value: Vec<u8>,
    key_text: Vec<u8>,
}

impl Encoder {
    fn new(spec: &Kafka) -> Encoder {
        Encoder {
            key: spec
                .key
                .as_ref()
                .map(|k| k.split('.').map(crate::value::intern).collect()),
            format: spec.format,
            value: Vec::new(),
            key_text: Vec::new(),
        }
    }

    /// Encodes `record`: its value, and its key if it has one.
    fn encode(&mut self, record: &Value) -> (&[u8], Option<&[u8]>) {
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
        (&self.value, keyed.then_some(self.key_text.as_slice()))
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
            self.writer.send(value, key)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Acknowledged offsets become runs of consecutive ones, per
    /// partition; a partition the topic did not have is noticed.
    #[test]
    fn landed_offsets_become_runs() {
        let landed = Landed::new(2);
        for offset in [10, 11, 12, 20, 21] {
            landed.note(0, offset);
        }
        landed.note(1, 5);
        landed.note(0, 22);
        landed.note(1, 7);
        assert_eq!(
            landed.written(),
            vec![(0, 10, 3), (0, 20, 3), (1, 5, 1), (1, 7, 1)]
        );
        assert!(!landed.grew.load(Ordering::Relaxed));
        landed.note(2, 0);
        assert!(landed.grew.load(Ordering::Relaxed));
        landed.reset();
        assert!(landed.written().is_empty());
        landed.note(0, 30);
        assert_eq!(landed.written(), vec![(0, 30, 1)]);
        // Out of order, they still join into one run.
        landed.reset();
        for offset in [42, 40, 41] {
            landed.note(1, offset);
        }
        assert_eq!(landed.written(), vec![(1, 40, 3)]);
    }
}
