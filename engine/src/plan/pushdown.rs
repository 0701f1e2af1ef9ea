//! Moving a projection from before a keyed node's shuffle to after it.
//!
//! In `words → pairs: {"word": this, "count": 1} → counts: sum by word`,
//! the shuffle in front of `counts` would carry the records `pairs`
//! builds: maps allocated on one thread and read, changed and freed on
//! another, which costs more than building them (at parallelism 2 the
//! seed job ran at half the speed of parallelism 1). The key `word` can be
//! read from what `pairs` receives (`this`), so the shuffle moves in front
//! of `pairs`, partitioning by that; `pairs` then runs on the keyed node's
//! thread, chained to it, and what crosses threads is the words
//! themselves. Records, keys and key groups are the same, so results and
//! checkpoints are too; a projection is stateless, so restores at any
//! parallelism are unaffected.

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use petgraph::Direction;

use super::{EdgeKind, PlanNode, Shuffle};

/// Moves each shuffle in front of the projections before it, as far up as
/// the conditions hold: the projection (a `map` whose `expr` is a map
/// literal) feeds only the keyed node, has its parallelism, and the key
/// reads a field that the projection copies from its input.
pub(super) fn shuffle_before_projections(
    graph: &mut DiGraph<PlanNode, EdgeKind>,
    order: &[NodeIndex],
) {
    // Downstream first, so a shuffle moved in front of a projection can
    // move again in front of the projection before that.
    for &keyed in order.iter().rev() {
        let mut to = keyed;
        while let Some(from) = movable(graph, to) {
            let key = match (graph[from].planned.projection(), graph[to].partition_key()) {
                (Some(projection), Some(key)) => projection.key_through_projection(key),
                _ => None,
            };
            let Some(key) = key else { break };
            let keyed_name = match &graph[to].shuffle {
                Some(s) => s.keyed.clone(),
                None => graph[to].name.clone(),
            };
            graph[from].shuffle = Some(Shuffle {
                key,
                keyed: keyed_name,
            });
            let inputs: Vec<_> = graph
                .edges_directed(from, Direction::Incoming)
                .map(|e| e.id())
                .collect();
            for e in inputs {
                graph[e] = EdgeKind::Hash;
            }
            if let Some(e) = graph.find_edge(from, to) {
                graph[e] = EdgeKind::Forward;
            }
            to = from;
        }
    }
}

/// The node in front of `to` that `to`'s shuffle could move before: `to`
/// is partitioned by a key and has one input, a `map` that feeds nothing
/// else, runs at the same parallelism and is not partitioned itself.
fn movable(graph: &DiGraph<PlanNode, EdgeKind>, to: NodeIndex) -> Option<NodeIndex> {
    let mut inputs = graph.edges_directed(to, Direction::Incoming);
    let edge = inputs.next()?;
    let from = edge.source();
    let ok = inputs.next().is_none()
        && *edge.weight() == EdgeKind::Hash
        && graph[from].planned.projection().is_some()
        && graph[from].shuffle.is_none()
        && graph[from].parallelism == graph[to].parallelism
        && graph.edges_directed(from, Direction::Outgoing).count() == 1
        && graph.edges_directed(from, Direction::Incoming).count() > 0;
    ok.then_some(from)
}

#[cfg(test)]
mod tests {
    use crate::diag::SourceFile;
    use crate::plan::{compile, Plan};

    fn plan(transforms: &str) -> Plan {
        let text = format!(
            "name: t\nparallelism: 2\nsources:\n  lines: {{type: generate, count: 10}}\n\
             transforms:\n{transforms}sinks:\n  out: {{type: blackhole, inputs: [counts]}}\n"
        );
        let loaded = crate::spec::load(SourceFile {
            name: "spec.yaml".into(),
            text,
        });
        compile(&loaded).0.expect("the spec compiles")
    }

    /// Each node's inputs as `from (edge)`, and where its partitioning comes from.
    fn edges(plan: &Plan) -> Vec<String> {
        plan.summary_json()["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                let inputs: Vec<String> = n["inputs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| {
                        format!(
                            "{} ({})",
                            i["from"].as_str().unwrap(),
                            i["edge"].as_str().unwrap()
                        )
                    })
                    .collect();
                let by = n["partitioned_by_key_of"]
                    .as_str()
                    .map_or(String::new(), |k| format!(" by {k}"));
                format!(
                    "{} ← {}{by}",
                    n["name"].as_str().unwrap(),
                    inputs.join(", ")
                )
            })
            .collect()
    }

    /// The key node `name`'s input is partitioned by, on `record`, as JSON.
    fn partition_key_on(plan: &Plan, name: &str, record: &crate::value::Value) -> String {
        let node = plan.graph.node_weights().find(|n| n.name == name).unwrap();
        let key = node.partition_key().expect("partitioned");
        key.eval_ref(record).unwrap().to_json()
    }

    #[test]
    fn the_seed_job_shuffles_words_not_the_pairs_built_from_them() {
        let p = plan(
            "  words: {type: flat_map, inputs: [lines], split: \",\"}\n  \
             pairs: {type: map, inputs: [words], expr: '{\"word\": this, \"count\": 1}'}\n  \
             counts: {type: sum, inputs: [pairs], key: word, field: count}\n",
        );
        assert_eq!(
            edges(&p)[2..],
            [
                "pairs ← words (hash) by counts",
                "counts ← pairs (forward)",
                "out ← counts (forward)"
            ]
        );
        let record = crate::value::Value::from("w1");
        assert_eq!(partition_key_on(&p, "pairs", &record), r#""w1""#);
    }

    #[test]
    fn a_shuffle_moves_past_several_projections_and_nested_fields() {
        let p = plan(
            "  a: {type: map, inputs: [lines], expr: '{\"u\": this}'}\n  \
             b: {type: map, inputs: [a], expr: '{\"user\": this.u, \"n\": 1}'}\n  \
             counts: {type: count, inputs: [b], key: user.seq}\n",
        );
        assert_eq!(
            edges(&p)[1..4],
            [
                "a ← lines (hash) by counts",
                "b ← a (forward) by counts",
                "counts ← b (forward)"
            ]
        );
        let record: crate::value::Value = serde_json::from_str(r#"{"seq": 7}"#).unwrap();
        assert_eq!(partition_key_on(&p, "a", &record), "7");
    }

    #[test]
    fn a_shuffle_stays_where_the_key_is_computed_or_the_map_is_shared() {
        let computed = plan(
            "  pairs: {type: map, inputs: [lines], expr: '{\"k\": this.seq % 3}'}\n  \
             counts: {type: count, inputs: [pairs], key: k}\n",
        );
        assert_eq!(
            edges(&computed)[1..3],
            ["pairs ← lines (forward)", "counts ← pairs (hash)"]
        );
        let shared = plan(
            "  pairs: {type: map, inputs: [lines], expr: '{\"k\": this}'}\n  \
             counts: {type: count, inputs: [pairs], key: k}\n  \
             other: {type: filter, inputs: [pairs], condition: 'true'}\n",
        );
        assert_eq!(edges(&shared)[1], "pairs ← lines (forward)");
        let wider = plan(
            "  pairs: {type: map, inputs: [lines], expr: '{\"k\": this}', parallelism: 1}\n  \
             counts: {type: count, inputs: [pairs], key: k}\n",
        );
        assert_eq!(
            edges(&wider)[1..3],
            ["pairs ← lines (rebalance)", "counts ← pairs (hash)"]
        );
    }
}
