//! The physical graph: each chain of plan nodes ([`Plan::chains`]) expanded
//! into its instances, and each edge between chains into bounded channels.
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

/// One instance of a chain: its place in the physical graph.
pub struct Wiring {
    /// The chained nodes, upstream first; each runs its instance `index`.
    pub nodes: Vec<NodeIndex>,
    pub index: u32,
    pub inputs: Vec<Receiver<Message>>,
    /// For each input, the place in the head node's `inputs` of the node
    /// that sends on it.
    pub sides: Vec<usize>,
    pub outputs: Vec<OutEdge>,
    /// The edges that carry its last node's late records.
    pub late_outputs: Vec<OutEdge>,
}

pub struct Physical {
    /// Every chain instance, in the plan's topological order of chain heads.
    pub instances: Vec<Wiring>,
    /// Every channel's receiving end and the node it feeds, to watch how full it is.
    pub queues: Vec<(NodeIndex, Receiver<Message>)>,
}

pub fn expand(plan: &Plan) -> Physical {
    let g = &plan.graph();
    let chains = plan.chains();
    // chain_of[n]: the chain node n belongs to.
    let mut chain_of = vec![0; g.node_count()];
    for (c, nodes) in chains.iter().enumerate() {
        for n in nodes {
            chain_of[n.index()] = c;
        }
    }
    let mut instances = Vec::new();
    let mut first = vec![0usize; chains.len()];
    for (c, nodes) in chains.iter().enumerate() {
        first[c] = instances.len();
        for index in 0..g[nodes[0]].parallelism {
            instances.push(Wiring {
                nodes: nodes.clone(),
                index,
                inputs: Vec::new(),
                sides: Vec::new(),
                outputs: Vec::new(),
                late_outputs: Vec::new(),
            });
        }
    }
    let mut queues = Vec::new();
    for &n in plan.order() {
        for edge in g.edges(n) {
            let (from, to, kind) = (edge.source(), edge.target(), *edge.weight());
            let (c_from, c_to) = (chain_of[from.index()], chain_of[to.index()]);
            if c_from == c_to {
                continue;
            }
            let (p_from, p_to) = (g[from].parallelism as usize, g[to].parallelism as usize);
            let key = (kind == EdgeKind::Hash)
                .then(|| g[to].input_key(from).cloned())
                .flatten();
            let side = g[to].inputs.iter().position(|&i| i == from).unwrap_or(0);
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
                    instances[first[c_to] + j].inputs.push(rx);
                    instances[first[c_to] + j].sides.push(side);
                }
                let out = OutEdge::new(kind, senders, key.clone(), plan.job().max_parallelism);
                let from = &mut instances[first[c_from] + i];
                if plan.is_late_edge(edge.id()) {
                    from.late_outputs.push(out);
                } else {
                    from.outputs.push(out);
                }
            }
        }
    }
    Physical { instances, queues }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chains of a spec, as node names.
    fn chains(text: &str) -> Vec<Vec<String>> {
        let plan = crate::plan::from_text(text);
        expand(&plan)
            .instances
            .iter()
            .filter(|w| w.index == 0)
            .map(|w| {
                w.nodes
                    .iter()
                    .map(|&n| plan.graph()[n].name.clone())
                    .collect()
            })
            .collect()
    }

    const WORD_COUNT: &str = "name: wc\nparallelism: P\nsources:\n  lines: {type: generate, count: 10}\n\
        transforms:\n  words: {type: flat_map, inputs: [lines], split: \",\"}\n  \
        counts: {type: count, inputs: [words], key: this}\nsinks:\n  out: {type: blackhole, inputs: [counts]}\n";

    #[test]
    fn one_instance_per_node_runs_as_one_chain() {
        assert_eq!(
            chains(&WORD_COUNT.replace('P', "1")),
            [["lines", "words", "counts", "out"]]
        );
    }

    #[test]
    fn a_shuffle_between_several_instances_breaks_the_chain() {
        assert_eq!(
            chains(&WORD_COUNT.replace('P', "2")),
            [vec!["lines", "words"], vec!["counts", "out"]]
        );
        assert_eq!(
            chains(&WORD_COUNT.replace('P', "1\nchaining: false")).len(),
            4
        );
    }

    #[test]
    fn a_fan_out_or_fan_in_breaks_the_chain() {
        let text = "name: fan\nsources:\n  a: {type: generate, count: 1}\n  b: {type: generate, count: 1}\n\
            transforms:\n  m: {type: map, inputs: [a, b], expr: this}\n\
            sinks:\n  x: {type: blackhole, inputs: [m]}\n  y: {type: blackhole, inputs: [m]}\n";
        let mut got = chains(text);
        got.sort();
        assert_eq!(got, [["a"], ["b"], ["m"], ["x"], ["y"]]);
    }

    /// A node reading only a window's late records would chain to it
    /// (one output, one input, one instance each): its records would then
    /// be the window's results.
    #[test]
    fn a_late_output_is_never_chained() {
        let text = "name: late\nsources:\n  e: {type: file, path: x, format: json, event_time: {timestamp: ts}}\n\
            transforms:\n  w: {type: window, inputs: [e], key: k, tumbling: 1m, aggregates: {n: count}, late: output}\n\
            sinks:\n  l: {type: blackhole, inputs: [w.late]}\n";
        assert_eq!(chains(text), [vec!["e", "w"], vec!["l"]]);
        let plan = crate::plan::from_text(text);
        let physical = expand(&plan);
        let w = physical
            .instances
            .iter()
            .find(|i| i.nodes.len() == 2)
            .unwrap();
        assert_eq!((w.outputs.len(), w.late_outputs.len()), (0, 1));
    }
}
