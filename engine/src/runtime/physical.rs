//! The physical graph: each plan node expanded into its instances, and
//! each plan edge into bounded channels between them.
//!
//! Forward edges connect instance i to instance i; rebalance and hash
//! edges connect every upstream instance to every downstream one, so each
//! channel has one sender: an instance can tell its inputs apart, which is
//! what barrier alignment needs.

use crossbeam_channel::Receiver;
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;

use super::message::Message;
use super::output::OutEdge;
use crate::plan::{EdgeKind, Plan};

/// Batches a channel holds before its sender blocks.
pub const CHANNEL_CAPACITY: usize = 4;

/// One instance's place in the physical graph.
pub struct Wiring {
    pub node: NodeIndex,
    pub index: u32,
    pub inputs: Vec<Receiver<Message>>,
    pub outputs: Vec<OutEdge>,
}

pub struct Physical {
    /// Every instance, in the plan's topological order.
    pub instances: Vec<Wiring>,
    /// Every channel's receiving end and the node it feeds, to watch how full it is.
    pub queues: Vec<(NodeIndex, Receiver<Message>)>,
}

pub fn expand(plan: &Plan) -> Physical {
    let g = &plan.graph;
    let mut instances = Vec::new();
    let mut first = vec![0usize; g.node_count()];
    for &n in &plan.order {
        first[n.index()] = instances.len();
        for index in 0..g[n].parallelism {
            instances.push(Wiring {
                node: n,
                index,
                inputs: Vec::new(),
                outputs: Vec::new(),
            });
        }
    }
    let mut queues = Vec::new();
    for &n in &plan.order {
        for edge in g.edges(n) {
            let (from, to, kind) = (edge.source(), edge.target(), *edge.weight());
            let (p_from, p_to) = (g[from].parallelism as usize, g[to].parallelism as usize);
            let key = (kind == EdgeKind::Hash)
                .then(|| g[to].op.key().cloned())
                .flatten();
            for i in 0..p_from {
                let targets: Vec<usize> = if kind == EdgeKind::Forward {
                    vec![i]
                } else {
                    (0..p_to).collect()
                };
                let mut senders = Vec::with_capacity(targets.len());
                for j in targets {
                    let (tx, rx) = crossbeam_channel::bounded(CHANNEL_CAPACITY);
                    senders.push(tx);
                    queues.push((to, rx.clone()));
                    instances[first[to.index()] + j].inputs.push(rx);
                }
                let out = OutEdge::new(kind, senders, key.clone(), plan.job.max_parallelism);
                instances[first[from.index()] + i].outputs.push(out);
            }
        }
    }
    Physical { instances, queues }
}
