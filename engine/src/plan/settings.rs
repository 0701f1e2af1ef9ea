//! The settings a plan runs with: the job's, checkpointing's and the
//! state backend's, checked, with every default filled in. Everything
//! after the planner reads these, never the spec; the spec reads the
//! choices below as the user writes them.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::StoreLocation;

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

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StateBackendKind {
    /// In memory: fastest, bounded by RAM.
    #[default]
    Memory,
    /// On disk in sled, under `state.dir`: state may exceed memory.
    Sled,
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

/// The job's own settings.
#[derive(Clone, Debug)]
pub struct JobSettings {
    pub name: String,
    /// The default parallelism of the nodes.
    pub parallelism: u32,
    pub max_parallelism: u32,
    pub batch_size: u32,
    pub buffer_timeout: Duration,
    pub chaining: bool,
    /// Restarts allowed after a failure, and the wait before each.
    pub restarts: u32,
    pub restart_delay: Duration,
}

/// Checkpointing, on.
#[derive(Clone, Debug)]
pub struct CheckpointSettings {
    pub interval: Duration,
    pub mode: CheckpointMode,
    pub min_pause: Duration,
    pub timeout: Duration,
    pub max_concurrent: u32,
    pub tolerable_failures: u32,
    pub incremental: bool,
    pub max_chain: u32,
    pub retain: u32,
    pub on_cancel: OnCancel,
    pub store: StoreLocation,
    /// The store as written, options included: it may hold a secret, so
    /// it is shown only through [`super::store::redact`].
    pub store_uri: String,
}

/// The state backend.
#[derive(Clone, Debug)]
pub struct StateSettings {
    pub backend: StateBackendKind,
    /// Where the backend keeps its files.
    pub dir: String,
    pub cache_entries: u32,
}

/// A duration as a spec writes it (`1s`, `1500ms`), for messages.
pub fn human(d: Duration) -> String {
    crate::spec::Duration(d).to_string()
}
