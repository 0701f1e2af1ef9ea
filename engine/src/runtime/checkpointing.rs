//! The job's part in checkpoints while an attempt runs: the store, the
//! coordinator thread, and the channels from it to every instance.
//!
//! Apart from the supervisor in `mod.rs`, which only passes on what happens
//! (an instance ending, a savepoint asked for) and waits for the
//! coordinator's word: opening the store, describing the job to the
//! coordinator and starting its thread are this module's.

use std::sync::atomic::AtomicU64;

use crate::checkpoint::history::History;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use super::error::CheckpointingError;
use super::{RunError, RunOptions};
use crate::checkpoint::coordinator::{
    self, Control, Coordinator, Participant, Stats, TooManyFailures,
};
use crate::checkpoint::store::{CheckpointStore, OpendalStore};
use crate::checkpoint::uploader;
use crate::checkpoint::{Report, SourceCommand};
use crate::plan::settings::CheckpointSettings;
use crate::plan::Plan;

/// What the coordinator thread reports: a failure as soon as it happens,
/// and its figures when it has finished.
pub(super) enum CoordinatorEvent {
    Failed(TooManyFailures),
    Finished(Stats),
}

/// The job's part in checkpoints while it runs: the store, the
/// coordinator, and the channels to every instance ([`ChainCheckpointing`]
/// is a chain's part, [`MemberCheckpointing`] a member's).
///
/// [`ChainCheckpointing`]: super::instance::ChainCheckpointing
/// [`MemberCheckpointing`]: super::instance::MemberCheckpointing
pub(super) struct JobCheckpointing {
    pub(super) store: Arc<dyn CheckpointStore>,
    pub(super) reports: Sender<Report>,
    /// Dropping it stops the coordinator.
    pub(super) control: Option<Sender<Control>>,
    pub(super) done: Receiver<CoordinatorEvent>,
    pub(super) triggers: Vec<Sender<SourceCommand>>,
    pub(super) uploaders: Vec<Sender<uploader::UploadTask>>,
    pub(super) commits: Vec<Sender<u64>>,
    pub(super) participants: Vec<Participant>,
}

impl JobCheckpointing {
    /// Opens the store; the coordinator starts later, once every instance
    /// has registered ([`start_coordinator`]).
    pub(super) fn open(cp: &CheckpointSettings, reports: Sender<Report>) -> Result<Self, RunError> {
        // A store that cannot be reached now may be back for a restart.
        let deadline = crate::checkpoint::store::deadline_within(cp.timeout);
        let store: Arc<dyn CheckpointStore> = Arc::new(
            OpendalStore::open_with_deadline(&cp.store, deadline)
                .map_err(CheckpointingError::Store)?,
        );
        let (_, done) = crossbeam_channel::bounded(1);
        Ok(JobCheckpointing {
            store,
            reports,
            control: None,
            done,
            triggers: Vec::new(),
            uploaders: Vec::new(),
            commits: Vec::new(),
            participants: Vec::new(),
        })
    }
}

/// What the coordinator records in each checkpoint and how it takes them:
/// the job, the run and where it was restored from, each stateful node's
/// state shape, and the instances that take part.
pub(super) fn coordinator_config(
    plan: &Plan,
    options: &RunOptions,
    cp: &CheckpointSettings,
    participants: Vec<Participant>,
) -> coordinator::Config {
    coordinator::Config {
        job: plan.job().name.clone(),
        run: options.run_id.clone(),
        restored_from: options.restore.as_ref().map(|r| r.location.clone()),
        restored_id: options.restore.as_ref().map(|r| r.metadata.checkpoint_id),
        shapes: plan
            .graph()
            .node_weights()
            .filter_map(|n| {
                let shape = n.state.as_ref()?;
                Some((
                    n.name.clone(),
                    crate::checkpoint::metadata::NodeShape {
                        kind: shape.kind.to_owned(),
                        key: shape.key.clone(),
                    },
                ))
            })
            .collect(),
        restored_history: options
            .restore
            .as_ref()
            .map(|r| r.metadata.past())
            .unwrap_or_default(),
        spec_hash: options.spec_hash.clone(),
        settings: cp.clone(),
        max_parallelism: plan.job().max_parallelism,
        participants,
    }
}

/// Starts the coordinator thread; its result arrives on `c.done`.
pub(super) fn start_coordinator(
    config: coordinator::Config,
    c: &mut JobCheckpointing,
    reports: Receiver<Report>,
    last_completed: Arc<AtomicU64>,
    history: Arc<std::sync::Mutex<History>>,
) -> Result<(), CheckpointingError> {
    let (control_tx, control_rx) = crossbeam_channel::bounded(1024);
    let (done_tx, done_rx) = crossbeam_channel::bounded(2);
    let links = coordinator::Links {
        triggers: std::mem::take(&mut c.triggers),
        uploaders: std::mem::take(&mut c.uploaders),
        commits: std::mem::take(&mut c.commits),
        last_completed,
        history,
    };
    let coordinator =
        Coordinator::new(config, Arc::clone(&c.store), links).map_err(CheckpointingError::Start)?;
    std::thread::Builder::new()
        .name("checkpoints".into())
        .spawn(move || {
            let mut coordinator = coordinator;
            if let Err(cause) = coordinator.coordinate(&reports, &control_rx) {
                let _ = done_tx.send(CoordinatorEvent::Failed(cause));
            }
            let _ = done_tx.send(CoordinatorEvent::Finished(coordinator.drain(&reports)));
        })
        .map_err(CheckpointingError::Thread)?;
    c.control = Some(control_tx);
    c.done = done_rx;
    Ok(())
}
