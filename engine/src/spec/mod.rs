//! The spec language: the typed form of a pipeline YAML file.
//!
//! These types are the contract with users. They are deserialized from YAML
//! by [`load`], and the JSON Schema in `schemas/pipeline.schema.json` is
//! generated from them ([`schema`]), so the two can never disagree. Nothing
//! here checks how nodes relate to each other; that is [`crate::plan`]'s job.

mod duration;
pub mod limits;
pub mod load;
pub mod schema;
mod serde_errors;
pub mod spans;
mod syntax;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use duration::Duration;
pub use load::{load, load_bytes, Loaded};

/// A whole pipeline, as written in one YAML file.
#[derive(Clone, Debug)]
pub struct Spec {
    pub job: JobSettings,
    pub checkpoint: Option<CheckpointSpec>,
    pub state: StateSpec,
    pub sources: IndexMap<String, Node<SourceKind>>,
    pub transforms: IndexMap<String, Node<TransformKind>>,
    pub sinks: IndexMap<String, Node<SinkKind>>,
}

/// The job-wide settings at the top of a spec.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSettings {
    /// The job's name; its checkpoints live under `<store>/<name>/`.
    /// Letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// The default number of parallel instances of every node.
    #[serde(default = "one")]
    pub parallelism: u32,
    /// The number of key groups keyed state is split into: the most
    /// instances a keyed node can ever be restored at.
    #[serde(default = "default_max_parallelism")]
    pub max_parallelism: u32,
    /// Records are sent downstream in batches of at most this many.
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// A batch that is not full is sent anyway after this long.
    #[serde(default = "default_buffer_timeout")]
    pub buffer_timeout: Duration,
    /// Whether operators that exchange records one-to-one run on one
    /// thread (Flink's operator chaining). Off spreads a job over more
    /// threads, which only pays when an operator is costly enough to be
    /// worth the hand-over between threads.
    #[serde(default = "yes")]
    pub chaining: bool,
    /// What happens when an instance fails at run time. Default: with
    /// checkpoints, 3 restarts 1s apart from the latest checkpoint; without,
    /// none.
    #[serde(default)]
    pub restart: Option<RestartSpec>,
}

/// Restarting a failed job from its latest completed checkpoint, in the
/// same process.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartSpec {
    #[serde(default)]
    pub strategy: RestartStrategy,
    /// Restarts before the job fails with the last cause.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Wait before each restart.
    #[serde(default = "default_restart_delay")]
    pub delay: Duration,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RestartStrategy {
    /// Up to `attempts` restarts, `delay` apart.
    #[default]
    FixedDelay,
    /// Fail at the first failure.
    None,
}

/// Checkpointing; absent means checkpointing is off.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSpec {
    /// How often a checkpoint is triggered.
    pub interval: Duration,
    /// `exactly_once` aligns barriers; `at_least_once` does not.
    #[serde(default)]
    pub mode: CheckpointMode,
    /// Least time between the end of one checkpoint and the start of the next.
    #[serde(default = "zero")]
    pub min_pause: Duration,
    /// A checkpoint not complete by then is aborted and its files removed.
    #[serde(default = "default_checkpoint_timeout")]
    pub timeout: Duration,
    /// Checkpoints in flight at once.
    #[serde(default = "one")]
    pub max_concurrent: u32,
    /// Consecutive failed checkpoints tolerated before the job fails.
    #[serde(default)]
    pub tolerable_failures: u32,
    /// Upload only what changed since the last completed checkpoint.
    #[serde(default)]
    pub incremental: bool,
    /// With `incremental`, a full snapshot is written after this many increments in a row.
    #[serde(default = "default_max_chain")]
    pub max_chain: u32,
    /// Where checkpoints are written: an OpenDAL location such as
    /// `file:///var/lib/dataflow/checkpoints` or `s3://bucket/prefix?endpoint=...&region=...`.
    #[serde(default = "default_store")]
    pub store: String,
    /// Completed checkpoints kept; older ones are deleted.
    #[serde(default = "one")]
    pub retain: u32,
    /// What happens to the job's checkpoints when it is cancelled.
    #[serde(default)]
    pub on_cancel: OnCancel,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointMode {
    /// Barriers are aligned: each record is reflected in state exactly once.
    #[default]
    ExactlyOnce,
    /// Barriers are not aligned: after a restore some records may count twice.
    AtLeastOnce,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnCancel {
    /// Keep the retained checkpoints so the job can be restored later.
    #[default]
    Retain,
    /// Delete the job's checkpoints.
    Delete,
}

/// Where keyed state lives while the job runs.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateSpec {
    #[serde(default)]
    pub backend: StateBackendKind,
    /// Local working directory of the state backend (default: a folder
    /// under the system's temporary directory).
    #[serde(default)]
    pub dir: Option<String>,
    /// `sled` only: how many keys each instance of a keyed node keeps in
    /// memory in front of sled. At least 1.
    #[serde(default = "default_cache_entries")]
    pub cache_entries: u32,
}

impl Default for StateSpec {
    fn default() -> Self {
        StateSpec {
            backend: StateBackendKind::default(),
            dir: None,
            cache_entries: default_cache_entries(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StateBackendKind {
    /// In memory: fastest, bounded by RAM.
    #[default]
    Memory,
    /// On disk in sled, under `state.dir`: state may exceed memory.
    Sled,
}

/// A node of the pipeline: the settings every node has, and its kind.
#[derive(Clone, Debug)]
pub struct Node<K> {
    /// The nodes this one reads from (always empty for a source).
    pub inputs: Vec<String>,
    pub parallelism: Option<u32>,
    pub on_error: OnError,
    pub kind: K,
}

/// What a node does with a record it cannot process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Fail the job.
    #[default]
    Fail,
    /// Drop the record, counting it.
    Skip,
    /// Drop the record, counting it and logging why.
    Log,
}

/// The settings every source has besides its `type`.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceCommon {
    /// Instances of this node (default: the job's `parallelism`).
    #[serde(default)]
    pub parallelism: Option<u32>,
    /// What to do with a record that cannot be read.
    #[serde(default)]
    pub on_error: OnError,
}

/// The settings every transform and sink has besides its `type`.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepCommon {
    /// The nodes this one reads from.
    pub inputs: Vec<String>,
    /// Instances of this node (default: the job's `parallelism`).
    #[serde(default)]
    pub parallelism: Option<u32>,
    /// What to do with a record that cannot be processed.
    #[serde(default)]
    pub on_error: OnError,
}

/// Sources: where records come from.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[schemars(tag = "type")]
#[schemars(transform = schema::add_source_common)]
pub enum SourceKind {
    /// Text lines from a TCP server, like Flink's socketTextStream.
    Socket {
        /// `host:port` of the server to connect to.
        address: String,
        /// Reconnect, with backoff, when the connection closes or fails.
        #[serde(default)]
        reconnect: bool,
        /// The longest line kept, in bytes, its line ending aside; a longer
        /// one is a bad record for `on_error`, read past without being kept.
        #[serde(default = "default_max_record_bytes")]
        max_record_bytes: u32,
    },
    /// Lines or JSON lines from files.
    File {
        /// A file path or a glob pattern (`logs/*.txt`).
        path: String,
        #[serde(default)]
        format: InputFormat,
        /// Keep reading as the file grows, like `tail -f`.
        #[serde(default)]
        follow: bool,
        /// The longest line kept, in bytes, its line ending aside; a longer
        /// one is a bad record for `on_error`, read past without being kept.
        #[serde(default = "default_max_record_bytes")]
        max_record_bytes: u32,
    },
    /// Deterministic test data: the same seed always gives the same records.
    Generate {
        #[serde(default)]
        seed: u64,
        /// Records to produce; absent = unbounded.
        #[serde(default)]
        count: Option<u64>,
        /// Records per second; absent = as fast as possible.
        #[serde(default)]
        rate: Option<u64>,
        /// `records` gives `{"seq": n, "value": <int>}`; `lines` gives text
        /// lines of comma-separated words drawn from a Zipf distribution.
        #[serde(default)]
        mode: GenerateMode,
        /// Words per line, with `mode: lines`.
        #[serde(default = "default_words_per_line")]
        words_per_line: u32,
        /// Distinct words, with `mode: lines`.
        #[serde(default = "default_vocabulary")]
        vocabulary: u32,
        /// With `mode: records`, adds this field to each record: its source
        /// time, in microseconds since the Unix epoch (with `rate`, the time
        /// the record was due), for a sink's `latency_field`.
        #[serde(default)]
        time_field: Option<String>,
    },
    /// Lines or JSON lines from standard input.
    Stdin {
        #[serde(default)]
        format: InputFormat,
        /// The longest line kept, in bytes, its line ending aside; a longer
        /// one is a bad record for `on_error`, read past without being kept.
        #[serde(default = "default_max_record_bytes")]
        max_record_bytes: u32,
    },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    /// Each line is a string record.
    #[default]
    Text,
    /// Each line is a JSON value.
    Json,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GenerateMode {
    #[default]
    Records,
    Lines,
}

/// Transforms: what happens to records on the way.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[schemars(tag = "type")]
#[schemars(transform = schema::add_step_common)]
pub enum TransformKind {
    /// Replaces each record by the value of a CEL expression over `this`.
    Map { expr: String },
    /// Keeps the records for which a CEL condition over `this` is true.
    Filter { condition: String },
    /// One record in, any number out: the pieces of a string split on
    /// `split`, or the elements of the list `expr` returns.
    FlatMap {
        #[serde(default)]
        split: Option<String>,
        #[serde(default)]
        expr: Option<String>,
    },
    /// Repartitions records by key so that each key goes to one instance.
    KeyBy { key: String },
    /// Rolling keyed sum of `field`: emits the record with `field` replaced by the key's total.
    Sum { key: String, field: String },
    /// Rolling keyed minimum of `field`: emits the whole record holding the key's smallest `field` so far (the earlier on a tie).
    Min { key: String, field: String },
    /// Rolling keyed maximum of `field`: emits the whole record holding the key's largest `field` so far (the earlier on a tie).
    Max { key: String, field: String },
    /// Rolling keyed count: emits `{<name>: <key>, "count": <n>}`, `<name>` being the last field of a field-path key (`user.id` gives `id`), else `key`.
    Count { key: String },
    /// Rolling keyed reduce: emits the new accumulator, a CEL expression over `acc` and `this`.
    Reduce { key: String, expr: String },
}

/// Sinks: where records end up.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[schemars(tag = "type")]
#[schemars(transform = schema::add_step_common)]
pub enum SinkKind {
    /// One JSON line per record on standard output.
    Print {
        /// Written before each line, as Flink's `print(identifier)` does:
        /// `errors> {…}`, or `errors:2> {…}` from the second of several
        /// instances. Defaults to the sink's name when the spec has more
        /// than one `print` sink, and to nothing when it has one; `""`
        /// turns it off.
        #[serde(default)]
        prefix: Option<String>,
        /// Measures the time from source to sink of each record from this
        /// integer field (microseconds since the Unix epoch, as a
        /// `generate` source's `time_field` writes); the run's summary
        /// reports its percentiles.
        #[serde(default)]
        latency_field: Option<String>,
    },
    /// Part files `part-<instance>-<n>.<ext>` in the folder `path`.
    File {
        path: String,
        #[serde(default)]
        format: OutputFormat,
        /// Measures the time from source to sink of each record from this
        /// integer field (microseconds since the Unix epoch, as a
        /// `generate` source's `time_field` writes); the run's summary
        /// reports its percentiles.
        #[serde(default)]
        latency_field: Option<String>,
    },
    /// Counts records and discards them (for benchmarks).
    Blackhole {
        /// Measures the time from source to sink of each record from this
        /// integer field (microseconds since the Unix epoch, as a
        /// `generate` source's `time_field` writes); the run's summary
        /// reports its percentiles.
        #[serde(default)]
        latency_field: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// One JSON value per line.
    #[default]
    Json,
    /// Strings as they are, other values as JSON, one per line.
    Text,
    /// Maps as comma-separated field values, one record per line.
    Csv,
}

impl SourceKind {
    /// Whether the source can only ever run as one instance.
    pub fn single_instance(&self) -> bool {
        matches!(self, SourceKind::Socket { .. } | SourceKind::Stdin { .. })
    }
}

impl SinkKind {
    /// The field a sink measures latency from, if it does.
    pub fn latency_field(&self) -> Option<&str> {
        match self {
            SinkKind::Print { latency_field, .. }
            | SinkKind::File { latency_field, .. }
            | SinkKind::Blackhole { latency_field } => latency_field.as_deref(),
        }
    }
}

impl TransformKind {
    /// The key expression, for nodes that partition records by key.
    pub fn key(&self) -> Option<&str> {
        match self {
            TransformKind::KeyBy { key }
            | TransformKind::Sum { key, .. }
            | TransformKind::Min { key, .. }
            | TransformKind::Max { key, .. }
            | TransformKind::Count { key }
            | TransformKind::Reduce { key, .. } => Some(key),
            _ => None,
        }
    }
}

fn one() -> u32 {
    1
}
fn zero() -> Duration {
    Duration::from_millis(0)
}
fn default_max_parallelism() -> u32 {
    128
}
fn yes() -> bool {
    true
}

fn default_batch_size() -> u32 {
    1024
}
fn default_cache_entries() -> u32 {
    crate::state::sled::DEFAULT_CACHE_ENTRIES
}
fn default_buffer_timeout() -> Duration {
    Duration::from_millis(100)
}
fn default_checkpoint_timeout() -> Duration {
    Duration::from_secs(600)
}
fn default_attempts() -> u32 {
    3
}
fn default_restart_delay() -> Duration {
    Duration::from_secs(1)
}
fn default_max_chain() -> u32 {
    10
}
fn default_store() -> String {
    "file:///tmp/dataflow/checkpoints".to_owned()
}
fn default_words_per_line() -> u32 {
    8
}
fn default_vocabulary() -> u32 {
    1000
}

/// 1 MiB, as Kafka's default largest message: far above a log line, far
/// below what exhausts memory once split.
fn default_max_record_bytes() -> u32 {
    1 << 20
}
