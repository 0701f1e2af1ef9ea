//! Why a run, or one instance of it, failed.

use crate::checkpoint::coordinator::{StartError, TooManyFailures};
use crate::checkpoint::error::CheckpointError;
use crate::checkpoint::store::StoreError;
use crate::error::{Class, Classify};
use crate::operators::{OpError, RecordError, SinkError};
use crate::state::StateError;
use crate::workdir::WorkDirError;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{instance} (node `{node}`) failed: {cause}")]
    Instance {
        node: String,
        instance: String,
        cause: InstanceError,
    },
    #[error("cannot start the job: {0}")]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointingError),
}

impl RunError {
    /// Whether an automatic restart may get past it: a failure while
    /// running, or of the checkpoint store, may not happen again. Before
    /// anything ran, only an outside failure may pass (a store that failed
    /// while the instances loaded their state); the user's mistake or a
    /// bug would fail the next attempt the same way.
    pub fn restartable(&self) -> bool {
        match self {
            RunError::Instance { .. } | RunError::Checkpoint(_) => true,
            RunError::Setup(e) => e.class() == Class::External,
        }
    }
}

/// Why one instance stopped.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error(transparent)]
    Op(#[from] OpError),
    /// A bad record, under `on_error: fail`.
    #[error("{0} (set `on_error: skip` or `log` on the node to drop such records)")]
    BadRecord(RecordError),
    #[error("cannot snapshot its state: {0}")]
    Snapshot(OpError),
    #[error("cannot pre-commit for checkpoint {id}: {source}")]
    PreCommit { id: u64, source: SinkError },
    #[error("cannot commit checkpoint {id}: {source}")]
    Commit { id: u64, source: SinkError },
    /// `DATAFLOW_INJECT_FAILURE`: stands for any outside failure.
    #[error("injected failure (DATAFLOW_INJECT_FAILURE)")]
    Injected,
    #[error("its snapshot uploader stopped")]
    UploaderGone,
    #[error("internal error: {0}")]
    Bug(&'static str),
    #[error("internal error (a panic): {0}")]
    Panic(String),
}

/// Why a job could not start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{instance} (node `{node}`): {source}")]
    Build {
        instance: String,
        node: String,
        source: OpError,
    },
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot open the sled state: {0}")]
    StateDir(#[from] WorkDirError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot recover the output of `{node}`: {source}")]
    Output { node: String, source: SinkError },
    /// Another run holds the job, or its lock cannot be taken.
    #[error(transparent)]
    Lease(CheckpointError),
}

/// Why checkpointing failed the job.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointingError {
    #[error("{0}")]
    Store(StoreError),
    #[error("cannot open the checkpoint store: {0}")]
    LeaseStore(StoreError),
    #[error("cannot start checkpointing: {0}")]
    Start(StartError),
    #[error("cannot start checkpointing: cannot start a thread: {0}")]
    Thread(std::io::Error),
    #[error(transparent)]
    Failures(#[from] TooManyFailures),
    #[error("cannot restore chk-{id}: {source}")]
    Restore { id: u64, source: CheckpointError },
}

impl Classify for RunError {
    fn class(&self) -> Class {
        match self {
            RunError::Instance { cause, .. } => cause.class(),
            RunError::Setup(e) => e.class(),
            RunError::Checkpoint(e) => e.class(),
        }
    }
}

impl Classify for InstanceError {
    fn class(&self) -> Class {
        match self {
            InstanceError::Op(e) | InstanceError::Snapshot(e) => e.class(),
            InstanceError::BadRecord(_) => Class::User,
            InstanceError::PreCommit { source, .. } | InstanceError::Commit { source, .. } => {
                source.class()
            }
            InstanceError::Injected => Class::External,
            InstanceError::UploaderGone | InstanceError::Bug(_) | InstanceError::Panic(_) => {
                Class::Bug
            }
        }
    }
}

impl Classify for SetupError {
    fn class(&self) -> Class {
        match self {
            SetupError::Build { source, .. } => source.class(),
            SetupError::Thread(_) => Class::External,
            SetupError::StateDir(e) => e.class(),
            SetupError::State(e) => e.class(),
            SetupError::Output { source, .. } => source.class(),
            SetupError::Lease(e) => e.class(),
        }
    }
}

impl Classify for CheckpointingError {
    fn class(&self) -> Class {
        match self {
            CheckpointingError::Store(e) | CheckpointingError::LeaseStore(e) => e.class(),
            CheckpointingError::Start(StartError::Store(e)) => e.class(),
            CheckpointingError::Start(StartError::Thread(_)) => Class::External,
            CheckpointingError::Thread(_) => Class::External,
            CheckpointingError::Failures(e) => e.class(),
            // The run's own checkpoint, chosen by the restart: whatever
            // keeps it from being read happened to it since, unless the
            // spec cannot take it (or a newer dataflow wrote it).
            CheckpointingError::Restore { source, .. } => match source {
                CheckpointError::Refused { .. } => Class::User,
                CheckpointError::Metadata(e) => e.class(),
                _ => Class::External,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::IoTarget;
    use std::io::{Error, ErrorKind};

    fn failed(cause: InstanceError) -> RunError {
        RunError::Instance {
            node: "counts".into(),
            instance: "counts#0".into(),
            cause,
        }
    }

    #[test]
    fn a_failure_is_classed_where_it_happened_however_deep() {
        let bad = failed(InstanceError::BadRecord(RecordError("not JSON".into())));
        assert_eq!(bad.class(), Class::User);
        let disk = |kind| {
            failed(InstanceError::Commit {
                id: 3,
                source: SinkError::Io {
                    action: "commit",
                    target: IoTarget::Path("/out/part-0".into()),
                    source: Error::from(kind),
                },
            })
        };
        assert_eq!(disk(ErrorKind::StorageFull).class(), Class::External);
        assert_eq!(disk(ErrorKind::PermissionDenied).class(), Class::User);
        assert_eq!(
            failed(InstanceError::Panic("boom".into())).class(),
            Class::Bug
        );
        let busy = RunError::Setup(SetupError::Lease(CheckpointError::Busy {
            job: "wc".into(),
            holder: "run r1".into(),
        }));
        assert_eq!(busy.class(), Class::User);
        assert!(
            !busy.restartable(),
            "another run does not go away by itself"
        );
        let loading = |store: StoreError| {
            RunError::Setup(SetupError::Build {
                instance: "counts#0".into(),
                node: "counts".into(),
                source: OpError::Restore {
                    location: "s3://b/wc/chk-3".into(),
                    why: Box::new(crate::operators::RestoreProblem::Read(
                        crate::checkpoint::inspect::RestoreError::Store(store),
                    )),
                },
            })
        };
        let down = loading(StoreError::Failed {
            op: "read",
            path: "wc/shared/counts-0-3.full".into(),
            store: "s3://b".into(),
            cause: "connection refused".into(),
            class: Class::External,
        });
        assert!(
            down.restartable(),
            "a store down while state loads may be back"
        );
        let denied = loading(StoreError::Failed {
            op: "read",
            path: "wc/shared/counts-0-3.full".into(),
            store: "s3://b".into(),
            cause: "403".into(),
            class: Class::User,
        });
        assert!(!denied.restartable(), "credentials do not fix themselves");
        let store = RunError::Checkpoint(CheckpointingError::Store(StoreError::Open {
            store: "s3://b".into(),
            cause: "timeout".into(),
            class: Class::External,
        }));
        assert_eq!(store.class(), Class::External);
        assert!(store.restartable());
    }

    #[test]
    fn the_message_still_names_what_failed_and_where() {
        let e = failed(InstanceError::Commit {
            id: 3,
            source: SinkError::Io {
                action: "commit",
                target: IoTarget::Path("/out/part-0".into()),
                source: Error::from(ErrorKind::StorageFull),
            },
        });
        let text = e.to_string();
        assert!(
            text.starts_with("counts#0 (node `counts`) failed: cannot commit checkpoint 3: cannot commit `/out/part-0`: "),
            "{text}"
        );
    }
}
