//! Starting one chain instance: building its members, registering them
//! with the checkpoint coordinator and the status line, and running the
//! chain on a thread of its own.
//!
//! Apart from the supervisor in `mod.rs`, which starts every instance
//! through [`start_instance`] and then only waits for the [`Ended`] each
//! thread sends as its last word.

use std::sync::Arc;

use crossbeam_channel::Sender;

use super::checkpointing::JobCheckpointing;
use super::instance::{self, Finish, Instance};
use super::metrics::{Activity, Metrics};
use super::{alignment, build, output, physical, Job, RunError, RunOptions};
use super::{InstanceError, SetupError};
use crate::checkpoint::coordinator::Participant;
use crate::checkpoint::uploader::{self, UploaderConfig};
use crate::plan::Plan;
use crate::runtime::cancel::Canceller;
use build::StateFactory;

/// A chain instance thread's last word.
pub(super) struct Ended {
    /// Its members' instance names and nodes, upstream first.
    pub(super) members: Vec<(String, String)>,
    pub(super) result: Result<Finish, instance::Failure>,
}

/// Builds the members of one chain instance, registers them with the
/// checkpoint coordinator and the status line, and starts its thread.
#[allow(clippy::too_many_arguments)]
pub(super) fn start_instance(
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
    let activity = Arc::new(Activity::default());
    for (k, &n) in wiring.nodes.iter().enumerate() {
        let node = &plan.graph()[n];
        let name = format!("{}#{}", node.name, wiring.index);
        let metrics = Arc::new(Metrics::new(Arc::clone(&activity)));
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
        .map_err(|source| SetupError::Build {
            instance: name.clone(),
            node: node.name.clone(),
            source,
        })?;
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
                    .map_err(SetupError::Thread)?;
                    c.uploaders.push(tx.clone());
                    Some(tx)
                } else {
                    None
                };
                // Sinks commit, sources may tell their input (Kafka offsets).
                let commits = (node.planned.is_sink() || node.planned.is_source()).then(|| {
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
            tap: options
                .live
                .as_ref()
                .map(|live| live.taps.point(&node.name))
                .unwrap_or_default(),
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
    let head = &plan.graph()[wiring.nodes[0]];
    let time = build::chain_time(
        head,
        wiring.index,
        wiring.inputs.len(),
        options.restore.as_deref(),
    );
    let instance = Instance {
        checkpoint,
        time,
        inputs: wiring.inputs,
        sides: wiring.sides,
        output: output::Output::new(
            wiring.outputs,
            wiring.late_outputs,
            plan.job().batch_size as usize,
            plan.job().buffer_timeout,
            output::Waits {
                cancel: cancel.clone(),
                activity: Arc::clone(&activity),
            },
        ),
        cancel,
        batch_size: plan.job().batch_size as usize,
        activity,
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
                        cause: InstanceError::Panic(panic_message(&panic)),
                    })
                });
            let _ = ended_tx.send(Ended {
                members: names,
                result,
            });
        })
        .map_err(|e| SetupError::Thread(e).into())
}

/// `DATAFLOW_INJECT_FAILURE=<node>:<records>` makes every instance of a
/// transform fail once after that many input records: a hook for testing
/// recovery, documented in docs/recovery.md.
fn injected_failure(node: &str) -> Option<u64> {
    let spec = std::env::var("DATAFLOW_INJECT_FAILURE").ok()?;
    let (name, n) = spec.rsplit_once(':')?;
    (name == node).then(|| n.parse().ok()).flatten()
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}
