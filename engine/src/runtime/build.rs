//! Turns a plan node into the runnable operator of one of its instances.
//!
//! Nothing here can fail on what `check` validates; what can fail is the
//! outside world: a missing input file, an unwritable folder, the state
//! backend's disk.

use std::sync::Arc;

use super::instance::{ChainTime, Role};
use super::metrics::Metrics;
use crate::checkpoint::metadata::TimeState;
use crate::checkpoint::restore::{load_chain, Restore};
use crate::nodes::{Instance, Step};
use crate::operators::join::JoinOp;
use crate::operators::keyed::{Fold, Keyed};
use crate::operators::sinks::latency::Timed;
use crate::operators::window::WindowOp;
use crate::operators::{OpError, RestoreProblem, TimedState};
use crate::plan::{Plan, PlanNode, Planned};
use crate::runtime::cancel::Cancel;
use crate::state::memory::MemoryState;
use crate::state::sled::SledStore;
use crate::state::{KeyGroupRange, KeyedState};
use crate::time::inputs::InputWatermarks;
use crate::time::stamper::Stamper;

/// Where keyed operators get their state.
pub enum StateFactory {
    Memory {
        track_changes: bool,
    },
    Sled {
        store: SledStore,
        /// The run's working folder, which holds `store`: removed after it.
        _scratch: crate::workdir::WorkDir,
        track_changes: bool,
    },
}

impl StateFactory {
    fn state(&self, namespace: &str) -> Result<Box<dyn KeyedState>, OpError> {
        Ok(match self {
            StateFactory::Memory { track_changes } => Box::new(MemoryState::new(*track_changes)),
            StateFactory::Sled {
                store,
                track_changes,
                ..
            } => Box::new(store.state(namespace, *track_changes)?),
        })
    }
}

pub fn role(
    plan: &Plan,
    node: &PlanNode,
    index: u32,
    state: &StateFactory,
    cancel: &Cancel,
    restore: Option<&Restore>,
    metrics: &Metrics,
) -> Result<Role, OpError> {
    let at = Instance {
        index,
        parallelism: node.parallelism,
    };
    let max_parallelism = plan.job().max_parallelism;
    let keyed = |fold: Fold, ttl: Option<i64>| -> Result<Role, OpError> {
        let key = node
            .planned
            .key()
            .cloned()
            .ok_or(OpError::Bug("a keyed operator without a key"))?;
        let mut op = Keyed::new(key, fold, ttl, state.state(&node.name)?, max_parallelism);
        if let Some(restore) = restore {
            load_keyed_state(restore, node, index, max_parallelism, |kg, key, value| {
                op.check_state(&value).map_err(|why| {
                    damaged(
                        restore,
                        RestoreProblem::Unfit {
                            node: node.name.clone(),
                            why,
                        },
                    )
                })?;
                Ok(op.restore(kg, &key, value)?)
            })?;
        }
        Ok(Role::Transform(Box::new(op)))
    };
    // A window or a join: it takes the restored entries itself.
    let timed = |make: &dyn Fn(Box<dyn KeyedState>, u16) -> Box<dyn TimedState>| {
        let mine = KeyGroupRange::of_instance(index, node.parallelism, max_parallelism);
        let mut op = make(state.state(&node.name)?, mine.start);
        if let Some(restore) = restore {
            load_keyed_state(restore, node, index, max_parallelism, |kg, key, value| {
                op.restore(kg, &key, value, &restore.location)
            })?;
            op.restored(restored_time(node, index, Some(restore)));
        }
        Ok::<_, OpError>(Role::Transform(op))
    };
    let mut role = match &node.planned {
        Planned::Source(source) => Role::Source(source.build(at, cancel)?),
        Planned::Transform(transform) => match transform.build() {
            Step::Stateless(op) => Role::Transform(op),
            Step::Keyed(fold, ttl) => keyed(fold, ttl)?,
            Step::Window(spec) => timed(&|state, home| {
                Box::new(WindowOp::new(spec.clone(), state, max_parallelism, home))
            })?,
            Step::Join(spec) => timed(&|state, home| {
                Box::new(JoinOp::new(spec.clone(), state, max_parallelism, home))
            })?,
        },
        Planned::Sink(planned) => {
            let sink = planned.build(at, plan.checkpoint().is_some())?;
            Role::Sink(match planned.latency_field() {
                Some(field) => Box::new(Timed::new(sink, field, Arc::clone(&metrics.latency))),
                None => sink,
            })
        }
    };
    if let (Some(restore), Role::Source(source)) = (restore, &mut role) {
        let positions: Vec<serde_json::Value> = restore
            .metadata
            .instances
            .values()
            .filter(|i| i.node == node.name)
            .filter_map(|i| i.source_position.clone())
            .collect();
        if !positions.is_empty() {
            source.restore(&positions)?;
        }
    }
    Ok(role)
}

/// The chain time of an instance whose head is `node`, for a chain whose
/// records carry event times: restored from where the checkpoint's
/// instance of the same index was, or, at another parallelism, from the
/// earliest of the node's instances (all of them were at the same
/// watermark at an aligned barrier; a source's newest time read, the
/// least of them, holds no record back that was on time). An instance
/// that had no time yet recorded none, and counts as the earliest.
pub fn chain_time(
    node: &PlanNode,
    index: u32,
    inputs: usize,
    restore: Option<&Restore>,
) -> Option<ChainTime> {
    let restored = restored_time(node, index, restore);
    match (&node.event_time, node.planned.is_source()) {
        (Some(settings), true) => Some(ChainTime::Source(Stamper::new(settings.clone(), restored))),
        (_, false) if node.timed => Some(ChainTime::Inputs(InputWatermarks::new(inputs, restored))),
        _ => None,
    }
}

/// Where instance `index` of `node` was in event time at the checkpoint
/// restored (see [`chain_time`]).
fn restored_time(node: &PlanNode, index: u32, restore: Option<&Restore>) -> Option<i64> {
    restore.and_then(|r| {
        let at = |t: Option<TimeState>| {
            t.map(|t| match t {
                TimeState::NewestRead(ms) | TimeState::Watermark(ms) => ms,
            })
        };
        let old: Vec<_> = r
            .metadata
            .instances
            .values()
            .filter(|i| i.node == node.name)
            .collect();
        if old.iter().all(|i| i.parallelism == node.parallelism) {
            at(old.iter().find(|i| i.instance == index)?.event_time)
        } else {
            old.iter().map(|i| at(i.event_time)).min().flatten()
        }
    })
}

/// Why a checkpoint's state cannot be restored.
fn damaged(restore: &Restore, why: RestoreProblem) -> OpError {
    OpError::Restore {
        location: restore.location.clone(),
        why: Box::new(why),
    }
}

/// Loads the keyed state of instance `index` of `node` from a checkpoint:
/// from every old instance whose key groups overlap this one's, so the
/// parallelism may differ from the checkpoint's. `put` takes each entry.
fn load_keyed_state(
    restore: &Restore,
    node: &PlanNode,
    index: u32,
    max_parallelism: u32,
    mut put: impl FnMut(u16, Box<[u8]>, crate::value::Value) -> Result<(), OpError>,
) -> Result<(), OpError> {
    let mine = KeyGroupRange::of_instance(index, node.parallelism, max_parallelism);
    for old in restore
        .metadata
        .instances
        .values()
        .filter(|i| i.node == node.name && !i.files.is_empty())
    {
        let theirs = KeyGroupRange::of_instance(old.instance, old.parallelism, max_parallelism);
        if theirs.end < mine.start || theirs.start > mine.end {
            continue;
        }
        let entries = load_chain(&*restore.store, &old.files, max_parallelism, |kg| {
            mine.contains(kg)
        })
        .map_err(|e| damaged(restore, e.into()))?;
        for ((kg, key), value) in entries {
            let value = crate::state::codec::decode_value(&value)
                .map_err(|e| damaged(restore, RestoreProblem::Value(e)))?;
            put(kg, key, value)?;
        }
    }
    Ok(())
}
