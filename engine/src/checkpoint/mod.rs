//! Checkpoints: Flink's asynchronous barrier snapshotting.
//!
//! The [`coordinator`] triggers checkpoint N at the sources, which record
//! their positions and emit barrier N into the data channels; each
//! instance aligns the barrier across its inputs (see
//! `runtime/alignment.rs`), takes the synchronous part of its snapshot (the
//! changed state entries) and forwards the barrier; its [`uploader`] writes
//! the files and acknowledges. When every instance has acknowledged, the
//! coordinator writes `_metadata` and the checkpoint is complete; then
//! [`retention`] deletes what no kept checkpoint needs.
//!
//! Paths are formatted in [`layout`] only; I/O goes through the small
//! [`store::CheckpointStore`] trait; decisions (retention, scheduling) are
//! pure functions tested without a store.

pub mod coordinator;
pub mod layout;
pub mod metadata;
pub mod restore;
pub mod retention;
pub mod snapshot;
pub mod store;
pub mod uploader;

use std::time::Duration;

use metadata::FileRef;

/// An instance's part of checkpoint `id`, sent to the coordinator.
#[derive(Debug, Clone)]
pub struct Ack {
    pub id: u64,
    pub instance: String,
    pub node: String,
    pub index: u32,
    pub parallelism: u32,
    /// The keyed state's chain, oldest first (empty for stateless instances).
    pub files: Vec<FileRef>,
    pub source_position: Option<serde_json::Value>,
    /// How long the synchronous part held the instance's thread.
    pub sync: Duration,
    /// How long the instance held inputs blocked waiting for the barrier.
    pub alignment: Duration,
}

/// What instances and uploaders tell the coordinator.
#[derive(Debug)]
pub enum Report {
    Ack(Ack),
    /// The instance could not write its part.
    Declined {
        id: u64,
        instance: String,
        cause: String,
    },
}
