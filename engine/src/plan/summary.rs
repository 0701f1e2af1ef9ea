//! What `dataflow check` prints about a valid plan: its nodes, edges and
//! the settings in force, defaults filled in.

use std::fmt::Write;

use petgraph::Direction;
use serde_json::{json, Value};

use super::settings::{human, StateBackendKind};
use super::{Plan, Planned};
use crate::nodes::Delivery;

/// A duration in milliseconds as [`human`] writes it.
fn human_ms(ms: i64) -> String {
    human(std::time::Duration::from_millis(ms.max(0) as u64))
}

impl Plan {
    /// The delivery guarantee a sink gives after a failure and a restore.
    /// The delivery guarantee of a sink after failures and restores.
    fn guarantee(&self, planned: &Planned) -> Option<&'static str> {
        let Planned::Sink(sink) = planned else {
            return None;
        };
        let Some(cp) = &self.checkpoint else {
            return Some("no recovery: without checkpoints a failed job starts over");
        };
        let replayable = self.graph.node_weights().all(|n| match &n.planned {
            Planned::Source(source) => source.replayable(),
            _ => true,
        });
        Some(match sink.delivery() {
            Delivery::Discards => "discards",
            Delivery::TwoPhaseCommit
                if replayable && cp.mode == crate::spec::CheckpointMode::ExactlyOnce =>
            {
                "exactly-once (two-phase commit)"
            }
            _ => "at-least-once",
        })
    }

    /// A human-readable summary, several lines.
    pub fn summary_text(&self) -> String {
        let mut out = String::new();
        let g = &self.graph;
        let _ = writeln!(
            out,
            "job `{}`: {} nodes, {} edges, max_parallelism {}, batches of {} records or {}",
            self.job.name,
            g.node_count(),
            g.edge_count(),
            self.job.max_parallelism,
            self.job.batch_size,
            human(self.job.buffer_timeout)
        );
        let width = self
            .order()
            .iter()
            .map(|&n| g[n].name.len())
            .max()
            .unwrap_or(0);
        for &n in &self.order {
            let node = &g[n];
            let inputs: Vec<String> = g
                .edges_directed(n, Direction::Incoming)
                .map(|e| {
                    format!(
                        "{} ({})",
                        g[petgraph::visit::EdgeRef::source(&e)].name,
                        e.weight().name()
                    )
                })
                .collect();
            let mut line = format!(
                "  {:<width$}  {:<9} ×{}",
                node.name, node.type_name, node.parallelism
            );
            if !inputs.is_empty() {
                let _ = write!(line, "  ← {}", inputs.join(", "));
            }
            if let Some(shuffle) = &node.shuffle {
                let _ = write!(
                    line,
                    "  [partitioned by the key of `{}`, read before this map]",
                    shuffle.keyed
                );
            }
            if let Some(t) = &node.event_time {
                let _ = write!(
                    line,
                    "  [event time `{}`, watermark {} behind{}{}]",
                    t.written,
                    human_ms(t.max_out_of_orderness_ms),
                    t.idle_timeout
                        .map(|d| format!(", idle after {}", human(d)))
                        .unwrap_or_default(),
                    t.max_future_ms
                        .map(|ms| format!(", at most {} ahead", human_ms(ms)))
                        .unwrap_or_default(),
                );
            }
            if let Planned::Source(source) = &node.planned {
                if self.checkpoint.is_some() && !source.replayable() {
                    line.push_str("  [not replayable: after a restore, at-most-once for the records in flight]");
                }
            }
            if let Some(g) = self.guarantee(&node.planned) {
                let _ = write!(line, "  [{g}]");
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        let chains = self.chains();
        let threads: u32 = chains.iter().map(|c| g[c[0]].parallelism).sum();
        let shown: Vec<String> = chains
            .iter()
            .map(|c| {
                let names: Vec<&str> = c.iter().map(|&n| g[n].name.as_str()).collect();
                format!("{} ×{}", names.join(" → "), g[c[0]].parallelism)
            })
            .collect();
        let _ = writeln!(out, "  threads: {threads} ({})", shown.join(", "));
        match &self.checkpoint {
            None => out.push_str("  checkpoints: off\n"),
            Some(c) => {
                let s = c;
                let _ = writeln!(
                    out,
                    "  checkpoints: every {}, {}, min_pause {}, timeout {}, max_concurrent {}, tolerable_failures {}, {}, retain {}, on_cancel {}",
                    human(s.interval),
                    serde_json::to_value(s.mode).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
                    human(s.min_pause),
                    human(s.timeout),
                    s.max_concurrent,
                    s.tolerable_failures,
                    if s.incremental { format!("incremental (full every {} increments)", s.max_chain) } else { "full snapshots".to_owned() },
                    s.retain,
                    serde_json::to_value(s.on_cancel).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
                );
                let _ = writeln!(
                    out,
                    "  checkpoint store: {}/{}/",
                    c.store.to_string().trim_end_matches('/'),
                    self.job.name
                );
            }
        }
        let backend = match self.state.backend {
            StateBackendKind::Memory => "memory".to_owned(),
            StateBackendKind::Sled => format!("sled in {}", self.state.dir),
        };
        let _ = writeln!(out, "  state: {backend}");
        out
    }

    /// The same summary as JSON, for tools.
    pub fn summary_json(&self) -> Value {
        let g = &self.graph;
        let nodes: Vec<Value> = self
            .order()
            .iter()
            .map(|&n| {
                let node = &g[n];
                let inputs: Vec<Value> = g
                    .edges_directed(n, Direction::Incoming)
                    .map(|e| json!({"from": g[petgraph::visit::EdgeRef::source(&e)].name, "edge": e.weight().name()}))
                    .collect();
                let mut v = json!({
                    "name": node.name,
                    "type": node.type_name,
                    "parallelism": node.parallelism,
                    "on_error": node.on_error,
                    "inputs": inputs,
                });
                if let Some(g) = self.guarantee(&node.planned) {
                    v["guarantee"] = json!(g);
                }
                if let Planned::Source(source) = &node.planned {
                    v["replayable"] = json!(source.replayable());
                }
                if let Some(shuffle) = &node.shuffle {
                    v["partitioned_by_key_of"] = json!(shuffle.keyed);
                }
                v["event_times"] = json!(node.timed);
                if let Some(t) = &node.event_time {
                    v["event_time"] = json!({
                        "timestamp": t.written,
                        "max_out_of_orderness": human_ms(t.max_out_of_orderness_ms),
                        "idle_timeout": t.idle_timeout.map(human),
                        "max_future": t.max_future_ms.map(human_ms),
                    });
                }
                v
            })
            .collect();
        json!({
            "name": self.job.name,
            "parallelism": self.job.parallelism,
            "max_parallelism": self.job.max_parallelism,
            "batch_size": self.job.batch_size,
            "buffer_timeout": human(self.job.buffer_timeout),
            "chaining": self.job.chaining,
            "nodes": nodes,
            "chains": self.chains().iter().map(|c| c.iter().map(|&n| g[n].name.clone()).collect::<Vec<_>>()).collect::<Vec<_>>(),
            "checkpoint": self.checkpoint.as_ref().map(|c| json!({
                "interval": human(c.interval),
                "mode": c.mode,
                "min_pause": human(c.min_pause),
                "timeout": human(c.timeout),
                "max_concurrent": c.max_concurrent,
                "tolerable_failures": c.tolerable_failures,
                "incremental": c.incremental,
                "max_chain": c.max_chain,
                // Never a secret in what `check` prints.
                "store": super::store::redact(&c.store_uri),
                "retain": c.retain,
                "on_cancel": c.on_cancel,
            })),
            "state": {"backend": self.state.backend, "dir": self.state.dir},
        })
    }
}
