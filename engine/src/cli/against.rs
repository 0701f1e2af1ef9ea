//! `dataflow check --against`: node by node, what a restore of a
//! checkpoint or savepoint into the spec would do with its state.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::json;

use crate::checkpoint::compat::{assess, Assessment, Verdict};
use crate::checkpoint::error::CheckpointError;
use crate::checkpoint::inspect::utc;
use crate::checkpoint::metadata::Metadata;
use crate::checkpoint::restore::resolve;
use crate::plan::{Plan, StoreLocation};
use crate::spec::{spans, Loaded};

/// An assessed node: its name, where the spec defines it (line, column),
/// its verdict, and the verdict in words.
type Node = (String, Option<(usize, usize)>, Verdict, String);

/// The comparison of a spec with a checkpoint.
pub struct Comparison {
    location: String,
    metadata: Metadata,
    nodes: Vec<Node>,
    /// Why a restore would be refused; empty when it would not.
    pub refusals: Vec<String>,
}

/// Finds and verifies `from` (as `run --from` does) and assesses it.
pub fn compare(loaded: &Loaded, plan: &Plan, from: &str) -> Result<Comparison, CheckpointError> {
    let is_location = from.contains("://") || from.starts_with('/');
    let store = match plan.checkpoint() {
        Some(cp) => cp.store.clone(),
        // Only a full location can be found without the spec's store.
        None if is_location => StoreLocation::local("/")?,
        None => return Err(CheckpointError::NeedsLocation),
    };
    let (restore, _) = resolve(&store, &plan.job().name, from)?;
    let assessment: Assessment = assess(plan, &restore.metadata, &BTreeSet::new());
    let refusals = assessment.refusals(restore.metadata.checkpoint_id, false);
    let nodes = assessment
        .nodes
        .iter()
        .map(|n| {
            let at = ["sources", "transforms", "sinks"]
                .iter()
                .find_map(|section| {
                    let path = spans::path(&[section, &n.node]);
                    let span = loaded
                        .spans
                        .key(&path)
                        .filter(|_| loaded.spans.contains(&path))?;
                    Some(loaded.file.line_col(span.start))
                });
            let text = describe(plan, &restore.metadata, &n.node, &n.verdict);
            (n.node.clone(), at, n.verdict.clone(), text)
        })
        .collect();
    Ok(Comparison {
        location: restore.location,
        metadata: restore.metadata,
        nodes,
        refusals,
    })
}

/// What becomes of one node, in words.
fn describe(plan: &Plan, metadata: &Metadata, node: &str, verdict: &Verdict) -> String {
    let in_plan = plan.graph().node_weights().find(|n| n.name == node);
    let rescale = |from: u32, to: u32| {
        if from == to {
            format!("{to} instance{}", if to == 1 { "" } else { "s" })
        } else {
            format!("rescaled from {from} instances to {to}")
        }
    };
    match (verdict, in_plan.and_then(|n| n.state.as_ref())) {
        (Verdict::Restored { from, to }, Some(shape)) => format!(
            "state restored: {} keyed by `{}`, {}",
            shape.kind,
            shape.key,
            rescale(*from, *to)
        ),
        (Verdict::Restored { from, to }, None) => {
            format!("position restored, {}", rescale(*from, *to))
        }
        (Verdict::New, Some(_)) => "new: starts with empty state".to_owned(),
        (Verdict::New, None) => "new: reads its input from the beginning".to_owned(),
        (Verdict::Dropped { .. }, _) => {
            let what = metadata
                .nodes
                .get(node)
                .map(|s| format!(" ({} keyed by `{}`)", s.kind, s.key))
                .unwrap_or_default();
            format!(
                "would be dropped{what}: the spec no longer has this node, or it keeps no such state (rename it back, or restore with --drop-state {node})"
            )
        }
        (Verdict::Incompatible(why), _) => format!("cannot be restored: {why}"),
    }
}

impl Comparison {
    pub fn text(&self) -> String {
        let m = &self.metadata;
        let mut out = String::new();
        let run = if m.run.is_empty() {
            "an earlier run"
        } else {
            m.run.as_str()
        };
        let _ = writeln!(
            out,
            "against {} ({} {}, taken {} UTC by run {run}):",
            self.location,
            if m.kind == crate::checkpoint::metadata::Kind::Savepoint {
                "savepoint"
            } else {
                "checkpoint"
            },
            m.checkpoint_id,
            utc(m.completed_at_ms),
        );
        let width = self.nodes.iter().map(|n| n.0.len()).max().unwrap_or(0);
        for (node, at, _, text) in &self.nodes {
            let at = at.map_or(String::new(), |(l, c)| format!("line {l}, column {c}"));
            let _ = writeln!(out, "  {node:<width$}  {at:<20}  {text}");
        }
        if self.refusals.is_empty() {
            let _ = writeln!(out, "  restorable: `run --from` would start from it");
        } else {
            for r in &self.refusals {
                let _ = writeln!(out, "  refused: {r}");
            }
        }
        out
    }

    pub fn json(&self) -> serde_json::Value {
        let nodes: Vec<serde_json::Value> = self
            .nodes
            .iter()
            .map(|(node, at, verdict, text)| {
                let kind = match verdict {
                    Verdict::Restored { .. } => "restored",
                    Verdict::New => "new",
                    Verdict::Dropped { .. } => "dropped",
                    Verdict::Incompatible(_) => "incompatible",
                };
                json!({
                    "node": node,
                    "line": at.map(|a| a.0),
                    "column": at.map(|a| a.1),
                    "verdict": kind,
                    "message": text,
                })
            })
            .collect();
        json!({
            "location": self.location,
            "checkpoint_id": self.metadata.checkpoint_id,
            "restorable": self.refusals.is_empty(),
            "refusals": self.refusals,
            "nodes": nodes,
        })
    }
}
