//! Operator chaining: which nodes run on one thread.
//!
//! A node is chained to its only upstream node when records could not go
//! anywhere else anyway: it has one input, that input has one output, both
//! have the same parallelism, and the edge is forward (instance i feeds
//! instance i) or both sides run as one instance (every key belongs to
//! instance 0). This is Flink's operator chaining, extended over `p = 1`
//! shuffles. A chain runs on one thread and hands batches from operator to
//! operator in place: no channel, no copy, no cross-thread free. An edge
//! that carries a window's late records is never chained: they leave the
//! window apart from its results.

use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use super::{EdgeKind, Plan};

impl Plan {
    /// The chains, each upstream first, in topological order of their heads.
    pub fn chains(&self) -> Vec<Vec<NodeIndex>> {
        let g = &self.graph;
        let mut chain_of = vec![usize::MAX; g.node_count()];
        let mut chains: Vec<Vec<NodeIndex>> = Vec::new();
        for &n in &self.order {
            let upstream = g
                .edges_directed(n, Direction::Incoming)
                .find(|e| !self.is_late_edge(e.id()) && self.chained(e.source(), n, *e.weight()));
            match upstream {
                Some(e) => {
                    let c = chain_of[e.source().index()];
                    chains[c].push(n);
                    chain_of[n.index()] = c;
                }
                None => {
                    chain_of[n.index()] = chains.len();
                    chains.push(vec![n]);
                }
            }
        }
        chains
    }

    /// Whether `to` runs in the same chain as its upstream node `from`.
    fn chained(&self, from: NodeIndex, to: NodeIndex, kind: EdgeKind) -> bool {
        let g = &self.graph;
        self.job.chaining
            && g.edges_directed(to, Direction::Incoming).count() == 1
            && g.edges_directed(from, Direction::Outgoing).count() == 1
            && g[from].parallelism == g[to].parallelism
            && (kind == EdgeKind::Forward || g[to].parallelism == 1)
    }
}
