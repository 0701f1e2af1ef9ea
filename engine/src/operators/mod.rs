//! Operators: what each node of a plan does with records, apart from how
//! records reach it (that is [`crate::runtime`]'s job).
//!
//! Three small traits meet the runtime: a [`Source`] produces records, an
//! [`Operator`] turns one record into any number, a [`Sink`] consumes
//! batches. None of them sees channels, batching or barriers.

pub mod join;
pub mod keyed;
pub mod late;
pub mod sinks;
pub mod sources;
pub mod stateless;
mod timers;
pub mod window;

use crate::error::{io_class, Class, Classify};
use crate::state::Changes;
use crate::value::Value;

/// Now, in microseconds since the Unix epoch: the clock of source times
/// (`generate`'s `time_field`) and of the latencies sinks measure from them.
pub fn epoch_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Why one record could not be processed. The node's `on_error` decides
/// whether that fails the job or drops the record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct RecordError(pub String);

/// Why an operator cannot go on at all.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// A record was bad: subject to `on_error`.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// A file, a socket or standard input failed.
    #[error("cannot {action} {target}: {source}")]
    Io {
        action: &'static str,
        target: IoTarget,
        source: std::io::Error,
    },
    /// A source's connection failed or closed, and it does not reconnect.
    #[error(transparent)]
    Connection(sources::socket::Lost),
    /// The input the spec names is not there.
    #[error("no file matches `{pattern}`")]
    NoInput { pattern: String },
    #[error("invalid glob pattern `{pattern}`: {why}")]
    Pattern { pattern: String, why: &'static str },
    /// What a checkpoint recorded of a source's position cannot be one.
    #[error(transparent)]
    Position(#[from] sources::PositionError),
    /// A keyed operator's checkpointed state cannot be read or is impossible.
    #[error("cannot restore from {location}: {why}")]
    Restore {
        location: String,
        why: Box<RestoreProblem>,
    },
    /// Boxed, as the restore's problem is: a rare error kept small, since
    /// every record's result has room for it.
    #[error(transparent)]
    State(Box<crate::state::StateError>),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[cfg(feature = "kafka")]
    #[error(transparent)]
    Kafka(Box<crate::kafka::client::KafkaError>),
    /// Something the planner guarantees did not hold.
    #[error("internal error: {0}")]
    Bug(&'static str),
}

/// What an operator failed to read or write.
#[derive(Debug)]
pub enum IoTarget {
    Path(std::path::PathBuf),
    Stdin,
    Stdout,
}

impl std::fmt::Display for IoTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IoTarget::Path(p) => write!(f, "`{}`", p.display()),
            IoTarget::Stdin => f.write_str("standard input"),
            IoTarget::Stdout => f.write_str("standard output"),
        }
    }
}

/// Why a keyed operator's state could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreProblem {
    #[error(transparent)]
    Read(#[from] crate::checkpoint::inspect::RestoreError),
    #[error("a damaged value ({0})")]
    Value(serde_json::Error),
    #[error("the state of `{node}` is damaged: {why}")]
    Unfit {
        node: String,
        why: keyed::UnfitState,
    },
    #[error("a window's state is damaged: {0}")]
    Window(window::UnfitWindow),
    #[error("a join's state is damaged: {0}")]
    Join(join::UnfitJoin),
}

impl Classify for OpError {
    fn class(&self) -> Class {
        match self {
            OpError::Record(_) | OpError::NoInput { .. } | OpError::Pattern { .. } => Class::User,
            OpError::Io { source, .. } => io_class(source),
            OpError::Connection(_) | OpError::Position(_) => Class::External,
            OpError::Restore { why, .. } => match &**why {
                RestoreProblem::Read(e) => e.class(),
                _ => Class::External,
            },
            OpError::State(e) => e.class(),
            OpError::Sink(e) => e.class(),
            #[cfg(feature = "kafka")]
            OpError::Kafka(e) => e.class(),
            OpError::Bug(_) => Class::Bug,
        }
    }
}

impl From<crate::state::StateError> for OpError {
    fn from(e: crate::state::StateError) -> Self {
        OpError::State(Box::new(e))
    }
}

#[cfg(feature = "kafka")]
impl From<crate::kafka::client::KafkaError> for OpError {
    fn from(e: crate::kafka::client::KafkaError) -> Self {
        OpError::Kafka(Box::new(e))
    }
}

impl From<crate::expr::EvalError> for OpError {
    fn from(e: crate::expr::EvalError) -> Self {
        OpError::Record(RecordError(e.to_string()))
    }
}

/// A transform: one record in, zero or more out.
pub trait Operator: Send {
    fn process(&mut self, record: Value, out: &mut Vec<Value>) -> Result<(), OpError>;

    /// [`process`](Operator::process) of a record with an event time:
    /// `times` gets one time per record put in `out`. What comes out of a
    /// record happened when it did, unless the operator says otherwise.
    fn process_at(
        &mut self,
        record: Value,
        time: i64,
        out: &mut Vec<Value>,
        times: &mut Vec<i64>,
    ) -> Result<(), OpError> {
        let result = self.process(record, out);
        // Whatever it put out before failing keeps in step with its times.
        times.resize(out.len(), time);
        result
    }

    /// [`process_at`](Operator::process_at) of a record from the node's
    /// input number `input` (its place in `inputs`), for operators that
    /// tell their inputs apart (a join); only called for `input` > 0.
    fn process_input(
        &mut self,
        input: usize,
        record: Value,
        time: i64,
        out: &mut Vec<Value>,
        times: &mut Vec<i64>,
    ) -> Result<(), OpError> {
        let _ = input;
        self.process_at(record, time, out, times)
    }

    /// The watermark has reached `watermark`: what waited for it (a
    /// window closing) goes to `out`, with its times in `times`.
    fn on_watermark(
        &mut self,
        _watermark: i64,
        _out: &mut Vec<Value>,
        _times: &mut Vec<i64>,
    ) -> Result<(), OpError> {
        Ok(())
    }

    /// Whether the operator wants [`on_tick`](Operator::on_tick) calls.
    fn wants_ticks(&self) -> bool {
        false
    }

    /// The clock reads `now_ms` (milliseconds since the epoch), at least
    /// every 100 ms whether or not records come: what waited for the
    /// clock (a window of processing time) goes to `out`.
    fn on_tick(
        &mut self,
        _now_ms: i64,
        _out: &mut Vec<Value>,
        _times: &mut Vec<i64>,
    ) -> Result<(), OpError> {
        Ok(())
    }

    /// Records the operator left out as late since the last call, which
    /// the caller counts.
    fn late_records(&mut self) -> u64 {
        0
    }

    /// Moves the late records it keeps for its late output (with their
    /// times) to `out` and `times`, for the caller to send on.
    fn take_late_output(&mut self, _out: &mut Vec<Value>, _times: &mut Vec<i64>) {}

    /// The synchronous part of a checkpoint: the keyed state changed since
    /// the last one, or only the set of it when copying is deferred.
    fn snapshot(&mut self) -> Result<Snapshot, OpError> {
        Ok(Snapshot::Stateless)
    }

    /// Copies up to `budget` entries of a [`Snapshot::Deferred`]; all of
    /// its changes once done.
    fn copy_snapshot(&mut self, _budget: usize) -> Result<Option<Changes>, OpError> {
        Ok(Some(Changes::new()))
    }
}

/// A keyed operator with timers beside its state (a window, a join): it
/// takes each entry of a restored checkpoint itself, to set its timers
/// again from them.
pub trait TimedState: Operator {
    /// Takes one entry; `location` names the checkpoint, for messages.
    fn restore(
        &mut self,
        key_group: u16,
        key: &[u8],
        value: Value,
        location: &str,
    ) -> Result<(), OpError>;

    /// Every entry is restored: the operator goes on from `watermark`,
    /// where the checkpoint recorded it was.
    fn restored(&mut self, watermark: Option<i64>);
}

/// The synchronous part of a checkpoint of a keyed operator's state.
pub fn snapshot_of(state: &mut dyn crate::state::KeyedState) -> Result<Snapshot, OpError> {
    Ok(match state.begin_snapshot()? {
        Some(changes) => Snapshot::Taken(changes),
        None => Snapshot::Deferred,
    })
}

/// What the synchronous part of a checkpoint took.
pub enum Snapshot {
    Stateless,
    Taken(Changes),
    /// To be copied with [`Operator::copy_snapshot`] between records.
    Deferred,
}

/// What a source's [`Source::poll`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// Records were added (perhaps fewer than asked for); poll again.
    Ready,
    /// Nothing to read right now; poll again later.
    Idle,
    /// The source is exhausted.
    End,
}

/// A source of records.
pub trait Source: Send {
    /// Appends up to `max` records to `out`. A bad record is reported as
    /// `Err(OpError::Record)` after the good ones before it; the next poll
    /// goes on after it.
    fn poll(&mut self, out: &mut Vec<Value>, max: usize) -> Result<Poll, OpError>;

    /// Where the source is: what a checkpoint records, so that a restore
    /// can resume right after the last record before the barrier.
    fn position(&self) -> serde_json::Value;

    /// Barrier `id` goes out after the [`position`](Source::position)
    /// just taken, for a source that acts when the checkpoint completes.
    fn on_barrier(&mut self, _id: u64) {}

    /// Checkpoint `id` has completed (and every one before it).
    fn on_complete(&mut self, _id: u64) {}

    /// Resumes from the positions a checkpoint recorded for this node's
    /// instances (all of them: the node's parallelism may have changed).
    /// Sources that cannot replay keep reading where they are.
    fn restore(&mut self, _positions: &[serde_json::Value]) -> Result<(), OpError> {
        Ok(())
    }

    /// For a source reading several streams each in its own order (a
    /// Kafka topic's partitions): how many it reads, and the stream of
    /// each record of its last poll, in order. With event time, each
    /// stream then has its own watermark.
    fn splits(&self) -> Option<crate::time::stamper::Splits<'_>> {
        None
    }

    /// A watermark the source declares after its last poll, beyond what
    /// its records' times make: the watermark steps of `dataflow test`.
    /// Sources that read real input declare none.
    fn declared_watermark(&mut self) -> Option<i64> {
        None
    }
}

/// Why a sink failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Whoever read the output went away (`dataflow run ... | head`): not a
    /// failure of the job, but the end of it.
    #[error("the reader of the output closed it")]
    Closed,
    #[error("cannot {action} {target}: {source}")]
    Io {
        action: &'static str,
        target: IoTarget,
        source: std::io::Error,
    },
    #[cfg(feature = "kafka")]
    #[error(transparent)]
    Kafka(Box<crate::kafka::client::KafkaError>),
    #[error("a bug in dataflow: {0}")]
    Bug(&'static str),
    /// A restore would write again what the folder already holds.
    #[error("`{dir}` holds output that is not in chk-{checkpoint}'s past ({files}): the restore would write its records again; move it away, or run with --newer-output move")]
    NewerOutput {
        dir: String,
        checkpoint: u64,
        files: String,
    },
}

impl Classify for SinkError {
    fn class(&self) -> Class {
        match self {
            SinkError::Closed | SinkError::NewerOutput { .. } => Class::User,
            SinkError::Bug(_) => Class::Bug,
            SinkError::Io { source, .. } => io_class(source),
            #[cfg(feature = "kafka")]
            SinkError::Kafka(e) => e.class(),
        }
    }
}

/// A consumer of records.
pub trait Sink: Send {
    fn write(&mut self, batch: &[Value]) -> Result<(), SinkError>;
    /// Barrier `id` has come: pre-commit what was written before it.
    fn on_barrier(&mut self, _id: u64) -> Result<(), SinkError> {
        Ok(())
    }
    /// What a transactional sink pre-committed and has not committed yet,
    /// asked right after [`Sink::on_barrier`]: it goes into the
    /// checkpoint, for a restore to finish the commit a crash cut short.
    fn pending(&self) -> Option<serde_json::Value> {
        None
    }
    /// Checkpoint `id` is complete: commit what was pre-committed up to it.
    fn on_complete(&mut self, _id: u64) -> Result<(), SinkError> {
        Ok(())
    }
    /// The input has ended: flush and close.
    fn finish(&mut self) -> Result<(), SinkError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Puts a record out, then fails on it, as a `flat_map` whose
    /// expression fails after some items could.
    struct OutThenFail;

    impl Operator for OutThenFail {
        fn process(&mut self, record: Value, out: &mut Vec<Value>) -> Result<(), OpError> {
            out.push(record);
            Err(RecordError("bad".into()).into())
        }
    }

    /// The times were resized only on success: a record put out before a
    /// failure had no time, and every later one in the batch the time of
    /// the record before it.
    #[test]
    fn times_stay_in_step_with_records_when_an_operator_fails_on_one() {
        let (mut out, mut times) = (Vec::new(), Vec::new());
        let result = OutThenFail.process_at(Value::Int(1), 7, &mut out, &mut times);
        assert!(result.is_err());
        assert_eq!((out.len(), times), (1, vec![7]));
    }
}
