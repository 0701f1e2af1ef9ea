//! The `kafka` sink with `delivery: exactly_once`: Flink's two-phase
//! commit over Kafka transactions, with the records of each checkpoint
//! pre-committed at its barrier and committed once it completes (see
//! [`crate::kafka::transactions`] for what a checkpoint records and how a
//! restore finishes what a crashed run left).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use super::{Encoder, Landed, Writer};
use crate::kafka::client::{config, KafkaError, DEADLINE};
use crate::kafka::transactions::{self, Pending, Recorded, SLOTS};
use crate::nodes::sinks::kafka::Kafka;
use crate::operators::{Sink, SinkError};
use crate::value::Value;

/// How long a commit may take: a broker that is slow to write the markers
/// of a large transaction must not fail the job.
const COMMIT_DEADLINE: Duration = Duration::from_secs(60);

/// The transaction timeout unless the user sets `transaction.timeout.ms`:
/// the brokers' default ceiling (`transaction.max.timeout.ms`). A
/// transaction open longer (a checkpoint that took longer to complete)
/// is aborted by the broker and written again by the restore that
/// follows.
const TRANSACTION_TIMEOUT_MS: &str = "900000";

/// Producers a restore fenced, by transactional id, for the sink
/// instances that start next to take over. Fenced again right after the
/// restore committed its marker, an id waited 500 ms, librdkafka's fixed
/// retry of a producer id request (the brokers still completing that
/// commit, as far as timings show), slot after slot.
static PARKED: Mutex<BTreeMap<String, (Writer, Arc<Landed>)>> = Mutex::new(BTreeMap::new());

/// Parks producer `id`, fenced, with no transaction open, counting where
/// its messages land in `landed`; one parked before under that id is
/// closed.
pub(crate) fn park(id: String, writer: Writer, landed: Arc<Landed>) {
    let mut parked = PARKED.lock().unwrap_or_else(|p| p.into_inner());
    parked.insert(id, (writer, landed));
}

/// Producer `id` as parked for `spec`'s topic, if it is.
fn unpark(spec: &Kafka, id: &str) -> Option<(Writer, Arc<Landed>)> {
    let mut parked = PARKED.lock().unwrap_or_else(|p| p.into_inner());
    let (writer, landed) = parked.remove(id)?;
    (writer.topic == spec.topic && writer.servers == spec.bootstrap_servers)
        .then_some((writer, landed))
}

/// A transactional producer, and the transaction it has open.
struct Slot {
    writer: Writer,
    landed: Arc<Landed>,
    id: String,
    /// The group its marker is committed to, named after `id`.
    group: ConsumerGroupMetadata,
    open: Option<Open>,
}

/// An open transaction.
struct Open {
    /// What the last barrier it covers recorded of it.
    recorded: Option<Pending>,
    /// Closed: it takes no more records and waits for its checkpoint.
    closed: bool,
    /// Records were written since its last barrier.
    since_barrier: bool,
}

pub struct TransactionalKafkaSink {
    slots: Vec<Slot>,
    /// The slot taking records.
    current: Option<usize>,
    encoder: Encoder,
    topic: String,
}

/// The transactional configuration of producer `id`.
pub(crate) fn producer_config(spec: &Kafka, id: &str) -> rdkafka::ClientConfig {
    let own = [
        ("transactional.id", id),
        ("enable.idempotence", "true"),
        ("allow.auto.create.topics", "false"),
    ];
    config(
        &spec.bootstrap_servers,
        &[("transaction.timeout.ms", TRANSACTION_TIMEOUT_MS)],
        &spec.librdkafka_options,
        &own,
    )
}

/// The metadata of the consumer group a producer's marker goes to.
pub(crate) fn marker_group(spec: &Kafka, id: &str) -> Result<ConsumerGroupMetadata, KafkaError> {
    let consumer: BaseConsumer = config(
        &spec.bootstrap_servers,
        &[],
        &spec.librdkafka_options,
        &[("group.id", id), ("enable.auto.commit", "false")],
    )
    .create()
    .map_err(|e| KafkaError::Config {
        servers: spec.bootstrap_servers.clone(),
        why: crate::kafka::client::Context::new(&spec.librdkafka_options).mask(&e.to_string()),
    })?;
    consumer.group_metadata().ok_or_else(|| KafkaError::Client {
        action: "set up the group of a transaction's marker",
        servers: spec.bootstrap_servers.clone(),
        why: format!("librdkafka gave no metadata for group `{id}`"),
        cause: None,
    })
}

/// Commits `writer`'s open transaction with its marker: checkpoint
/// `covers` in partition 0 of `topic`, for `group`.
pub(crate) fn commit(
    writer: &Writer,
    group: &ConsumerGroupMetadata,
    topic: &str,
    covers: u64,
) -> Result<(), SinkError> {
    let mut marker = TopicPartitionList::new();
    marker
        .add_partition_offset(topic, 0, Offset::Offset(covers as i64))
        .map_err(|e| writer.sink_error("mark a transaction on", e))?;
    retrying(writer, "mark a transaction on", || {
        writer
            .producer
            .send_offsets_to_transaction(&marker, group, COMMIT_DEADLINE)
    })?;
    retrying(writer, "commit a transaction on", || {
        writer.producer.commit_transaction(COMMIT_DEADLINE)
    })
}

/// Runs a transactional call again while librdkafka says it may succeed
/// if retried (a coordinator that moved); anything else, or a call that
/// keeps failing for [`COMMIT_DEADLINE`], fails the sink, and the restore
/// that follows writes the transaction again.
fn retrying(
    writer: &Writer,
    action: &'static str,
    call: impl Fn() -> rdkafka::error::KafkaResult<()>,
) -> Result<(), SinkError> {
    let started = std::time::Instant::now();
    loop {
        match call() {
            Ok(()) => return Ok(()),
            Err(rdkafka::error::KafkaError::Transaction(e))
                if e.is_retriable() && started.elapsed() < COMMIT_DEADLINE =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => {
                if let rdkafka::error::KafkaError::Transaction(t) = &e {
                    if t.txn_requires_abort() {
                        let _ = writer.producer.abort_transaction(Duration::from_secs(5));
                    }
                }
                return Err(writer.sink_error(action, e));
            }
        }
    }
}

/// Opens transactional producer `id`: fences every earlier producer of
/// that id, whose open transaction the brokers abort.
pub(crate) fn fenced(
    spec: &Kafka,
    id: &str,
    landed: Option<Arc<Landed>>,
) -> Result<Writer, KafkaError> {
    let writer = Writer::open(spec, &producer_config(spec, id), landed)?;
    writer
        .producer
        .init_transactions(DEADLINE)
        .map_err(|e| writer.failed("start transactions", e))?;
    Ok(writer)
}

impl TransactionalKafkaSink {
    pub fn open(
        spec: &Kafka,
        prefix: &str,
        instance: u32,
    ) -> Result<TransactionalKafkaSink, KafkaError> {
        let mut slots = Vec::new();
        let mut partitions = None;
        for k in 0..SLOTS {
            let id = transactions::transactional_id(prefix, instance, k);
            let (writer, landed) = match unpark(spec, &id) {
                Some(parked) => parked,
                None => {
                    // The topic's partitions, asked once, size each
                    // slot's counts.
                    let count = match partitions {
                        Some(n) => n,
                        None => {
                            let probe = Writer::open(spec, &producer_config(spec, &id), None)?;
                            let n = probe.partitions()?;
                            partitions = Some(n);
                            n
                        }
                    };
                    let landed = Arc::new(Landed::new(count));
                    (fenced(spec, &id, Some(Arc::clone(&landed)))?, landed)
                }
            };
            slots.push(Slot {
                writer,
                landed,
                group: marker_group(spec, &id)?,
                id,
                open: None,
            });
        }
        Ok(TransactionalKafkaSink {
            slots,
            current: None,
            encoder: Encoder::new(spec),
            topic: spec.topic.clone(),
        })
    }

    /// The slot taking records, with a transaction begun on a free one if
    /// none is.
    fn current(&mut self) -> Result<usize, SinkError> {
        if let Some(s) = self.current {
            return Ok(s);
        }
        // A barrier closes a transaction only while another slot is free.
        let s = self
            .slots
            .iter()
            .position(|slot| slot.open.is_none())
            .ok_or(SinkError::Bug("a Kafka sink with no free transaction"))?;
        let slot = &mut self.slots[s];
        slot.writer
            .producer
            .begin_transaction()
            .map_err(|e| slot.writer.sink_error("begin a transaction on", e))?;
        slot.landed.reset();
        slot.open = Some(Open {
            recorded: None,
            closed: false,
            since_barrier: false,
        });
        self.current = Some(s);
        Ok(s)
    }
}

impl Sink for TransactionalKafkaSink {
    fn write(&mut self, batch: &[Value]) -> Result<(), SinkError> {
        if batch.is_empty() {
            return Ok(());
        }
        let s = self.current()?;
        let slot = &mut self.slots[s];
        let open = slot
            .open
            .as_mut()
            .ok_or(SinkError::Bug("no open transaction"))?;
        open.since_barrier = true;
        for record in batch {
            let (value, key) = self.encoder.encode(record);
            slot.writer.send(value, key)?;
        }
        slot.writer.producer.poll(Duration::ZERO);
        slot.writer.delivered()
    }

    /// Pre-commit: the open transaction's records are acknowledged and
    /// recorded for checkpoint `id`; it closes if the other slot is free.
    fn on_barrier(&mut self, id: u64) -> Result<(), SinkError> {
        let Some(s) = self.current else {
            return Ok(());
        };
        let free = self
            .slots
            .iter()
            .enumerate()
            .any(|(k, slot)| k != s && slot.open.is_none());
        let slot = &mut self.slots[s];
        slot.writer.flush()?;
        if slot.landed.grew.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(SinkError::Kafka(Box::new(KafkaError::Client {
                action: "write to",
                servers: format!("{} (topic `{}`)", slot.writer.servers, self.topic),
                why: "the topic gained partitions while the job ran; the restart that follows writes to them".into(),
                cause: None,
            })));
        }
        let open = slot
            .open
            .as_mut()
            .ok_or(SinkError::Bug("no open transaction"))?;
        open.recorded = Some(Pending {
            producer: slot.id.clone(),
            topic: self.topic.clone(),
            tag: None,
            covers: id,
            partitions: slot.landed.written(),
        });
        open.since_barrier = false;
        if free {
            // Not closed otherwise: it goes on taking records, and commits
            // at the checkpoint after the next barrier that can close it.
            open.closed = true;
            self.current = None;
        }
        Ok(())
    }

    fn pending(&self) -> Option<serde_json::Value> {
        let recorded = Recorded {
            pending: self
                .slots
                .iter()
                .filter_map(|slot| slot.open.as_ref()?.recorded.clone())
                .collect(),
        };
        (!recorded.pending.is_empty())
            .then(|| serde_json::to_value(&recorded).ok())
            .flatten()
    }

    /// Commit: every transaction whose checkpoint is complete, unless it
    /// has taken records since its barrier.
    /// Oldest first, so that a key's records become visible in the order
    /// they were written, and a failed commit leaves no newer one after it.
    fn on_complete(&mut self, id: u64) -> Result<(), SinkError> {
        let mut ready: Vec<(u64, usize)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(k, slot)| {
                let open = slot.open.as_ref()?;
                let covers = open.recorded.as_ref()?.covers;
                (covers <= id && (open.closed || !open.since_barrier)).then_some((covers, k))
            })
            .collect();
        ready.sort_unstable();
        for (covers, k) in ready {
            let slot = &mut self.slots[k];
            commit(&slot.writer, &slot.group, &self.topic, covers)?;
            slot.open = None;
            if self.current == Some(k) {
                self.current = None;
            }
        }
        Ok(())
    }

    /// Everything was pre-committed at the final checkpoint's barrier and
    /// committed with it (see `await_finish`).
    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

impl Drop for TransactionalKafkaSink {
    /// A transaction left open would hold back every `read_committed`
    /// reader of the topic until the brokers time it out. Aborting one a
    /// completed checkpoint recorded loses nothing: once the attempt ends,
    /// the runtime settles the sink for its last checkpoint, as a restore
    /// from it does, which writes its records again.
    fn drop(&mut self) {
        for slot in &self.slots {
            if slot.open.is_some() {
                let _ = slot
                    .writer
                    .producer
                    .abort_transaction(Duration::from_secs(5));
            }
        }
    }
}
