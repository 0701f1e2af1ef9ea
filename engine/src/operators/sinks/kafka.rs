//! The `kafka` sink: an idempotent producer, flushed at every barrier so
//! that a checkpoint completes only once every message before it is
//! acknowledged (at-least-once).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError as RdError;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

use crate::kafka::client::{config, Context, KafkaError, DEADLINE};
use crate::nodes::sinks::kafka::{Kafka, KafkaOutput};
use crate::operators::{Sink, SinkError};
use crate::value::{Name, Value};

/// How long a flush may wait for the brokers' acknowledgements before
/// the sink fails: librdkafka's own delivery timeout (`message.timeout.ms`,
/// 5 minutes by default) usually ends it first, with the reason.
const FLUSH_DEADLINE: Duration = Duration::from_secs(300);

/// The producer's context: the client's, plus the first message the
/// brokers refused for good (after librdkafka's retries).
#[derive(Clone)]
struct Delivery {
    client: Context,
    failed: Arc<Mutex<Option<String>>>,
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
        if let Err((e, _)) = result {
            if let Ok(mut failed) = self.failed.lock() {
                failed.get_or_insert_with(|| self.client.mask(&e.to_string()));
            }
        }
    }
}

pub struct KafkaSink {
    producer: BaseProducer<Delivery>,
    context: Delivery,
    topic: String,
    servers: String,
    key: Option<Vec<Name>>,
    format: KafkaOutput,
    value: String,
    key_text: String,
}

impl KafkaSink {
    pub fn open(spec: &Kafka) -> Result<KafkaSink, KafkaError> {
        // Producers may create the topics they name; a mistyped one would
        // then be created instead of refused.
        let own = [
            ("enable.idempotence", "true"),
            ("allow.auto.create.topics", "false"),
        ];
        let context = Delivery {
            client: Context::new(&spec.librdkafka_options),
            failed: Arc::default(),
        };
        let producer: BaseProducer<Delivery> =
            config(&spec.bootstrap_servers, &spec.librdkafka_options, &own)
                .create_with_context(context.clone())
                .map_err(|e| KafkaError::Config {
                    servers: spec.bootstrap_servers.clone(),
                    why: context.client.mask(&e.to_string()),
                })?;
        let sink = KafkaSink {
            producer,
            context,
            topic: spec.topic.clone(),
            servers: spec.bootstrap_servers.clone(),
            key: spec
                .key
                .as_ref()
                .map(|k| k.split('.').map(crate::value::intern).collect()),
            format: spec.format,
            value: String::new(),
            key_text: String::new(),
        };
        sink.check_topic()?;
        Ok(sink)
    }

    /// The topic must exist: a sink that waited for one, message after
    /// message, would hold the job with nothing said.
    fn check_topic(&self) -> Result<(), KafkaError> {
        let metadata = self
            .producer
            .client()
            .fetch_metadata(Some(&self.topic), DEADLINE)
            .map_err(|e| self.failed("look up the topic", e))?;
        let missing = metadata.topics().iter().all(|t| {
            t.name() != self.topic
                || t.error().is_some_and(|c| {
                    RDKafkaErrorCode::from(c) == RDKafkaErrorCode::UnknownTopicOrPartition
                })
        });
        if missing {
            return Err(KafkaError::NoTopic {
                topic: self.topic.clone(),
                servers: self.servers.clone(),
            });
        }
        Ok(())
    }

    fn failed(&self, action: &'static str, e: RdError) -> KafkaError {
        KafkaError::Client {
            action,
            servers: self.servers.clone(),
            why: self.context.client.mask(&e.to_string()),
            cause: self.context.client.last_error(),
        }
    }

    fn sink_error(&self, e: KafkaError) -> SinkError {
        SinkError::Kafka(Box::new(e))
    }

    /// The first message the brokers refused, as the sink's failure.
    fn delivered(&self) -> Result<(), SinkError> {
        let failed = self.context.failed.lock().ok().and_then(|f| f.clone());
        match failed {
            None => Ok(()),
            Some(why) => Err(self.sink_error(KafkaError::Client {
                action: "write to",
                servers: format!("{} (topic `{}`)", self.servers, self.topic),
                why,
                cause: self.context.client.last_error(),
            })),
        }
    }

    /// Waits until every message sent is acknowledged or refused.
    fn flush(&self) -> Result<(), SinkError> {
        let started = Instant::now();
        loop {
            match self.producer.flush(Duration::from_millis(500)) {
                Ok(()) => break,
                Err(RdError::Flush(RDKafkaErrorCode::OperationTimedOut))
                    if started.elapsed() < FLUSH_DEADLINE =>
                {
                    self.delivered()?
                }
                Err(e) => return Err(self.sink_error(self.failed("flush messages to", e))),
            }
        }
        self.delivered()
    }
}

impl Sink for KafkaSink {
    fn write(&mut self, batch: &[Value]) -> Result<(), SinkError> {
        for record in batch {
            self.value.clear();
            match self.format {
                KafkaOutput::Json => self.value.push_str(&record.to_json()),
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
            let mut message = BaseRecord::<str, str>::to(&self.topic).payload(&self.value);
            if keyed {
                message = message.key(&self.key_text);
            }
            // A full queue is backpressure: wait for acknowledgements.
            while let Err((e, back)) = self.producer.send(message) {
                if e.rdkafka_error_code() != Some(RDKafkaErrorCode::QueueFull) {
                    return Err(self.sink_error(self.failed("write to", e)));
                }
                self.producer.poll(Duration::from_millis(10));
                self.delivered()?;
                message = back;
            }
        }
        self.producer.poll(Duration::ZERO);
        self.delivered()
    }

    fn on_barrier(&mut self, _id: u64) -> Result<(), SinkError> {
        self.flush()
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.flush()
    }
}
