//! Before a job with an exactly-once `kafka` sink starts, and after an
//! attempt of it ends: every producer an earlier run may have left with a
//! transaction open is fenced (the brokers abort that transaction), and
//! the transactions the checkpoint recorded but no one committed are
//! written again from the records they left in the log
//! ([`super::transactions`] says why).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::client::{config, Context, KafkaError, Reader, DEADLINE};
use super::transactions::{self, Marker, Pending, Point, Recorded, HEADER};
use crate::nodes::sinks::kafka::Kafka;
use crate::nodes::SinkRestore;
use crate::operators::sinks::kafka::transactional::{self, commit, fenced, marker_group};
use crate::operators::sinks::kafka::{Landed, Writer};
use crate::operators::SinkError;

/// How long reading back a transaction's records may go without finding
/// one of them.
const READ_BACK_STALL: Duration = Duration::from_secs(120);

pub fn recover(spec: &Kafka, at: &SinkRestore<'_>) -> Result<Option<String>, KafkaError> {
    let node = at.node;
    let states: Vec<_> = at
        .from
        .iter()
        .flat_map(|from| from.instances.values())
        .filter(|i| i.node == node)
        .collect();
    let mut pending: Vec<Pending> = Vec::new();
    for state in &states {
        if let Some(value) = &state.sink_pending {
            let recorded: Recorded =
                serde_json::from_value(value.clone()).map_err(|e| KafkaError::Damaged {
                    node: node.to_owned(),
                    why: e.to_string(),
                })?;
            pending.extend(recorded.pending);
        }
    }
    // The topic first: a missing one is the user's mistake, named as such.
    let probe = Writer::open(
        spec,
        &config(&spec.bootstrap_servers, &[], &spec.librdkafka_options, &[]),
        None,
    )?;
    let partitions = probe.partitions()?;
    // Every producer any run of the sink may have used: up to the widest
    // parallelism it ever started at, which the brokers keep for it.
    let before = states.iter().map(|i| i.parallelism).max().unwrap_or(0);
    let widest = widest(spec, before.max(at.parallelism))?;
    let ids: BTreeSet<String> = transactions::transactional_ids(spec.prefix(), widest)
        .chain(pending.iter().map(|p| p.producer.clone()))
        .collect();
    // A fresh start resets the markers: output already in the topic is
    // older than this run's history, whatever numbers they carry.
    let writers = fence_all(spec, ids, partitions, at.from.is_none())?;
    let Some(from) = at.from else {
        hand_over(spec, at.parallelism, writers);
        return Ok(None);
    };
    let mut markers: Vec<Marker> = writers
        .iter()
        .map(|f| Marker {
            producer: f.id.clone(),
            topic: spec.topic.clone(),
            value: f.marker,
        })
        .collect();
    for p in pending.iter().filter(|p| p.topic != spec.topic) {
        markers.push(Marker {
            producer: p.producer.clone(),
            topic: p.topic.clone(),
            value: marker(spec, &p.producer, &p.topic)?,
        });
    }
    let past = from.past();
    let point = Point {
        id: from.checkpoint_id,
        past: &past,
    };
    let again =
        transactions::to_write_again(&point, &spec.topic, &markers, &pending).map_err(|newer| {
            KafkaError::NewerOutput {
                node: node.to_owned(),
                topic: spec.topic.clone(),
                producer: newer.producer,
                marker: newer.marker,
                checkpoint: from.checkpoint_id,
            }
        })?;
    let mut records = 0;
    for transaction in &again {
        let writer = writers
            .iter()
            .find(|f| f.id == transaction.producer)
            .map(|f| &f.writer)
            .ok_or(KafkaError::Bug(
                "a pending transaction's producer was not fenced",
            ))?;
        match write_again(spec, writer, transaction) {
            Ok(n) => records += n,
            Err(e) => {
                // Open, it would hold back every `read_committed` reader
                // until the next attempt fences it.
                let _ = writer.producer.abort_transaction(Duration::from_secs(5));
                return Err(e);
            }
        }
    }
    hand_over(spec, at.parallelism, writers);
    Ok((!again.is_empty()).then(|| {
        format!(
            "`{node}`: {records} message{} of {} transaction{} chk-{} recorded and no one committed written again to `{}`",
            if records == 1 { "" } else { "s" },
            again.len(),
            if again.len() == 1 { "" } else { "s" },
            from.checkpoint_id,
            spec.topic
        )
    }))
}

/// A producer a restore fenced.
struct Fenced {
    id: String,
    writer: Writer,
    /// Where its messages land.
    landed: Arc<Landed>,
    /// Its marker in the sink's topic, as found once fenced.
    marker: Option<u64>,
}

/// Fences every producer of `ids`, each counting where its messages land
/// in a topic of `partitions`; then reads its marker, or with `reset`
/// commits marker 0. All at once: librdkafka may wait a fixed 500 ms
/// before it asks for a producer id, and one restore may fence dozens.
fn fence_all(
    spec: &Kafka,
    ids: BTreeSet<String>,
    partitions: usize,
    reset: bool,
) -> Result<Vec<Fenced>, KafkaError> {
    std::thread::scope(|scope| {
        let fencing: Vec<_> = ids
            .into_iter()
            .map(|id| {
                scope.spawn(move || {
                    let landed = Arc::new(Landed::new(partitions));
                    let writer = fenced(spec, &id, Some(Arc::clone(&landed)))?;
                    let marker = if reset {
                        mark(spec, &writer, &id, 0)?;
                        None
                    } else {
                        marker(spec, &id, &spec.topic)?
                    };
                    Ok(Fenced {
                        id,
                        writer,
                        landed,
                        marker,
                    })
                })
            })
            .collect();
        fencing
            .into_iter()
            .map(|f| {
                f.join()
                    .unwrap_or(Err(KafkaError::Bug("fencing a producer panicked")))
            })
            .collect()
    })
}

/// Parks the producers of the sink's instances at `parallelism` for them
/// to take over ([`transactional::park`]).
fn hand_over(spec: &Kafka, parallelism: u32, fenced: Vec<Fenced>) {
    let ours: BTreeSet<String> =
        transactions::transactional_ids(spec.prefix(), parallelism).collect();
    for f in fenced {
        if ours.contains(&f.id) {
            transactional::park(f.id, f.writer, f.landed);
        }
    }
}

/// A Kafka error out of a sink's.
fn unwrap(e: SinkError) -> KafkaError {
    match e {
        SinkError::Kafka(k) => *k,
        _ => KafkaError::Bug("a Kafka call failed without a Kafka error"),
    }
}

/// The widest parallelism the sink ever started at, `now` included: the
/// committed offset of group `<prefix>-widest` in partition 0 of its
/// topic, raised to `now` if below.
fn widest(spec: &Kafka, now: u32) -> Result<u32, KafkaError> {
    let group = format!("{}-widest", spec.prefix());
    let kept = marker(spec, &group, &spec.topic)?.unwrap_or(0);
    let widest = u32::try_from(kept).unwrap_or(u32::MAX).max(now);
    if u64::from(widest) > kept {
        let reader = reader(spec, &group, &[])?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&spec.topic, 0, Offset::Offset(i64::from(widest)))
            .map_err(|e| reader.failed("record the sink's parallelism", e))?;
        reader
            .consumer
            .commit(&tpl, CommitMode::Sync)
            .map_err(|e| reader.failed("record the sink's parallelism", e))?;
    }
    Ok(widest)
}

/// Commits producer `id`'s marker `value` alone, in a transaction of its own.
fn mark(spec: &Kafka, writer: &Writer, id: &str, value: u64) -> Result<(), KafkaError> {
    writer
        .producer
        .begin_transaction()
        .map_err(|e| writer.failed("begin a transaction on", e))?;
    commit(writer, &marker_group(spec, id)?, &spec.topic, value).map_err(unwrap)
}

fn reader(spec: &Kafka, group: &str, extra: &[(&str, &str)]) -> Result<Reader, KafkaError> {
    let mut own = vec![("group.id", group), ("enable.auto.commit", "false")];
    own.extend_from_slice(extra);
    Reader::new(
        &config(&spec.bootstrap_servers, &[], &spec.librdkafka_options, &own),
        &spec.bootstrap_servers,
        Context::new(&spec.librdkafka_options),
    )
}

/// The committed offset of `group` in partition 0 of `topic`: a marker.
fn marker(spec: &Kafka, group: &str, topic: &str) -> Result<Option<u64>, KafkaError> {
    let reader = reader(spec, group, &[])?;
    let mut marker = TopicPartitionList::new();
    marker.add_partition(topic, 0);
    let started = Instant::now();
    loop {
        match reader.consumer.committed_offsets(marker.clone(), DEADLINE) {
            Ok(committed) => {
                return Ok(
                    match committed.find_partition(topic, 0).map(|p| p.offset()) {
                        Some(Offset::Offset(o)) => u64::try_from(o).ok().filter(|v| *v > 0),
                        _ => None,
                    },
                )
            }
            // A group's coordinator moves or loads now and then; asked
            // again, the brokers name the new one.
            Err(e)
                if started.elapsed() < DEADLINE
                    && matches!(
                        e.rdkafka_error_code(),
                        Some(
                            RDKafkaErrorCode::NotCoordinator
                                | RDKafkaErrorCode::CoordinatorLoadInProgress
                                | RDKafkaErrorCode::CoordinatorNotAvailable
                        )
                    ) =>
            {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => return Err(reader.failed("read a transaction's marker", e)),
        }
    }
}

/// Reads `transaction`'s records back, uncommitted as they are, and
/// writes them again with its marker in one transaction of `writer`, the
/// producer that wrote them. Returns how many it wrote.
///
/// Its records of each partition are those at the offsets of its runs
/// (or, recorded by a version that tagged them, the first `count` with
/// its tag from its first: one producer's records keep their order
/// within a partition). The scan also reads the other instances' records
/// in between, about one checkpoint interval of the topic per
/// transaction.
fn write_again(spec: &Kafka, writer: &Writer, transaction: &Pending) -> Result<u64, KafkaError> {
    let topic = &transaction.topic;
    let reader = reader(
        spec,
        &transaction.producer,
        &[
            ("isolation.level", "read_uncommitted"),
            ("enable.partition.eof", "true"),
        ],
    )?;
    writer
        .producer
        .begin_transaction()
        .map_err(|e| writer.failed("begin a transaction on", e))?;
    let mut written = 0;
    for (partition, runs) in transaction.runs() {
        let first = runs.first().map_or(0, |r| r.0);
        let count: u64 = runs.iter().map(|r| r.1).sum();
        let end = runs
            .last()
            .map_or(0, |(f, n)| transactions::run_end(*f, *n));
        let gone = |found| KafkaError::Gone {
            topic: topic.clone(),
            partition,
            first,
            count,
            found,
        };
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, partition, Offset::Offset(first))
            .map_err(|e| reader.failed("read back a transaction from", e))?;
        reader
            .consumer
            .assign(&assignment)
            .map_err(|e| reader.failed("read back a transaction from", e))?;
        let mut progress = Instant::now();
        let mut found = 0;
        // The run the next offset may be in.
        let mut run = 0;
        while found < count {
            if progress.elapsed() > READ_BACK_STALL {
                return Err(reader.failed(
                    "read back a transaction from",
                    rdkafka::error::KafkaError::MessageConsumption(
                        RDKafkaErrorCode::OperationTimedOut,
                    ),
                ));
            }
            let Some(polled) = reader.consumer.poll(Duration::from_millis(200)) else {
                continue;
            };
            let message = match polled {
                Ok(m) => m,
                Err(rdkafka::error::KafkaError::PartitionEOF(p)) if p == partition => {
                    return Err(gone(found))
                }
                Err(rdkafka::error::KafkaError::PartitionEOF(_)) => continue,
                Err(e) => return Err(reader.failed("read back a transaction from", e)),
            };
            if message.partition() != partition || message.topic() != topic {
                continue;
            }
            let offset = message.offset();
            let ours = match &transaction.tag {
                Some(tag) => message.headers().is_some_and(|headers| {
                    headers
                        .iter()
                        .any(|h| h.key == HEADER && h.value == Some(tag.as_bytes()))
                }),
                None => {
                    while runs
                        .get(run)
                        .is_some_and(|(f, n)| offset >= transactions::run_end(*f, *n))
                    {
                        run += 1;
                    }
                    runs.get(run).is_some_and(|(f, _)| offset >= *f)
                }
            };
            if !ours {
                if transaction.tag.is_none() && offset >= end {
                    // Past its last run with records missing.
                    return Err(gone(found));
                }
                continue;
            }
            found += 1;
            progress = Instant::now();
            let mut record = BaseRecord::<[u8], [u8]>::to(topic).partition(partition);
            if let Some(payload) = message.payload() {
                record = record.payload(payload);
            }
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            if let Some(headers) = message.headers() {
                record = record.headers(headers.detach());
            }
            if let Some(ms) = message.timestamp().to_millis() {
                record = record.timestamp(ms);
            }
            while let Err((e, back)) = writer.producer.send(record) {
                if e.rdkafka_error_code() != Some(RDKafkaErrorCode::QueueFull) {
                    return Err(writer.failed("write to", e));
                }
                writer.producer.poll(Duration::from_millis(10));
                record = back;
            }
            written += 1;
        }
    }
    writer.flush().map_err(unwrap)?;
    let group = marker_group(spec, &transaction.producer)?;
    commit(writer, &group, topic, transaction.covers).map_err(unwrap)?;
    Ok(written)
}
