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
//! Paths are formatted and parsed in [`layout`] only; I/O goes through the
//! small [`store::CheckpointStore`] trait; decisions are pure and tested
//! without a store: the coordinator's ([`coordinator::machine`]), what to
//! restore from ([`choice`]), what retention deletes ([`retention`]) and
//! whether a spec can take a checkpoint's state ([`compat`]).

pub mod choice;
pub mod compat;
pub mod coordinator;
pub mod error;
pub mod history;
pub mod inspect;
pub mod layout;
pub mod lease;
pub mod metadata;
pub mod restore;
pub mod retention;
pub mod savepoint;
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
    /// What a transactional sink pre-committed and had not committed.
    pub sink_pending: Option<serde_json::Value>,
    pub event_time: Option<metadata::TimeState>,
    /// How long the synchronous part held the instance's thread.
    pub sync: Duration,
    /// How long the instance held inputs blocked waiting for the barrier.
    pub alignment: Duration,
    /// How long writing its state to the store took, off its thread (the
    /// asynchronous part); zero for an instance without state.
    pub upload: Duration,
}

/// What the coordinator tells a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceCommand {
    /// Emit barrier N.
    Checkpoint(u64),
    /// Emit barrier N, then read no more input: the job stops with
    /// savepoint N (`dataflow stop`). With `drain`, the sources first end
    /// event time, so every window closes and its result is in the
    /// savepoint's output (`dataflow stop --drain`).
    Stop { id: u64, drain: bool },
    /// A checkpoint taken after every source reached the end of its input
    /// is complete: end the stream.
    Finish,
}

/// What instances and uploaders tell the coordinator.
#[derive(Debug)]
pub enum Report {
    Ack(Ack),
    /// A source reached the end of its input; it keeps answering triggers
    /// until told to [`SourceCommand::Finish`].
    InputEnded {
        instance: String,
    },
    /// The instance could not write its part.
    Declined {
        id: u64,
        instance: String,
        cause: String,
    },
}

/// What a job does after a savepoint asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterSavepoint {
    /// Goes on (`dataflow savepoint`).
    Run,
    /// Stops (`dataflow stop`).
    Stop,
    /// Closes every window, then stops (`dataflow stop --drain`).
    Drain,
}

/// A request for a savepoint, from the control endpoint.
#[derive(Debug)]
pub struct SavepointRequest {
    /// Where it goes (a location or an absolute path); by default into the
    /// checkpoint store (see [`layout::savepoint_dir`]).
    pub to: Option<String>,
    /// What the job does once the savepoint is taken.
    pub then: AfterSavepoint,
    /// The savepoint's checkpoint number and location, or why there is none.
    pub reply: crossbeam_channel::Sender<Result<(u64, String), SavepointFailure>>,
}

/// Why a savepoint asked for was not taken, in the form it crosses the
/// control endpoint in: its message and whose failure it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SavepointFailure {
    pub class: crate::error::Class,
    pub message: String,
}

impl SavepointFailure {
    pub fn new(class: crate::error::Class, message: impl Into<String>) -> Self {
        SavepointFailure {
            class,
            message: message.into(),
        }
    }

    /// From an error that knows its class.
    pub fn from_error(e: &(impl std::error::Error + crate::error::Classify)) -> Self {
        Self::new(e.class(), e.to_string())
    }
}
