//! The executor: runs a [`Plan`] as one OS thread per operator instance,
//! connected by bounded crossbeam channels.
//!
//! The plan is expanded into a physical graph ([`physical`]); each
//! instance runs the loop in [`instance`] on a thread named `<node>#<i>`.
//! The calling thread supervises: it waits for instances to end, cancels
//! everything on the first failure or on Ctrl-C/SIGTERM, draws the status
//! line, and reports how the job ended.

mod alignment;
mod build;
pub mod cancel;
mod instance;
pub mod lifecycle;
mod message;
mod metrics;
mod output;
mod physical;
pub mod signals;
mod status;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use petgraph::graph::NodeIndex;

use crate::checkpoint::coordinator::{self, Control, Coordinator, Participant, Stats};
use crate::checkpoint::restore::Restore;
use crate::checkpoint::store::{CheckpointStore, OpendalStore};
use crate::checkpoint::uploader::{self, UploaderConfig};
use crate::checkpoint::{retention, Report, SavepointRequest, SourceCommand};
use crate::plan::settings::{OnCancel, StateBackendKind};
use crate::plan::{Plan, Planned};
use crate::runtime::cancel::Canceller;
use crate::workdir::{self, WorkDir};
use build::StateFactory;
use instance::{Finish, Instance};
use message::Message;
use metrics::Metrics;

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every source ended and every sink finished (or a sink's reader closed the output).
    Finished,
    /// Cancelled by a signal (its number).
    Cancelled(i32),
    /// Stopped with a savepoint (`dataflow stop`): everything before it is
    /// committed, nothing after it was read.
    Stopped,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{instance} (node `{node}`) failed: {cause}")]
    Instance {
        node: String,
        instance: String,
        cause: String,
    },
    #[error("cannot start the job: {0}")]
    Setup(String),
    #[error("{0}")]
    Checkpoint(String),
}

/// Options of `dataflow run` that are not in the spec.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Show the live status line (only ever on a terminal).
    pub status_line: bool,
    /// A hash of the spec's text, recorded in each checkpoint.
    pub spec_hash: String,
    /// The checkpoint to start from, already verified against the plan.
    pub restore: Option<Arc<Restore>>,
    /// This run's id ([`lifecycle::new_run_id`]), written in its checkpoints.
    pub run_id: String,
    /// What a restore does with output committed after its checkpoint.
    pub newer_output: NewerOutput,
    /// The spec file, as given, for `dataflow list`.
    pub spec_path: String,
    /// The control endpoint's port on 127.0.0.1 (0: any free port).
    pub control_port: u16,
    /// Savepoint and stop requests from the control endpoint.
    pub requests: Option<Receiver<SavepointRequest>>,
    /// Ctrl-C and SIGTERM ([`signals::listen`]), for the whole run.
    pub signals: Option<Receiver<i32>>,
}

pub use crate::operators::sinks::file::NewerOutput;

/// What the coordinator thread reports: a failure as soon as it happens,
/// and its figures when it has finished.
enum CoordinatorEvent {
    Failed(String),
    Finished(Stats),
}

/// The job's part in checkpoints while it runs: the store, the
/// coordinator, and the channels to every instance ([`instance::ChainCheckpointing`]
/// is a chain's part, [`instance::MemberCheckpointing`] a member's).
struct JobCheckpointing {
    store: Arc<dyn CheckpointStore>,
    reports: Sender<Report>,
    /// Dropping it stops the coordinator.
    control: Option<Sender<Control>>,
    done: Receiver<CoordinatorEvent>,
    triggers: Vec<Sender<SourceCommand>>,
    uploaders: Vec<Sender<uploader::UploadTask>>,
    commits: Vec<Sender<u64>>,
    participants: Vec<Participant>,
}

/// One node's instances' counters.
pub struct NodeStats {
    pub name: String,
    pub index: NodeIndex,
    pub is_source: bool,
    pub is_sink: bool,
    pub instances: Vec<Arc<Metrics>>,
}

impl NodeStats {
    /// Records in, out and dropped, over all instances.
    pub fn totals(&self) -> (u64, u64, u64) {
        self.instances
            .iter()
            .map(|m| m.snapshot())
            .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2))
    }

    /// Records a sink took in, or any other node put out.
    pub fn handled(&self) -> u64 {
        let (r_in, r_out, _) = self.totals();
        if self.is_sink {
            r_in
        } else {
            r_out
        }
    }
}

/// What the supervisor watches.
pub struct Job {
    pub name: String,
    pub nodes: Vec<NodeStats>,
    pub queues: Vec<(NodeIndex, Receiver<Message>)>,
}

/// A chain instance thread's last word.
struct Ended {
    /// Its members' instance names and nodes, upstream first.
    members: Vec<(String, String)>,
    result: Result<Finish, instance::Failure>,
}

/// Runs one attempt of the plan to its end; returns how it ended and the
/// summary line. [`lifecycle::run`] restarts it after a failure.
///
/// A failure comes with the summary and the newest checkpoint this attempt
/// completed, from which a restart may resume.
fn attempt(
    plan: &Plan,
    options: &RunOptions,
) -> Result<(Outcome, String), (RunError, String, Option<u64>)> {
    let started = Instant::now();
    let canceller = Canceller::new();
    let signals = options
        .signals
        .clone()
        .unwrap_or_else(crossbeam_channel::never);
    let state = open_state(plan, &options.run_id).map_err(|e| (e, String::new(), None))?;
    if plan.checkpoint().is_some() {
        // A fresh start is a restore from "checkpoint 0": nothing of an
        // earlier attempt is committed, its hidden files are removed.
        recover_sinks(plan, options).map_err(|e| (e, String::new(), None))?;
    }
    let physical = physical::expand(plan);
    let (reports_tx, reports_rx) = crossbeam_channel::bounded::<Report>(1024);
    let mut checkpoints = match plan.checkpoint() {
        None => None,
        Some(cp) => {
            // A store that cannot be reached now may be back for a restart.
            let deadline = crate::checkpoint::store::deadline_within(cp.timeout);
            let store: Arc<dyn CheckpointStore> = Arc::new(
                OpendalStore::open_with_deadline(&cp.store, deadline)
                    .map_err(|e| (RunError::Checkpoint(e.to_string()), String::new(), None))?,
            );
            let (_, done) = crossbeam_channel::bounded(1);
            Some(JobCheckpointing {
                store,
                reports: reports_tx.clone(),
                control: None,
                done,
                triggers: Vec::new(),
                uploaders: Vec::new(),
                commits: Vec::new(),
                participants: Vec::new(),
            })
        }
    };
    let mut job = Job {
        name: plan.job().name.clone(),
        nodes: plan
            .order()
            .iter()
            .map(|&n| NodeStats {
                name: plan.graph()[n].name.clone(),
                index: n,
                is_source: plan.graph()[n].planned.is_source(),
                is_sink: plan.graph()[n].planned.is_sink(),
                instances: Vec::new(),
            })
            .collect(),
        queues: physical.queues,
    };

    let total = physical.instances.len();
    let building = Instant::now();
    let (ended_tx, ended_rx) = crossbeam_channel::bounded::<Ended>(total);
    let mut threads = Vec::with_capacity(total);
    let mut first_error: Option<RunError> = None;
    for wiring in physical.instances {
        match start_instance(
            plan,
            options,
            wiring,
            &state,
            &canceller,
            checkpoints.as_mut(),
            &mut job,
            &ended_tx,
        ) {
            Ok(handle) => threads.push(handle),
            Err(e) => {
                first_error = Some(e);
                break;
            }
        }
    }
    drop(ended_tx);
    drop(reports_tx);
    if let (Some(restore), None) = (&options.restore, &first_error) {
        log_restored(restore, building.elapsed());
    }
    let last_completed = plan
        .checkpoint()
        .as_ref()
        .map(|_| Arc::new(AtomicU64::new(0)));
    if first_error.is_none() {
        if let (Some(cp), Some(c)) = (plan.checkpoint(), checkpoints.as_mut()) {
            let config = coordinator::Config {
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
                participants: std::mem::take(&mut c.participants),
            };
            let last_completed = last_completed.clone().unwrap_or_default();
            if let Err(e) = start_coordinator(config, c, reports_rx, last_completed) {
                // Listing the store failed, or a thread could not start:
                // either may pass, so a restart may try again.
                first_error = Some(RunError::Checkpoint(format!(
                    "cannot start checkpointing: {e}"
                )));
            }
        }
    }
    if first_error.is_some() {
        canceller.cancel();
    }
    // Once the coordinator has finished, its channel is replaced by one
    // that never fires, so the select below does not spin on it.
    let mut coordinator_events = checkpoints
        .as_ref()
        .map_or_else(crossbeam_channel::never, |c| c.done.clone());
    let mut checkpoint_stats = None;

    let mut status = options
        .status_line
        .then(|| status::StatusLine::new(last_completed));
    let mut outcome = Outcome::Finished;
    let mut requests = options
        .requests
        .clone()
        .unwrap_or_else(crossbeam_channel::never);
    let mut running = threads.len();
    while running > 0 {
        crossbeam_channel::select! {
            recv(ended_rx) -> ended => {
                let Ok(ended) = ended else { break };
                running -= 1;
                if let Some(control) = checkpoints.as_ref().and_then(|c| c.control.as_ref()) {
                    for (instance, _) in &ended.members {
                        let _ = control.send(Control::Finished(instance.clone()));
                    }
                }
                match ended.result {
                    Ok(Finish::Done | Finish::Cancelled) => {}
                    Ok(Finish::OutputClosed) => canceller.cancel(),
                    Err(failure) => {
                        if first_error.is_none() {
                            let (instance, node) = ended.members.get(failure.member).cloned().unwrap_or_default();
                            first_error = Some(RunError::Instance { node, instance, cause: failure.cause });
                        }
                        canceller.cancel();
                    }
                }
            }
            recv(coordinator_events) -> result => {
                match result {
                    Ok(CoordinatorEvent::Failed(cause)) => {
                        if first_error.is_none() {
                            first_error = Some(RunError::Checkpoint(cause));
                        }
                        canceller.cancel();
                    }
                    Ok(CoordinatorEvent::Finished(stats)) => checkpoint_stats = Some(stats),
                    Err(_) => coordinator_events = crossbeam_channel::never(),
                }
            }
            recv(requests) -> request => match request {
                Ok(request) => match checkpoints.as_ref().and_then(|c| c.control.as_ref()) {
                    Some(control) => {
                        let _ = control.send(Control::Savepoint(request));
                    }
                    None => {
                        let why = if plan.checkpoint().is_none() {
                            "the spec has no `checkpoint:` section: a savepoint needs its store"
                        } else {
                            "the job is not running"
                        };
                        let _ = request.reply.send(Err(why.to_owned()));
                    }
                },
                Err(_) => requests = crossbeam_channel::never(),
            },
            recv(signals) -> sig => {
                if let Ok(sig) = sig {
                    outcome = Outcome::Cancelled(sig);
                    canceller.cancel();
                }
            }
            default(Duration::from_millis(250)) => {}
        }
        if let Some(status) = status.as_mut() {
            status.update(&job);
        }
    }
    for t in threads {
        let _ = t.join();
    }
    if let Some(status) = status {
        status.clear();
    }
    drop(state);
    if let Some(mut c) = checkpoints {
        // Stop the coordinator and collect its figures; it finishes once
        // every holder of a report channel is gone.
        c.control = None;
        drop(c.reports);
        while checkpoint_stats.is_none() {
            match c.done.recv() {
                Ok(CoordinatorEvent::Finished(stats)) => checkpoint_stats = Some(stats),
                Ok(CoordinatorEvent::Failed(_)) => {}
                Err(_) => break,
            }
        }
        // A sink may have stopped before it heard that the last checkpoint
        // completed: its output is committed here, so a run that ends, for
        // whatever reason, leaves every sink committed up to the same point.
        if let Some(stats) = checkpoint_stats.as_ref().filter(|s| s.last.is_some()) {
            settle_sinks(plan, stats);
        }
        let cancelled = matches!(outcome, Outcome::Cancelled(_));
        if cancelled
            && plan
                .checkpoint()
                .as_ref()
                .is_some_and(|cp| cp.on_cancel == OnCancel::Delete)
        {
            if let Err(e) = retention::delete_run(&*c.store, &plan.job().name, &options.run_id) {
                tracing::warn!("on_cancel: delete: {e}");
            }
        }
    }
    let elapsed = started.elapsed();
    let with_stats = |summary: String| match &checkpoint_stats {
        Some(stats) => format!("{summary} | {}", status::checkpoint_summary(stats)),
        None => summary,
    };
    match first_error {
        Some(e) => Err((
            e,
            with_stats(status::summary(&job, "failed", elapsed)),
            checkpoint_stats.as_ref().and_then(|s| s.last),
        )),
        None => {
            if outcome == Outcome::Finished && checkpoint_stats.as_ref().is_some_and(|s| s.stopped)
            {
                outcome = Outcome::Stopped;
            }
            let word = match outcome {
                Outcome::Finished => "finished",
                Outcome::Stopped => "stopped",
                Outcome::Cancelled(_) => "cancelled",
            };
            Ok((outcome, with_stats(status::summary(&job, word, elapsed))))
        }
    }
}

/// Builds the members of one chain instance, registers them with the
/// checkpoint coordinator and the status line, and starts its thread.
#[allow(clippy::too_many_arguments)]
fn start_instance(
    plan: &Plan,
    options: &RunOptions,
    wiring: physical::Wiring,
    state: &StateFactory,
    canceller: &Canceller,
    mut checkpoints: Option<&mut JobCheckpointing>,
    job: &mut Job,
    ended_tx: &Sender<Ended>,
) -> Result<std::thread::JoinHandle<()>, RunError> {
    let cancel = canceller.token();
    let mut members = Vec::with_capacity(wiring.nodes.len());
    let mut names = Vec::with_capacity(wiring.nodes.len());
    let mut triggers = None;
    for (k, &n) in wiring.nodes.iter().enumerate() {
        let node = &plan.graph()[n];
        let name = format!("{}#{}", node.name, wiring.index);
        let metrics = Arc::new(Metrics::default());
        if let Some(stats) = job.nodes.iter_mut().find(|s| s.index == n) {
            stats.instances.push(Arc::clone(&metrics));
        }
        // Nothing has run yet: what fails here (a missing input, an
        // unwritable folder, a damaged checkpoint file) would fail a
        // restart the same way, so it is not an instance failure.
        let role = build::role(
            plan,
            node,
            wiring.index,
            state,
            &cancel,
            options.restore.as_deref(),
            &metrics,
        )
        .map_err(|e| RunError::Setup(format!("{name} (node `{}`): {e}", node.name)))?;
        let checkpoint = match (plan.checkpoint(), checkpoints.as_deref_mut()) {
            (Some(cp), Some(c)) => {
                let is_source = node.planned.is_source();
                c.participants.push(Participant {
                    name: name.clone(),
                    is_source,
                });
                if is_source && k == 0 {
                    // A trigger per checkpoint in flight (up to a limit: a
                    // channel allocates its slots up front), and `Finish`.
                    let slots = (cp.max_concurrent as usize).min(uploader::MAX_QUEUED) + 2;
                    let (tx, rx) = crossbeam_channel::bounded(slots);
                    c.triggers.push(tx);
                    triggers = Some(rx);
                }
                let uploader = if node.state.is_some() {
                    let config = UploaderConfig {
                        job: plan.job().name.clone(),
                        node: node.name.clone(),
                        index: wiring.index,
                        incremental: cp.incremental,
                        max_chain: cp.max_chain,
                    };
                    let tx = uploader::spawn(
                        config,
                        Arc::clone(&c.store),
                        c.reports.clone(),
                        cp.max_concurrent,
                    )
                    .map_err(|e| RunError::Setup(format!("cannot start a thread: {e}")))?;
                    c.uploaders.push(tx.clone());
                    Some(tx)
                } else {
                    None
                };
                let commits = node.planned.is_sink().then(|| {
                    let (tx, rx) = crossbeam_channel::bounded(4096);
                    c.commits.push(tx);
                    rx
                });
                Some(instance::MemberCheckpointing {
                    node: node.name.clone(),
                    index: wiring.index,
                    parallelism: node.parallelism,
                    uploader,
                    commits,
                })
            }
            _ => None,
        };
        names.push((name.clone(), node.name.clone()));
        members.push(instance::Member {
            name,
            role,
            on_error: node.on_error,
            metrics,
            fail_after: injected_failure(&node.name),
            checkpoint,
            pending: None,
        });
    }
    let checkpoint = match (plan.checkpoint(), checkpoints) {
        (Some(cp), Some(c)) => Some(instance::ChainCheckpointing {
            triggers,
            reports: c.reports.clone(),
            aligner: alignment::Aligner::new(wiring.inputs.len(), cp.mode),
        }),
        _ => None,
    };
    let thread_name = names[0].0.clone();
    let instance = Instance {
        checkpoint,
        inputs: wiring.inputs,
        output: output::Output::new(
            wiring.outputs,
            plan.job().batch_size as usize,
            plan.job().buffer_timeout,
            cancel.clone(),
        ),
        cancel,
        batch_size: plan.job().batch_size as usize,
        members,
    };
    let ended_tx = ended_tx.clone();
    std::thread::Builder::new()
        .name(thread_name)
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| instance.run()))
                .unwrap_or_else(|panic| {
                    Err(instance::Failure {
                        member: 0,
                        cause: format!(
                            "internal error (a bug in dataflow): {}",
                            panic_message(&panic)
                        ),
                    })
                });
            let _ = ended_tx.send(Ended {
                members: names,
                result,
            });
        })
        .map_err(|e| RunError::Setup(format!("cannot start a thread: {e}")))
}

/// Says what a restore cost: checking the checkpoint's files, then loading
/// the state into the instances (which are built one after another).
fn log_restored(restore: &Restore, loaded_in: Duration) {
    let verified = restore.verified_in;
    let files = restore.metadata.files().count();
    tracing::info!(
        "restored chk-{} ({files} file{}, {}) in {} ms: verified in {} ms, loaded in {} ms",
        restore.metadata.checkpoint_id,
        if files == 1 { "" } else { "s" },
        coordinator::human_bytes(restore.metadata.total_size()),
        (verified + loaded_in).as_millis(),
        verified.as_millis(),
        loaded_in.as_millis()
    );
}

/// Before a job with checkpoints starts, settles every file sink's folder
/// for the restore point: its visible output becomes exactly that of the
/// restored checkpoint's past (see `file::recover`); output outside it is
/// moved aside or refused ([`NewerOutput`]).
fn recover_sinks(plan: &Plan, options: &RunOptions) -> Result<(), RunError> {
    use crate::checkpoint::metadata::in_history;
    use crate::operators::sinks::file;

    let sinks: Vec<(&str, &std::path::Path)> = plan
        .graph()
        .node_weights()
        .filter_map(|node| match &node.planned {
            Planned::Sink(sink) => Some((node.name.as_str(), sink.committed_folder()?)),
            _ => None,
        })
        .collect();
    let Some(cp) = plan.checkpoint().filter(|_| !sinks.is_empty()) else {
        return Ok(());
    };
    // The pasts of the complete checkpoints: a pending file one of them
    // holds must survive until it is restored.
    // A store that cannot be listed now may be back for a restart.
    let pasts: Vec<(u64, Vec<(u64, u64)>)> = match OpendalStore::open_to_read(&cp.store) {
        Ok(store) => crate::checkpoint::inspect::existing_checkpoints(&store, &plan.job().name)
            .map_err(RunError::Checkpoint)?
            .iter()
            .map(|m| (m.checkpoint_id, m.past()))
            .collect(),
        Err(_) => Vec::new(),
    };
    let restorable = |n: u64| {
        pasts
            .iter()
            .any(|(id, past)| n <= *id && in_history(past, n))
    };
    let (id, history) = match &options.restore {
        Some(r) => (r.metadata.checkpoint_id, r.metadata.past()),
        None => (0, Vec::new()),
    };
    let point = file::RestorePoint {
        id,
        history: &history,
        restorable: &restorable,
    };
    for (name, path) in sinks {
        let recovery = file::recover(path, &point, options.newer_output, &options.run_id)
            .map_err(|e| RunError::Setup(format!("cannot recover the output of `{name}`: {e}")))?;
        if recovery.brought_back > 0 {
            tracing::info!(
                "`{name}`: {} output file{} of chk-{id}'s past brought back from an earlier restore's .superseded-* folder",
                recovery.brought_back,
                if recovery.brought_back == 1 { "" } else { "s" },
            );
        }
        if let Some(moved) = recovery.moved {
            tracing::warn!(
                "`{name}`: {} output file{} not in chk-{id}'s past (committed after it, or on another branch) moved to {}: the restore writes their records again",
                moved.count,
                if moved.count == 1 { "" } else { "s" },
                moved.to.display()
            );
        }
    }
    Ok(())
}

/// Commits each file sink's files pending for the last checkpoint this
/// attempt completed (and the earlier ones of its past).
fn settle_sinks(plan: &Plan, stats: &coordinator::Stats) {
    let Some(last) = stats.last else {
        return;
    };
    let point = crate::operators::sinks::file::RestorePoint {
        id: last,
        history: &stats.last_history,
        restorable: &|_| true,
    };
    for node in plan.graph().node_weights() {
        let Planned::Sink(sink) = &node.planned else {
            continue;
        };
        if let Some(folder) = sink.committed_folder() {
            if let Err(e) = crate::operators::sinks::file::settle(folder, &point) {
                tracing::warn!(
                    "`{}`: the output of chk-{last} is not all committed yet ({e}); the next restore commits it",
                    node.name
                );
            }
        }
    }
}

/// `DATAFLOW_INJECT_FAILURE=<node>:<records>` makes every instance of a
/// transform fail once after that many input records: a hook for testing
/// recovery, documented in docs/recovery.md.
fn injected_failure(node: &str) -> Option<u64> {
    let spec = std::env::var("DATAFLOW_INJECT_FAILURE").ok()?;
    let (name, n) = spec.rsplit_once(':')?;
    (name == node).then(|| n.parse().ok()).flatten()
}

/// Starts the coordinator thread; its result arrives on `c.done`.
fn start_coordinator(
    config: coordinator::Config,
    c: &mut JobCheckpointing,
    reports: Receiver<Report>,
    last_completed: Arc<AtomicU64>,
) -> Result<(), String> {
    let (control_tx, control_rx) = crossbeam_channel::bounded(1024);
    let (done_tx, done_rx) = crossbeam_channel::bounded(2);
    let links = coordinator::Links {
        triggers: std::mem::take(&mut c.triggers),
        uploaders: std::mem::take(&mut c.uploaders),
        commits: std::mem::take(&mut c.commits),
        last_completed,
    };
    let coordinator = Coordinator::new(config, Arc::clone(&c.store), links)?;
    std::thread::Builder::new()
        .name("checkpoints".into())
        .spawn(move || {
            let mut coordinator = coordinator;
            if let Err(cause) = coordinator.coordinate(&reports, &control_rx) {
                let _ = done_tx.send(CoordinatorEvent::Failed(cause));
            }
            let _ = done_tx.send(CoordinatorEvent::Finished(coordinator.drain(&reports)));
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    c.control = Some(control_tx);
    c.done = done_rx;
    Ok(())
}

fn open_state(plan: &Plan, run: &str) -> Result<StateFactory, RunError> {
    // Only snapshots need the entries changed since the last one.
    let track_changes = plan.checkpoint().is_some();
    Ok(match plan.state().backend {
        StateBackendKind::Memory => StateFactory::Memory { track_changes },
        StateBackendKind::Sled => {
            let root = std::path::Path::new(&plan.state().dir).to_owned();
            let owner = format!("job {}", plan.job().name);
            workdir::remove_abandoned(&root, &owner);
            let scratch = WorkDir::create(&root, &format!("{}-{run}", plan.job().name), &owner)
                .map_err(|e| RunError::Setup(format!("cannot open the sled state: {e}")))?;
            let store = crate::state::sled::SledStore::open(
                &scratch.path().join("sled"),
                plan.state().cache_entries,
            )
            .map_err(|e| RunError::Setup(e.to_string()))?;
            StateFactory::Sled {
                store,
                _scratch: scratch,
                track_changes,
            }
        }
    })
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}
