//! Before a job with an exactly-once `kafka` sink starts: every producer
//! an earlier run may have left with a transaction open is fenced (the
//! brokers abort that transaction), and the transactions the restored
//! checkpoint recorded but no one committed are written again from the
//! records they left in the log ([`super::transactions`] says why).

use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::client::{config, Context, KafkaError, Reader, DEADLINE};
use super::transactions::{self, Pending, Point, Recorded, HEADER, SLOTS};
use crate::nodes::sinks::kafka::Kafka;
use crate::nodes::SinkRestore;
use crate::operators::sinks::kafka::transactional::{commit, fenced, marker_group};
use crate::operators::sinks::kafka::Writer;

/// How long reading back one partition's records may take.
const READ_BACK_DEADLINE: Duration = Duration::from_secs(120);

pub fn recover(spec: &Kafka, at: &SinkRestore<'_>) -> Result<Option<String>, KafkaError> {
    let Some(from) = at.from else {
        // A fresh start: each instance fences its own producers as it opens.
        return Ok(None);
    };
    let node = at.node;
    let states: Vec<_> = from.instances.values().filter(|i| i.node == node).collect();
    let before = states.iter().map(|i| i.parallelism).max().unwrap_or(0);
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
    // Every producer the runs that led here, or this one, may have used.
    let ids: Vec<String> = (0..before.max(at.parallelism))
        .flat_map(|i| (0..SLOTS).map(move |k| (i, k)))
        .map(|(i, k)| transactions::transactional_id(spec.prefix(), i, k))
        .chain(pending.iter().map(|p| p.producer.clone()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut writers = Vec::with_capacity(ids.len());
    let mut markers = Vec::with_capacity(ids.len());
    for id in &ids {
        writers.push(fenced(spec, id, None)?);
        markers.push((id.clone(), marker(spec, id)?));
    }
    let past = from.past();
    let point = Point {
        id: from.checkpoint_id,
        past: &past,
    };
    let again = transactions::to_write_again(&point, &markers, &pending).map_err(|newer| {
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
        let k = ids
            .iter()
            .position(|id| *id == transaction.producer)
            .ok_or(KafkaError::Bug(
                "a pending transaction's producer was not fenced",
            ))?;
        records += write_again(spec, &writers[k], transaction)?;
    }
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

/// The checkpoint producer `id`'s last transaction covered, as its marker.
fn marker(spec: &Kafka, id: &str) -> Result<Option<u64>, KafkaError> {
    let reader = Reader::new(
        &config(
            &spec.bootstrap_servers,
            &spec.librdkafka_options,
            &[("group.id", id), ("enable.auto.commit", "false")],
        ),
        &spec.bootstrap_servers,
        Context::new(&spec.librdkafka_options),
    )?;
    let mut marker = TopicPartitionList::new();
    marker.add_partition(&spec.topic, 0);
    let started = Instant::now();
    loop {
        match reader.consumer.committed_offsets(marker.clone(), DEADLINE) {
            Ok(committed) => {
                return Ok(
                    match committed.find_partition(&spec.topic, 0).map(|p| p.offset()) {
                        Some(Offset::Offset(o)) => u64::try_from(o).ok(),
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
fn write_again(spec: &Kafka, writer: &Writer, transaction: &Pending) -> Result<u64, KafkaError> {
    let reader = Reader::new(
        &config(
            &spec.bootstrap_servers,
            &spec.librdkafka_options,
            &[
                ("group.id", &transaction.producer),
                ("enable.auto.commit", "false"),
                ("isolation.level", "read_uncommitted"),
                ("enable.partition.eof", "true"),
            ],
        ),
        &spec.bootstrap_servers,
        Context::new(&spec.librdkafka_options),
    )?;
    writer
        .producer
        .begin_transaction()
        .map_err(|e| writer.failed("begin a transaction on", e))?;
    let mut written = 0;
    for &(partition, first, count) in &transaction.partitions {
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&spec.topic, partition, Offset::Offset(first))
            .map_err(|e| reader.failed("read back a transaction from", e))?;
        reader
            .consumer
            .assign(&assignment)
            .map_err(|e| reader.failed("read back a transaction from", e))?;
        let started = Instant::now();
        let mut found = 0;
        while found < count {
            if started.elapsed() > READ_BACK_DEADLINE {
                return Err(reader.failed(
                    "read back a transaction from",
                    rdkafka::error::KafkaError::MessageConsumption(
                        rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
                    ),
                ));
            }
            let Some(polled) = reader.consumer.poll(Duration::from_millis(200)) else {
                continue;
            };
            let message = match polled {
                Ok(m) => m,
                Err(rdkafka::error::KafkaError::PartitionEOF(_)) => {
                    return Err(KafkaError::Gone {
                        topic: spec.topic.clone(),
                        partition,
                        first,
                        count,
                        found,
                    })
                }
                Err(e) => return Err(reader.failed("read back a transaction from", e)),
            };
            let ours = message.headers().is_some_and(|headers| {
                headers
                    .iter()
                    .any(|h| h.key == HEADER && h.value == Some(transaction.tag.as_bytes()))
            });
            if !ours {
                continue;
            }
            found += 1;
            let mut record = BaseRecord::<[u8], [u8]>::to(&spec.topic).partition(partition);
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
                if e.rdkafka_error_code() != Some(rdkafka::types::RDKafkaErrorCode::QueueFull) {
                    return Err(writer.failed("write to", e));
                }
                writer.producer.poll(Duration::from_millis(10));
                record = back;
            }
            written += 1;
        }
    }
    writer.flush().map_err(|e| match e {
        crate::operators::SinkError::Kafka(k) => *k,
        _ => KafkaError::Bug("a flush failed without a Kafka error"),
    })?;
    let group = marker_group(spec, &transaction.producer)?;
    commit(writer, &group, transaction.covers).map_err(|e| match e {
        crate::operators::SinkError::Kafka(k) => *k,
        _ => KafkaError::Bug("a commit failed without a Kafka error"),
    })?;
    Ok(written)
}
