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
pub(crate) mod syntax;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::nodes::{SinkKind, SourceKind, TransformKind};
pub use crate::plan::settings::{CheckpointMode, OnCancel, OnError, StateBackendKind};
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

/// A node of the pipeline: the settings every node has, and its kind.
#[derive(Clone, Debug)]
pub struct Node<K> {
    /// The nodes this one reads from (always empty for a source).
    pub inputs: Vec<String>,
    pub parallelism: Option<u32>,
    pub on_error: OnError,
    /// Sources only: when each record happened.
    pub event_time: Option<EventTimeSpec>,
    pub kind: K,
}

/// A source's event time: each record's timestamp, and how its
/// watermarks follow the timestamps read (see docs/time.md).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTimeSpec {
    /// The record's time: a field (`ts`, `meta.time`) or an expression
    /// over `this`, giving milliseconds since the Unix epoch or RFC 3339
    /// text (`2024-05-01T10:15:30Z`). A record without one is a bad record.
    pub timestamp: String,
    /// How far behind the newest record read a record may come and still
    /// be on time: the watermark trails the newest time by this much.
    #[serde(default = "zero")]
    pub max_out_of_orderness: Duration,
    /// An instance that reads nothing for this long stops holding the
    /// watermark back until it reads again (default: it always holds it).
    #[serde(default)]
    pub idle_timeout: Option<Duration>,
    /// A record stamped further than this ahead of the clock is a bad
    /// record, so that one wrong timestamp cannot make every later record
    /// late (default: no limit).
    #[serde(default)]
    pub max_future: Option<Duration>,
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
    /// When each record happened; without it the source's records have no
    /// event time.
    #[serde(default)]
    pub event_time: Option<EventTimeSpec>,
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
