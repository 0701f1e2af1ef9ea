//! Whether a checkpoint's state fits a plan, node by node: a pure decision
//! (no store, no I/O), used by `run --from` before anything starts and
//! reported by `check --against`.

use std::collections::{BTreeMap, BTreeSet};

use super::metadata::Metadata;
use crate::plan::{Plan, Planned};

/// What becomes of one node's state or position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Restored, from `from` instances into `to` (a rescale when they differ).
    Restored { from: u32, to: u32 },
    /// The checkpoint has nothing for this node: it starts empty, or (a
    /// source) from the beginning of its input.
    New,
    /// The checkpoint holds state the spec has no place for (the node is
    /// gone, or no longer keeps such state), or that `--drop-state` names.
    Dropped { on_purpose: bool },
    /// The state cannot be restored into this node; the text says why.
    Incompatible(String),
}

/// One node's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeVerdict {
    pub node: String,
    pub verdict: Verdict,
}

/// The whole assessment.
#[derive(Debug, Default)]
pub struct Assessment {
    /// Problems of the checkpoint as a whole (max_parallelism, damage).
    pub problems: Vec<String>,
    /// The plan's stateful nodes and replayable sources, in plan order,
    /// then the nodes only the checkpoint has.
    pub nodes: Vec<NodeVerdict>,
}

impl Assessment {
    /// Why the checkpoint cannot be restored into the plan, one reason
    /// per line; none when it can. State dropped without `--drop-state`
    /// is a reason unless `allow_non_restored`.
    pub fn refusals(&self, id: u64, allow_non_restored: bool) -> Vec<String> {
        let mut reasons = self.problems.clone();
        for n in &self.nodes {
            match &n.verdict {
                Verdict::Incompatible(why) => reasons.push(format!(
                    "the state of `{}` in chk-{id} cannot be restored: {why}; run with --drop-state {} to start it empty",
                    n.node, n.node
                )),
                Verdict::Dropped { on_purpose: false } if !allow_non_restored => reasons.push(format!(
                    "chk-{id} holds the state of node `{}`, which the spec no longer has (or no longer keeps such state); rename the node back, or run with --drop-state {} (or --allow-non-restored-state) to start without it",
                    n.node, n.node
                )),
                _ => {}
            }
        }
        reasons
    }
}

/// Assesses restoring `metadata` into `plan`, dropping the state of the
/// nodes in `drop` on purpose.
pub fn assess(plan: &Plan, metadata: &Metadata, drop: &BTreeSet<String>) -> Assessment {
    let id = metadata.checkpoint_id;
    let mut out = Assessment::default();
    if metadata.max_parallelism != plan.job().max_parallelism {
        out.problems.push(format!(
            "chk-{id} was taken with max_parallelism {} and the spec has {}: keyed state is split into that many key groups, so it must stay the same",
            metadata.max_parallelism, plan.job().max_parallelism
        ));
    }
    // By node: its parallelism then, and whether it held state or a position.
    let mut held: BTreeMap<&str, (u32, bool, bool)> = BTreeMap::new();
    for (name, state) in &metadata.instances {
        if state.parallelism == 0
            || state.instance >= state.parallelism
            || state.parallelism > metadata.max_parallelism
        {
            out.problems.push(format!(
                "chk-{id} is damaged: its metadata says `{name}` is instance {} of {} (max_parallelism {})",
                state.instance, state.parallelism, metadata.max_parallelism
            ));
            continue;
        }
        let entry = held
            .entry(&state.node)
            .or_insert((state.parallelism, false, false));
        entry.1 |= !state.files.is_empty();
        entry.2 |= state.source_position.is_some();
    }
    // Nodes the checkpoint knows kept state, even if empty then.
    for name in metadata.nodes.keys() {
        held.entry(name).or_insert((0, true, false)).1 = true;
    }
    let mut seen = BTreeSet::new();
    for &index in plan.order() {
        let node = &plan.graph()[index];
        let then = held.get(node.name.as_str());
        let verdict = match (&node.planned, &node.state) {
            (Planned::Source(source), _) => match then {
                Some(&(_, _, true)) if drop.contains(&node.name) => {
                    Verdict::Dropped { on_purpose: true }
                }
                Some(&(from, _, true)) => match source.rescale(from, node.parallelism) {
                    Err(why) => Verdict::Incompatible(why.to_string()),
                    Ok(()) => Verdict::Restored {
                        from,
                        to: node.parallelism,
                    },
                },
                _ if source.replayable() => Verdict::New,
                _ => continue,
            },
            (_, Some(shape)) => match then {
                Some(&(_, true, _)) if drop.contains(&node.name) => {
                    Verdict::Dropped { on_purpose: true }
                }
                Some(&(from, true, _)) => match metadata.nodes.get(&node.name) {
                    Some(old) if old.kind != shape.kind => Verdict::Incompatible(format!(
                        "it was a `{}` and is now a `{}`",
                        old.kind, shape.kind
                    )),
                    Some(old) if old.key != shape.key => Verdict::Incompatible(format!(
                        "it was keyed by `{}` and is now keyed by `{}`",
                        old.key, shape.key
                    )),
                    // A version 1 checkpoint did not record the shape.
                    _ => Verdict::Restored {
                        from,
                        to: node.parallelism,
                    },
                },
                _ => Verdict::New,
            },
            _ => continue,
        };
        seen.insert(node.name.as_str());
        out.nodes.push(NodeVerdict {
            node: node.name.clone(),
            verdict,
        });
    }
    for (name, &(_, state, position)) in &held {
        if (state || position) && !seen.contains(name) {
            out.nodes.push(NodeVerdict {
                node: (*name).to_owned(),
                verdict: Verdict::Dropped {
                    on_purpose: drop.contains(*name),
                },
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::metadata::{InstanceState, Kind, NodeShape};

    fn plan(transforms: &str, max_parallelism: u32) -> Plan {
        let text = format!(
            "name: j\nmax_parallelism: {max_parallelism}\nsources:\n  src: {{type: generate, count: 10, parallelism: 2}}\ntransforms:\n{transforms}\nsinks:\n  out: {{type: blackhole, inputs: [last]}}\n"
        );
        crate::plan::from_text(&text)
    }

    /// A checkpoint of `src` at parallelism 2 and of `(node, kind, key, parallelism)`.
    fn checkpoint(nodes: &[(&str, &str, &str, u32)]) -> Metadata {
        let mut instances: BTreeMap<String, InstanceState> = (0..2)
            .map(|i| {
                let state = InstanceState {
                    node: "src".into(),
                    instance: i,
                    parallelism: 2,
                    files: Vec::new(),
                    source_position: Some(serde_json::json!(5)),
                    sink_pending: None,
                    event_time: None,
                };
                (format!("src#{i}"), state)
            })
            .collect();
        for (node, _, _, p) in nodes {
            for i in 0..*p {
                let file = super::super::metadata::FileRef {
                    path: format!("{node}-{i}"),
                    size: 1,
                    checksum: String::new(),
                    kind: super::super::layout::SnapshotKind::Full,
                    checkpoint: 1,
                };
                let state = InstanceState {
                    node: (*node).into(),
                    instance: i,
                    parallelism: *p,
                    files: vec![file],
                    source_position: None,
                    sink_pending: None,
                    event_time: None,
                };
                instances.insert(format!("{node}#{i}"), state);
            }
        }
        Metadata {
            format_version: 2,
            job: "j".into(),
            spec_hash: String::new(),
            checkpoint_id: 7,
            kind: Kind::Checkpoint,
            run: "r".into(),
            restored_from: None,
            history: Vec::new(),
            triggered_at_ms: 0,
            completed_at_ms: 0,
            mode: crate::plan::settings::CheckpointMode::ExactlyOnce,
            incremental: false,
            max_parallelism: 128,
            nodes: nodes
                .iter()
                .map(|(n, kind, key, _)| {
                    let shape = NodeShape {
                        kind: (*kind).into(),
                        key: (*key).into(),
                    };
                    ((*n).to_owned(), shape)
                })
                .collect(),
            instances,
            alignment_ms: 0.0,
            sync_ms: 0.0,
        }
    }

    fn verdicts(a: &Assessment) -> Vec<(&str, &Verdict)> {
        a.nodes
            .iter()
            .map(|n| (n.node.as_str(), &n.verdict))
            .collect()
    }

    #[test]
    fn every_kind_of_change_gets_its_verdict() {
        let taken = checkpoint(&[
            ("c", "count", "this.k", 2),
            ("s", "sum", "k", 1),
            ("gone", "max", "k", 1),
        ]);
        let now = plan(
            "  c: {type: count, inputs: [src], key: this.k, parallelism: 4}\n  s: {type: sum, inputs: [c], key: other, field: count}\n  fresh: {type: min, inputs: [s], key: k, field: count}\n  last: {type: map, inputs: [fresh], expr: this}",
            128,
        );
        let a = assess(&now, &taken, &BTreeSet::new());
        assert!(a.problems.is_empty());
        assert_eq!(
            verdicts(&a),
            [
                ("src", &Verdict::Restored { from: 2, to: 2 }),
                ("c", &Verdict::Restored { from: 2, to: 4 }),
                (
                    "s",
                    &Verdict::Incompatible(
                        "it was keyed by `k` and is now keyed by `other`".into()
                    )
                ),
                ("fresh", &Verdict::New),
                ("gone", &Verdict::Dropped { on_purpose: false }),
            ]
        );
        assert_eq!(a.refusals(7, false).len(), 2);
        // With --allow-non-restored-state the removed node is no reason;
        // the changed key still is.
        assert_eq!(a.refusals(7, true).len(), 1);
        // Dropping both on purpose leaves nothing to refuse.
        let drop = BTreeSet::from(["s".to_owned(), "gone".to_owned()]);
        let a = assess(&now, &taken, &drop);
        assert!(
            a.refusals(7, false).is_empty(),
            "{:?}",
            a.refusals(7, false)
        );
        assert_eq!(a.nodes[2].verdict, Verdict::Dropped { on_purpose: true });
    }

    #[test]
    fn changed_aggregates_parallelism_of_generators_and_max_parallelism_are_refused() {
        let taken = checkpoint(&[("last", "sum", "k", 1)]);
        let a = assess(
            &plan("  last: {type: max, inputs: [src], key: k, field: v}", 128),
            &taken,
            &BTreeSet::new(),
        );
        assert_eq!(
            a.nodes[1].verdict,
            Verdict::Incompatible("it was a `sum` and is now a `max`".into())
        );
        let a = assess(
            &plan("  last: {type: sum, inputs: [src], key: k, field: v}", 64),
            &taken,
            &BTreeSet::new(),
        );
        assert_eq!(a.problems.len(), 1, "{:?}", a.problems);
        let mut at_three = taken.clone();
        for i in at_three.instances.values_mut().filter(|i| i.node == "src") {
            i.parallelism = 3;
        }
        let a = assess(
            &plan("  last: {type: sum, inputs: [src], key: k, field: v}", 128),
            &at_three,
            &BTreeSet::new(),
        );
        assert!(matches!(a.nodes[0].verdict, Verdict::Incompatible(_)));
    }
}
