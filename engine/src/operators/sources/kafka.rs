//! The `kafka` source: records from the partitions this instance owns
//! ([`crate::kafka::owner`]), read with a consumer that is assigned them
//! (no group rebalancing), from offsets a checkpoint recorded or the
//! `start` setting resolved to an offset at once.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::{PositionError, RecordError};
use crate::kafka::client::{config, Context, KafkaError, Reader};
use crate::nodes::sources::kafka::{Kafka, KafkaFormat, Start};
use crate::nodes::Instance;
use crate::operators::{OpError, Poll, Source};
use crate::runtime::cancel::Cancel;
use crate::time::stamper::Splits;
use crate::value::{intern, Name, Str, Value};

/// How long a poll waits for a message when none is ready: short enough
/// for barriers and cancellation to pass promptly.
const WAIT: Duration = Duration::from_millis(50);

/// How soon librdkafka looks again at a partition whose local queue was
/// full. Its default, 1 s, makes a source that drains `queued.min.messages`
/// in less than a second wait for the rest of it (confluentinc/librdkafka#2879).
const FETCH_QUEUE_BACKOFF_MS: &str = "10";

/// The consumer's configuration: the source's own settings over the user's
/// `librdkafka_options`, and the user's over the source's defaults.
fn consumer_config(spec: &Kafka, group: &str) -> rdkafka::ClientConfig {
    let own = [
        ("group.id", group),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("isolation.level", "read_committed"),
        // Where an assigned offset no longer exists (deleted by
        // retention): the oldest kept, as Flink does.
        ("auto.offset.reset", "earliest"),
    ];
    config(
        &spec.bootstrap_servers,
        &[("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS)],
        &spec.librdkafka_options,
        &own,
    )
}

/// A partition: topic and number.
type Partition = (Arc<str>, i32);

pub struct KafkaSource {
    reader: Reader,
    spec: Kafka,
    at: Instance,
    cancel: Cancel,
    pattern: Option<regex::Regex>,
    /// The next offset to read in each partition this instance reads.
    next: BTreeMap<Partition, i64>,
    /// Offsets a restored checkpoint recorded, for partitions not yet assigned.
    restored: Option<BTreeMap<Partition, i64>>,
    /// Bounded: where each partition ends.
    ends: BTreeMap<Partition, i64>,
    /// Bounded: the ends a restored checkpoint recorded, which the first
    /// run found: a restored run ends where that run would have.
    restored_ends: BTreeMap<Partition, i64>,
    /// When the partitions were last listed; `None` before the first time.
    discovered: Option<Instant>,
    /// Offsets recorded at each checkpoint not yet complete, to commit to
    /// the group when it completes.
    checkpoints: VecDeque<(u64, Vec<(Partition, i64)>)>,
    decoder: Decoder,
    /// An outage was logged and no record came since.
    warned: bool,
    committer: Committer,
    /// The partitions read, in the order they were assigned: a record's
    /// stream for event time is its partition's place here.
    splits: Vec<Partition>,
    /// The stream of each record of the last poll.
    polled: Vec<u32>,
    /// The place of the last message's partition: the next one is most
    /// often from the same.
    last: usize,
}

/// The place of partition `partition` of `topic` in `splits`, found
/// without allocating: it is most often `last`'s, which it updates.
fn split_of(splits: &[Partition], last: &mut usize, topic: &str, partition: i32) -> Option<usize> {
    let is = |(t, p): &Partition| &**t == topic && *p == partition;
    if splits.get(*last).is_some_and(is) {
        return Some(*last);
    }
    *last = splits.iter().position(is)?;
    Some(*last)
}

/// Whether a consumer's error passes by itself: anything but a lost
/// topic, a refusal of rights or credentials, or a fatal error.
fn passing(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::error::KafkaError as E;
    use rdkafka::types::RDKafkaErrorCode as C;
    match e {
        E::MessageConsumption(code) => !matches!(
            code,
            C::UnknownTopicOrPartition
                | C::UnknownTopic
                | C::UnknownPartition
                | C::TopicAuthorizationFailed
                | C::GroupAuthorizationFailed
                | C::ClusterAuthorizationFailed
                | C::SaslAuthenticationFailed
                | C::Authentication
                | C::Fatal
        ),
        // `enable.partition.eof` set by the user: the end of a partition.
        E::PartitionEOF(_) => true,
        _ => false,
    }
}

impl KafkaSource {
    pub fn open(spec: &Kafka, at: Instance, cancel: Cancel) -> Result<KafkaSource, OpError> {
        let group = spec.group_id.clone().unwrap_or_default();
        let reader = Reader::new(
            &consumer_config(spec, &group),
            &spec.bootstrap_servers,
            Context::new(&spec.librdkafka_options),
        )?;
        let committer = Committer::start(Arc::clone(&reader.consumer), group.clone())?;
        Ok(KafkaSource {
            committer,
            reader,
            // The whole name matches: `events|events-v2` reads both.
            pattern: spec
                .topic_pattern
                .as_deref()
                .and_then(|p| regex::Regex::new(&format!("^(?:{p})$")).ok()),
            spec: spec.clone(),
            at,
            cancel,
            next: BTreeMap::new(),
            restored: None,
            ends: BTreeMap::new(),
            restored_ends: BTreeMap::new(),
            discovered: None,
            checkpoints: VecDeque::new(),
            decoder: Decoder::new(spec),
            warned: false,
            splits: Vec::new(),
            polled: Vec::new(),
            last: 0,
        })
    }

    /// Lists the partitions again and starts reading those of this
    /// instance that are new.
    fn discover(&mut self) -> Result<(), OpError> {
        let first = self.discovered.is_none();
        self.discovered = Some(Instant::now());
        let all = self
            .reader
            .partitions(&self.spec.topics, self.pattern.as_ref());
        let all = match all {
            Ok(all) => all,
            // A pattern may match no topic yet; they are listed again later.
            Err(KafkaError::NoMatch { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        if first && all.is_empty() && self.pattern.is_some() && self.spec.bounded {
            return Err(KafkaError::NoMatch {
                pattern: self.spec.topic_pattern.clone().unwrap_or_default(),
                servers: self.spec.bootstrap_servers.clone(),
            }
            .into());
        }
        let new: Vec<(String, i32)> = all
            .into_iter()
            .filter(|(t, p)| crate::kafka::owner(t, *p, self.at.parallelism) == self.at.index)
            .filter(|(t, p)| !self.next.contains_key(&(Arc::from(t.as_str()), *p)))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let starts = self.starts(&new, first)?;
        for ((topic, partition), start) in new.into_iter().zip(starts) {
            let key: Partition = (Arc::from(topic.as_str()), partition);
            if self.spec.bounded {
                let end = match self.restored_ends.get(&key) {
                    Some(end) => *end,
                    None => self.reader.bounds(&topic, partition)?.1,
                };
                self.ends.insert(key.clone(), end);
            }
            self.splits.push(key.clone());
            self.next.insert(key, start);
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in &self.next {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .map_err(|e| self.reader.failed("assign partitions", e))?;
        }
        self.reader
            .consumer
            .assign(&tpl)
            .map_err(|e| self.reader.failed("assign partitions", e))?;
        Ok(())
    }

    /// Where to start in each of `new`: a restored checkpoint's offset;
    /// else, for the partitions there at the start of a run not restored,
    /// the `start` setting; else (a partition created since) the oldest
    /// record, as Flink reads partitions it discovers.
    fn starts(&mut self, new: &[(String, i32)], first: bool) -> Result<Vec<i64>, OpError> {
        let restored = self.restored.as_ref();
        let mut starts: Vec<Option<i64>> = new
            .iter()
            .map(|(t, p)| restored.and_then(|r| r.get(&(Arc::from(t.as_str()), *p)).copied()))
            .collect();
        let by_setting = first && restored.is_none();
        let rest: Vec<(String, i32)> = new
            .iter()
            .zip(&starts)
            .filter(|(_, s)| s.is_none())
            .map(|(p, _)| p.clone())
            .collect();
        let mut resolved = match (&self.spec.start, by_setting) {
            (Start::Committed, true) => self.reader.committed(&rest)?,
            (Start::Timestamp(_), true) => {
                let millis = self.spec.start_millis().unwrap_or(0);
                self.reader
                    .at_time(&rest, millis)?
                    .into_iter()
                    .map(Some)
                    .collect()
            }
            (Start::Latest, true) => rest
                .iter()
                .map(|(t, p)| Ok(Some(self.reader.bounds(t, *p)?.1)))
                .collect::<Result<_, KafkaError>>()?,
            _ => vec![None; rest.len()],
        }
        .into_iter();
        for (start, (topic, partition)) in starts.iter_mut().filter(|s| s.is_none()).zip(&rest) {
            *start = Some(match resolved.next().flatten() {
                Some(offset) => offset,
                None => self.reader.bounds(topic, *partition)?.0,
            });
        }
        Ok(starts.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// Moves each partition's next offset past what the consumer skipped
    /// after the last record it gave: the markers that end transactions
    /// take offsets too, and a `read_committed` reader never sees them. A
    /// bounded source would otherwise wait for the last one forever, and
    /// the group's lag would never reach 0.
    fn skip_markers(&mut self) -> Result<(), OpError> {
        let positions = self
            .reader
            .consumer
            .position()
            .map_err(|e| self.reader.failed("read the consumer's position", e))?;
        for element in positions.elements() {
            let Offset::Offset(at) = element.offset() else {
                continue;
            };
            let key: Partition = (Arc::from(element.topic()), element.partition());
            // Bounded: never past the end, which the consumer may have
            // fetched beyond (a restore would skip what lies between).
            let at = self.ends.get(&key).map_or(at, |end| at.min(*end));
            if let Some(next) = self.next.get_mut(&key) {
                *next = (*next).max(at);
            }
        }
        Ok(())
    }

    /// A failure librdkafka recovers from by itself (a broker down,
    /// restarting, or slow): said once per outage; the source is idle.
    fn outage(&mut self, e: &rdkafka::error::KafkaError) {
        if !self.warned && !matches!(e, rdkafka::error::KafkaError::PartitionEOF(_)) {
            self.warned = true;
            tracing::warn!(
                "Kafka brokers {}: {e}; the source waits for them",
                self.spec.bootstrap_servers
            );
        }
    }

    fn due(&self) -> bool {
        let interval = self.spec.discovery_interval.0;
        match self.discovered {
            None => true,
            Some(_) if self.spec.bounded || interval.is_zero() => false,
            Some(at) => at.elapsed() >= interval,
        }
    }

    /// `known`, and the partitions of `restored` this instance owns but
    /// has not found again, as `[topic, partition, offset]`.
    fn listed(
        &self,
        known: &BTreeMap<Partition, i64>,
        restored: &BTreeMap<Partition, i64>,
    ) -> Vec<serde_json::Value> {
        let waiting = restored.iter().filter(|((topic, partition), _)| {
            crate::kafka::owner(topic, *partition, self.at.parallelism) == self.at.index
                && !self.next.contains_key(&(Arc::clone(topic), *partition))
        });
        known
            .iter()
            .chain(waiting)
            .map(|((topic, partition), offset)| serde_json::json!([&**topic, partition, offset]))
            .collect()
    }

    fn ended(&self) -> bool {
        self.spec.bounded
            && self
                .ends
                .iter()
                .all(|(p, end)| self.next.get(p).is_some_and(|n| n >= end))
    }
}

impl Source for KafkaSource {
    fn poll(&mut self, out: &mut Vec<Value>, max: usize) -> Result<Poll, OpError> {
        if self.due() {
            let first = self.discovered.is_none();
            match self.discover() {
                Ok(()) => {}
                Err(e) if first => return Err(e),
                // Partitions already assigned are read on; the topics are
                // listed again at the next interval.
                Err(e) => tracing::warn!("cannot list the Kafka topics again: {e}"),
            }
        }
        if self.ended() {
            return Ok(Poll::End);
        }
        let started = out.len();
        self.polled.clear();
        let mut wait = WAIT;
        while out.len() - started < max && !self.cancel.is_cancelled() {
            let Some(polled) = self.reader.consumer.poll(wait) else {
                self.skip_markers()?;
                break;
            };
            wait = Duration::ZERO;
            let message = match polled {
                Ok(message) => message,
                Err(e) if passing(&e) => {
                    self.outage(&e);
                    break;
                }
                Err(e) => return Err(self.reader.failed("read messages", e).into()),
            };
            self.warned = false;
            let found = split_of(
                &self.splits,
                &mut self.last,
                message.topic(),
                message.partition(),
            );
            let Some(split) = found else {
                continue; // an old assignment's message
            };
            let key = &self.splits[split];
            let Some(next) = self.next.get_mut(key) else {
                continue;
            };
            if message.offset() < *next {
                continue;
            }
            if let Some(end) = self.ends.get(key) {
                if message.offset() >= *end {
                    continue;
                }
            }
            *next = message.offset() + 1;
            let record = self.decoder.record(&message, self.spec.metadata)?;
            out.push(record);
            self.polled.push(split as u32);
            if self.ended() {
                break;
            }
        }
        Ok(if out.len() > started {
            Poll::Ready
        } else {
            Poll::Idle
        })
    }

    fn splits(&self) -> Option<Splits<'_>> {
        Some(Splits {
            count: self.splits.len(),
            of_records: &self.polled,
        })
    }

    /// The next offset of every partition this instance reads, and of
    /// those it owns by a restored checkpoint but has not found again yet
    /// (a listing that missed them): a checkpoint taken meanwhile must
    /// not forget where they were. Bounded, each one's end too.
    fn position(&self) -> serde_json::Value {
        let none = BTreeMap::new();
        let offsets = self.listed(&self.next, self.restored.as_ref().unwrap_or(&none));
        if !self.spec.bounded {
            return serde_json::json!({ "offsets": offsets });
        }
        let ends = self.listed(&self.ends, &self.restored_ends);
        serde_json::json!({ "offsets": offsets, "ends": ends })
    }

    fn on_barrier(&mut self, id: u64) {
        let offsets = self.next.iter().map(|(p, o)| (p.clone(), *o)).collect();
        self.checkpoints.push_back((id, offsets));
    }

    /// Commits the offsets of checkpoint `id` to the group, for lag
    /// monitoring; a failure only delays that, so it is logged.
    fn on_complete(&mut self, id: u64) {
        let mut done = None;
        while self.checkpoints.front().is_some_and(|(c, _)| *c <= id) {
            done = self.checkpoints.pop_front();
        }
        let Some((_, offsets)) = done else {
            return;
        };
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in &offsets {
            let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset));
        }
        if tpl.count() > 0 {
            self.committer.commit(tpl);
        }
    }

    fn restore(&mut self, positions: &[serde_json::Value]) -> Result<(), OpError> {
        let mut restored = BTreeMap::new();
        for position in positions {
            for (topic, partition, offset) in parse_position(position, "offsets")? {
                restored.insert((Arc::from(topic.as_str()), partition), offset);
            }
            // Checkpoints of a run that was not bounded have no ends.
            if position.get("ends").is_some() {
                for (topic, partition, end) in parse_position(position, "ends")? {
                    self.restored_ends
                        .insert((Arc::from(topic.as_str()), partition), end);
                }
            }
        }
        self.restored = Some(restored);
        Ok(())
    }
}

/// Commits offsets to the group on a thread of its own, one after
/// another and each synchronously: librdkafka may apply asynchronous
/// commits out of order (an older one after a newer), and a synchronous
/// one on the source's thread would hold records back for a round trip,
/// or for as long as a broker is down. When commits come faster than the
/// brokers answer, only the newest waiting is sent.
struct Committer {
    /// The newest offsets not yet taken by the thread.
    waiting: Arc<Mutex<Option<TopicPartitionList>>>,
    /// Wakes the thread; dropped to end it.
    wake: Option<crossbeam_channel::Sender<()>>,
    done: crossbeam_channel::Receiver<()>,
}

impl Committer {
    fn start(
        consumer: Arc<rdkafka::consumer::BaseConsumer<crate::kafka::client::Context>>,
        group: String,
    ) -> Result<Committer, OpError> {
        let waiting: Arc<Mutex<Option<TopicPartitionList>>> = Arc::default();
        let (wake, woken) = crossbeam_channel::bounded::<()>(1);
        let (done_tx, done) = crossbeam_channel::bounded(1);
        let slot = Arc::clone(&waiting);
        std::thread::Builder::new()
            .name("kafka-commit".into())
            .spawn(move || {
                let take = || slot.lock().ok().and_then(|mut w| w.take());
                loop {
                    let open = woken.recv().is_ok();
                    if let Some(tpl) = take() {
                        if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
                            tracing::warn!(
                                "cannot commit offsets to the Kafka group `{group}`: {e}"
                            );
                        }
                    }
                    if !open {
                        break;
                    }
                }
                let _ = done_tx.send(());
            })
            .map_err(|e| OpError::Io {
                action: "start a thread for",
                target: crate::operators::IoTarget::Path("Kafka offset commits".into()),
                source: e,
            })?;
        Ok(Committer {
            waiting,
            wake: Some(wake),
            done,
        })
    }

    fn commit(&self, tpl: TopicPartitionList) {
        if let Ok(mut waiting) = self.waiting.lock() {
            *waiting = Some(tpl);
        }
        if let Some(wake) = &self.wake {
            // Full: the thread is woken already.
            let _ = wake.try_send(());
        }
    }
}

impl Drop for Committer {
    /// Lets the last commit (the final checkpoint's, at the end of a
    /// bounded run) finish, for a while: the group then shows the job
    /// caught up.
    fn drop(&mut self) {
        self.wake = None;
        let _ = self.done.recv_timeout(COMMIT_WAIT);
    }
}

/// How long an ending source waits for its last commit.
const COMMIT_WAIT: Duration = Duration::from_secs(1);

/// The offsets a position records under `field`: `{"offsets": [[topic,
/// partition, next], …], "ends": [[topic, partition, end], …]}` (ends
/// for a bounded source only).
fn parse_position(
    position: &serde_json::Value,
    field: &'static str,
) -> Result<Vec<(String, i32, i64)>, PositionError> {
    let damaged = |why| PositionError::Shape {
        why,
        position: position.to_string(),
    };
    let offsets = position
        .get(field)
        .and_then(|o| o.as_array())
        .ok_or_else(|| {
            damaged(if field == "ends" {
                "no ends"
            } else {
                "no offsets"
            })
        })?;
    offsets
        .iter()
        .map(|entry| {
            let parts = entry.as_array().filter(|p| p.len() == 3);
            let parts =
                parts.ok_or_else(|| damaged("an offset is not [topic, partition, offset]"))?;
            let topic = parts[0]
                .as_str()
                .filter(|t| !t.is_empty() && t.len() <= 249)
                .ok_or_else(|| damaged("a topic is not a topic name"))?;
            let partition = parts[1]
                .as_i64()
                .and_then(|p| i32::try_from(p).ok())
                .filter(|p| *p >= 0)
                .ok_or_else(|| damaged("a partition is not a partition number"))?;
            let offset = parts[2]
                .as_i64()
                .filter(|o| *o >= 0)
                .ok_or_else(|| damaged("an offset is negative or not a number"))?;
            Ok((topic.to_owned(), partition, offset))
        })
        .collect()
}

/// Turns messages into records.
struct Decoder {
    format: KafkaFormat,
    max_bytes: usize,
    columns: Vec<Name>,
    csv: csv_core::Reader,
    /// The fields of a CSV line, one after another, and where each ends.
    csv_out: Vec<u8>,
    csv_ends: Vec<usize>,
    names: [Name; 7],
}

impl Decoder {
    fn new(spec: &Kafka) -> Decoder {
        Decoder {
            format: spec.format,
            max_bytes: spec.max_record_bytes as usize,
            columns: spec.columns.iter().map(|c| intern(c)).collect(),
            csv: csv_core::Reader::new(),
            csv_out: Vec::new(),
            csv_ends: Vec::new(),
            names: [
                "value",
                "key",
                "topic",
                "partition",
                "offset",
                "timestamp",
                "headers",
            ]
            .map(intern),
        }
    }

    fn record<M: Message>(&mut self, message: &M, metadata: bool) -> Result<Value, OpError> {
        let where_ = || {
            format!(
                "`{}` partition {} offset {}",
                message.topic(),
                message.partition(),
                message.offset()
            )
        };
        let value = match message.payload() {
            None => Value::Null,
            Some(bytes) if bytes.len() > self.max_bytes => {
                return Err(RecordError(format!(
                    "the message at {} has {} bytes, more than `max_record_bytes` ({})",
                    where_(),
                    bytes.len(),
                    self.max_bytes
                ))
                .into())
            }
            Some(bytes) => self
                .decode(bytes)
                .map_err(|why| RecordError(format!("the message at {} {why}", where_())))?,
        };
        if !metadata {
            return Ok(value);
        }
        let text = |bytes: Option<&[u8]>| match bytes.map(std::str::from_utf8) {
            Some(Ok(s)) => Value::Str(Str::from(s)),
            _ => Value::Null,
        };
        let headers = match message.headers() {
            None => Vec::new(),
            Some(headers) => headers
                .iter()
                .map(|h| (Name::from(h.key), text(h.value)))
                .collect(),
        };
        let [n_value, n_key, n_topic, n_partition, n_offset, n_time, n_headers] =
            self.names.clone();
        Ok(Value::Map(vec![
            (n_value, value),
            (n_key, text(message.key())),
            (n_topic, Value::Str(Str::from(message.topic()))),
            (n_partition, Value::Int(i64::from(message.partition()))),
            (n_offset, Value::Int(message.offset())),
            (
                n_time,
                message
                    .timestamp()
                    .to_millis()
                    .map_or(Value::Null, Value::Int),
            ),
            (n_headers, Value::Map(headers)),
        ]))
    }

    fn decode(&mut self, bytes: &[u8]) -> Result<Value, String> {
        match self.format {
            KafkaFormat::Text => std::str::from_utf8(bytes)
                .map(|s| Value::Str(Str::from(s)))
                .map_err(|e| format!("is not UTF-8 text ({e})")),
            KafkaFormat::Json => {
                serde_json::from_slice(bytes).map_err(|e| format!("is not JSON ({e})"))
            }
            KafkaFormat::Csv => self.csv(bytes),
        }
    }

    /// One CSV line: a map of the columns, or a list of its fields.
    fn csv(&mut self, bytes: &[u8]) -> Result<Value, String> {
        use csv_core::ReadRecordResult;
        self.csv.reset();
        self.csv_out.resize(bytes.len().max(16), 0);
        self.csv_ends.resize(bytes.len() + 1, 0);
        let mut input = bytes;
        let (mut out_at, mut ends_at) = (0, 0);
        loop {
            let (result, read, wrote, ended) = self.csv.read_record(
                input,
                &mut self.csv_out[out_at..],
                &mut self.csv_ends[ends_at..],
            );
            input = &input[read..];
            out_at += wrote;
            // Ends count from the record's start, across calls.
            ends_at += ended;
            match result {
                ReadRecordResult::InputEmpty => input = &[],
                ReadRecordResult::OutputFull => {
                    let len = self.csv_out.len();
                    self.csv_out.resize(len * 2, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let len = self.csv_ends.len();
                    self.csv_ends.resize(len * 2, 0);
                }
                ReadRecordResult::Record | ReadRecordResult::End => break,
            }
        }
        let fields = &self.csv_out[..out_at];
        let mut start = 0;
        let mut values = Vec::with_capacity(ends_at);
        for end in &self.csv_ends[..ends_at] {
            let field = std::str::from_utf8(&fields[start..*end])
                .map_err(|e| format!("is not UTF-8 text ({e})"))?;
            values.push(Value::Str(Str::from(field)));
            start = *end;
        }
        if self.columns.is_empty() {
            return Ok(Value::List(values));
        }
        if values.len() != self.columns.len() {
            return Err(format!(
                "has {} fields, not the {} of `columns`",
                values.len(),
                self.columns.len()
            ));
        }
        Ok(Value::Map(
            self.columns.iter().cloned().zip(values).collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fetch_queue_backoff_is_short_unless_the_user_sets_it() {
        let spec: Kafka = serde_yaml::from_str("{bootstrap_servers: 'h:1', topics: [t]}").unwrap();
        let config = consumer_config(&spec, "g");
        assert_eq!(config.get("fetch.queue.backoff.ms"), Some("10"));
        assert_eq!(config.get("isolation.level"), Some("read_committed"));
        let spec: Kafka = serde_yaml::from_str(
            "{bootstrap_servers: 'h:1', topics: [t], librdkafka_options: {fetch.queue.backoff.ms: '500', isolation.level: read_uncommitted}}",
        )
        .unwrap();
        let config = consumer_config(&spec, "g");
        assert_eq!(config.get("fetch.queue.backoff.ms"), Some("500"));
        // What exactly-once rests on stays the source's own.
        assert_eq!(config.get("isolation.level"), Some("read_committed"));
    }

    fn decoder(format: &str, columns: &str) -> Decoder {
        let spec: Kafka = serde_yaml::from_str(&format!(
            "{{bootstrap_servers: 'h:1', topics: [t], format: {format}, columns: {columns}}}"
        ))
        .unwrap();
        Decoder::new(&spec)
    }

    #[test]
    fn csv_lines_become_lists_or_maps() {
        let mut d = decoder("csv", "[]");
        let v = d.decode(b"a,\"b,c\",,\"d\"\"e\"").unwrap();
        assert_eq!(v.to_json(), r#"["a","b,c","","d\"e"]"#);
        let mut d = decoder("csv", "[word, n]");
        assert_eq!(
            d.decode(b"to,2").unwrap().to_json(),
            r#"{"word":"to","n":"2"}"#
        );
        assert!(d.decode(b"to,2,3").unwrap_err().contains("3 fields"));
        let long = "x".repeat(100) + "," + &"y".repeat(100);
        assert_eq!(
            d.decode(long.as_bytes())
                .unwrap()
                .get("n")
                .unwrap()
                .as_str()
                .unwrap()
                .len(),
            100
        );
    }

    #[test]
    fn text_and_json_values_are_checked() {
        assert!(decoder("text", "[]")
            .decode(&[0xff])
            .unwrap_err()
            .contains("UTF-8"));
        assert!(decoder("json", "[]")
            .decode(b"{")
            .unwrap_err()
            .contains("not JSON"));
        assert_eq!(
            decoder("json", "[]")
                .decode(b"{\"a\":1}")
                .unwrap()
                .to_json(),
            r#"{"a":1}"#
        );
    }

    /// A restored partition this instance owns is in its position before
    /// any listing found it; one another instance owns is not.
    #[test]
    fn restored_offsets_stay_in_the_position_until_read() {
        let spec: Kafka =
            serde_yaml::from_str("{bootstrap_servers: '127.0.0.1:9', topics: [t], group_id: g}")
                .unwrap();
        let at = Instance {
            index: 0,
            parallelism: 2,
        };
        let mut source =
            KafkaSource::open(&spec, at, crate::runtime::cancel::Canceller::new().token()).unwrap();
        let mine = (0..8)
            .find(|p| crate::kafka::owner("t", *p, 2) == 0)
            .unwrap();
        let theirs = (0..8)
            .find(|p| crate::kafka::owner("t", *p, 2) == 1)
            .unwrap();
        let restored = serde_json::json!({"offsets": [["t", mine, 42], ["t", theirs, 7]]});
        source.restore(&[restored]).unwrap();
        assert_eq!(
            source.position(),
            serde_json::json!({"offsets": [["t", mine, 42]]})
        );
    }

    /// Bounded, the ends a checkpoint recorded are restored with the
    /// offsets, and recorded again before the partitions are found.
    #[test]
    fn restored_ends_stay_in_the_position() {
        let spec: Kafka = serde_yaml::from_str(
            "{bootstrap_servers: '127.0.0.1:9', topics: [t], group_id: g, bounded: true}",
        )
        .unwrap();
        let at = Instance {
            index: 0,
            parallelism: 1,
        };
        let mut source =
            KafkaSource::open(&spec, at, crate::runtime::cancel::Canceller::new().token()).unwrap();
        let restored = serde_json::json!({"offsets": [["t", 0, 5]], "ends": [["t", 0, 9]]});
        source.restore(std::slice::from_ref(&restored)).unwrap();
        assert_eq!(source.position(), restored);
        let damaged = serde_json::json!({"offsets": [["t", 0, 5]], "ends": [["t", 0]]});
        assert!(source.restore(&[damaged]).is_err());
    }

    #[test]
    fn a_damaged_position_is_refused() {
        let ok = serde_json::json!({"offsets": [["t", 0, 5], ["t", 1, 0]]});
        assert_eq!(parse_position(&ok, "offsets").unwrap().len(), 2);
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"offsets": [["t", 0]]}),
            serde_json::json!({"offsets": [["t", -1, 5]]}),
            serde_json::json!({"offsets": [["t", 0, -5]]}),
            serde_json::json!({"offsets": [["", 0, 5]]}),
            serde_json::json!({"offsets": [["t", 4_294_967_296_i64, 5]]}),
        ] {
            assert!(parse_position(&bad, "offsets").is_err(), "{bad}");
        }
    }
}
