//! The executor: runs a [`Plan`] as one OS thread per operator instance,
//! connected by bounded crossbeam channels.
//!
//! The plan is expanded into a physical graph ([`physical`]); each
//! instance runs the loop in [`instance`] on a thread named `<node>#<i>`.
//! The calling thread supervises: it waits for instances to end, cancels
//! everything on the first failure or on Ctrl-C/SIGTERM, draws the status
//! line, and reports how the job ended. Starting an instance's thread is
//! `spawn`'s, the job's part in checkpoints `checkpointing`'s, and
//! settling file sinks' output around an attempt `sink_recovery`'s.

mod alignment;
mod build;
pub mod cancel;
mod checkpointing;
pub mod error;
mod instance;
pub mod lifecycle;
pub mod live;
mod message;
mod metrics;
mod output;
mod physical;
pub mod signals;
mod sink_recovery;
mod spawn;
mod status;
pub mod tap;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use petgraph::graph::NodeIndex;

use crate::checkpoint::coordinator::{self, Control};
use crate::checkpoint::restore::Restore;
use crate::checkpoint::{retention, Report, SavepointFailure, SavepointRequest};
use crate::error::Class;
use crate::plan::settings::{OnCancel, StateBackendKind};
use crate::plan::Plan;
use crate::runtime::cancel::Canceller;
use crate::workdir::{self, WorkDir};
use build::StateFactory;
use checkpointing::{start_coordinator, CoordinatorEvent, JobCheckpointing};
use instance::Finish;
use message::Message;
use metrics::Metrics;
use sink_recovery::{recover_sinks, settle_sinks};
use spawn::{start_instance, Ended};

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
    /// The control endpoint's port (0: any free port).
    pub control_port: u16,
    /// Its address (none: 127.0.0.1).
    pub control_address: Option<std::net::IpAddr>,
    /// The token its requests must carry ([`crate::control::server::Access`]).
    pub control_token: Option<String>,
    /// Savepoint and stop requests from the control endpoint.
    pub requests: Option<Receiver<SavepointRequest>>,
    /// Ctrl-C and SIGTERM ([`signals::listen`]), for the whole run.
    pub signals: Option<Receiver<i32>>,
    /// What the control endpoint shows of the run.
    pub live: Option<Arc<live::Live>>,
}

pub use crate::operators::sinks::file::NewerOutput;
pub use error::{CheckpointingError, InstanceError, RunError, SetupError};

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

    /// Records its windows left out as late, over the job's life.
    pub fn late(&self) -> u64 {
        self.instances
            .iter()
            .map(|m| m.late.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
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

/// Runs one attempt of the plan to its end; returns how it ended and the
/// summary line. [`lifecycle::run`] restarts it after a failure.
///
/// A failure comes with the summary and the newest checkpoint this attempt
/// completed, from which a restart may resume.
#[allow(
    clippy::result_large_err,
    reason = "called once per attempt, never on the path of records"
)]
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
        Some(cp) => Some(
            JobCheckpointing::open(cp, reports_tx.clone()).map_err(|e| (e, String::new(), None))?,
        ),
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
            let participants = std::mem::take(&mut c.participants);
            let config = checkpointing::coordinator_config(plan, options, cp, participants);
            let last_completed = last_completed.clone().unwrap_or_default();
            let history = options
                .live
                .as_ref()
                .map(|l| Arc::clone(&l.checkpoints))
                .unwrap_or_default();
            if let Err(e) = start_coordinator(config, c, reports_rx, last_completed, history) {
                // Listing the store failed, or a thread could not start:
                // either may pass, so a restart may try again.
                first_error = Some(RunError::Checkpoint(e));
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
    if let Some(live) = &options.live {
        live.attempt_started(&job);
    }
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
                            first_error = Some(RunError::Checkpoint(cause.into()));
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
                        let _ = request.reply.send(Err(SavepointFailure::new(Class::User, why)));
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
        if let Some(live) = &options.live {
            live.sample();
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
            // Finished or stopped, every sink committed the last checkpoint.
            let clean = first_error.is_none() && !matches!(outcome, Outcome::Cancelled(_));
            settle_sinks(plan, stats, clean);
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

/// Runs the plan once to its end in this process, with no control
/// endpoint, no restarts and no summary: for `dataflow test`, whose plans
/// take no checkpoints.
#[allow(
    clippy::result_large_err,
    reason = "called once per test, never on the path of records"
)]
pub fn run_in_process(plan: &Plan) -> Result<Outcome, RunError> {
    attempt(plan, &RunOptions::default())
        .map(|(outcome, _)| outcome)
        .map_err(|(error, _, _)| error)
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
                .map_err(SetupError::from)?;
            let store = crate::state::sled::SledStore::open(
                &scratch.path().join("sled"),
                plan.state().cache_entries,
            )
            .map_err(SetupError::from)?;
            StateFactory::Sled {
                store,
                _scratch: scratch,
                track_changes,
            }
        }
    })
}
