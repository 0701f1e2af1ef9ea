//! `dataflow graph`: the plan drawn as Graphviz DOT, Mermaid or SVG, with
//! what `check` knows: each node's type and parallelism, the chains that
//! share a thread, and how records travel along each edge.
//!
//! SVG is laid out in process from the DOT text (layout-rs), so drawing
//! needs no Graphviz; layout-rs draws no clusters, so there the thread a
//! node runs on is written in its label instead.

use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;

use super::Plan;

/// One edge as drawn: its ends, and how records travel along it.
struct Edge {
    from: NodeIndex,
    to: NodeIndex,
    label: &'static str,
    /// Within a chain: records are handed over in place, no channel.
    chained: bool,
}

/// The parts every drawing shows.
struct Drawing<'a> {
    plan: &'a Plan,
    chains: Vec<Vec<NodeIndex>>,
    /// Each node's chain, by node index.
    chain_of: Vec<usize>,
    edges: Vec<Edge>,
}

impl<'a> Drawing<'a> {
    fn of(plan: &'a Plan) -> Drawing<'a> {
        let g = plan.graph();
        let chains = plan.chains();
        let mut chain_of = vec![0; g.node_count()];
        for (c, chain) in chains.iter().enumerate() {
            for n in chain {
                chain_of[n.index()] = c;
            }
        }
        let edges = g
            .edge_references()
            .map(|e| {
                let late = plan.is_late_edge(e.id());
                Edge {
                    from: e.source(),
                    to: e.target(),
                    label: if late { "late" } else { e.weight().name() },
                    chained: !late && chain_of[e.source().index()] == chain_of[e.target().index()],
                }
            })
            .collect();
        Drawing {
            plan,
            chains,
            chain_of,
            edges,
        }
    }

    /// `words` / `flat_map ×2`.
    fn label(&self, n: NodeIndex) -> (String, String) {
        let node = &self.plan.graph()[n];
        (
            node.name.clone(),
            format!("{} ×{}", node.type_name, node.parallelism),
        )
    }

    fn thread(&self, c: usize) -> String {
        let chain = &self.chains[c];
        let p = self.plan.graph()[chain[0]].parallelism;
        let threads = if p == 1 {
            "1 thread".to_owned()
        } else {
            format!("{p} threads")
        };
        format!("chain {}: {threads}", c + 1)
    }

    fn edge_label(edge: &Edge) -> String {
        if edge.chained {
            format!("{} (chained)", edge.label)
        } else {
            edge.label.to_owned()
        }
    }
}

/// A DOT string literal.
fn dot_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The plan in Graphviz's DOT language, one cluster per chain.
pub fn dot(plan: &Plan) -> String {
    dot_with(&Drawing::of(plan), true)
}

fn dot_with(d: &Drawing, clusters: bool) -> String {
    let g = d.plan.graph();
    let mut out = format!(
        "digraph {} {{\n  rankdir=LR;\n  node [shape=box, style=rounded];\n",
        dot_quoted(&d.plan.job().name)
    );
    let node_line = |n: NodeIndex, indent: &str, with_thread: bool| {
        let (name, what) = d.label(n);
        let label = if with_thread {
            format!("{name}\n{what}\n{}", d.thread(d.chain_of[n.index()]))
        } else {
            format!("{name}\n{what}")
        };
        format!(
            "{indent}{} [label={}];\n",
            dot_quoted(&g[n].name),
            dot_quoted(&label)
        )
    };
    if clusters {
        for (c, chain) in d.chains.iter().enumerate() {
            out.push_str(&format!(
                "  subgraph cluster_{c} {{\n    label={};\n",
                dot_quoted(&d.thread(c))
            ));
            for &n in chain {
                out.push_str(&node_line(n, "    ", false));
            }
            out.push_str("  }\n");
        }
    } else {
        for chain in &d.chains {
            for &n in chain {
                out.push_str(&node_line(n, "  ", true));
            }
        }
    }
    for edge in &d.edges {
        let style = match (edge.chained, edge.label) {
            (true, _) => "",
            (false, "late") => ", style=dotted",
            (false, _) => ", style=bold",
        };
        out.push_str(&format!(
            "  {} -> {} [label={}{style}];\n",
            dot_quoted(&g[edge.from].name),
            dot_quoted(&g[edge.to].name),
            dot_quoted(&Drawing::edge_label(edge)),
        ));
    }
    out.push_str("}\n");
    out
}

/// Text inside a Mermaid `"…"` label: its entity codes stand for the
/// characters that would end or break it.
fn mermaid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '#' => out.push_str("#35;"),
            '|' => out.push_str("#124;"),
            _ => out.push(c),
        }
    }
    out
}

/// The plan as a Mermaid flowchart (GitHub and GitLab draw it in
/// Markdown), one subgraph per chain. Node ids are `n<index>`, so any
/// node name is safe.
pub fn mermaid(plan: &Plan) -> String {
    let d = Drawing::of(plan);
    let mut out = String::from("flowchart LR\n");
    for (c, chain) in d.chains.iter().enumerate() {
        out.push_str(&format!(
            "  subgraph chain{c}[\"{}\"]\n",
            mermaid_text(&d.thread(c))
        ));
        for &n in chain {
            let (name, what) = d.label(n);
            out.push_str(&format!(
                "    n{}[\"{}<br/>{}\"]\n",
                n.index(),
                mermaid_text(&name),
                mermaid_text(&what)
            ));
        }
        out.push_str("  end\n");
    }
    for edge in &d.edges {
        let arrow = match (edge.chained, edge.label) {
            (true, _) => "-->",
            (false, "late") => "-.->",
            (false, _) => "==>",
        };
        out.push_str(&format!(
            "  n{} {arrow}|\"{}\"| n{}\n",
            edge.from.index(),
            mermaid_text(&Drawing::edge_label(edge)),
            edge.to.index()
        ));
    }
    out
}

/// The plan drawn as SVG, laid out in process.
pub fn svg(plan: &Plan) -> Result<String, String> {
    use layout::backends::svg::SVGWriter;
    use layout::gv::{DotParser, GraphBuilder};

    let text = dot_with(&Drawing::of(plan), false);
    let parsed = DotParser::new(&text).process()?;
    let mut builder = GraphBuilder::new();
    builder.visit_graph(&parsed);
    let mut graph = builder.get();
    let mut writer = SVGWriter::new();
    graph.do_it(false, false, false, &mut writer);
    Ok(writer.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "name: wc
sources:
  lines: {type: file, path: /tmp/in.txt, parallelism: 2}
transforms:
  words: {type: flat_map, inputs: [lines], parallelism: 2, expr: 'this.split(\",\")'}
  counts: {type: count, inputs: [words], key: this}
sinks:
  out: {type: print, inputs: [counts]}
";

    #[test]
    fn dot_shows_chains_types_parallelism_and_edge_kinds() {
        let dot = dot(&super::super::from_text(SPEC));
        assert!(dot.starts_with("digraph \"wc\" {"), "{dot}");
        assert!(dot.contains("subgraph cluster_0 {\n    label=\"chain 1: 2 threads\";\n    \"lines\" [label=\"lines\\nfile ×2\"];\n    \"words\" [label=\"words\\nflat_map ×2\"];\n  }"), "{dot}");
        assert!(
            dot.contains("\"lines\" -> \"words\" [label=\"forward (chained)\"];"),
            "{dot}"
        );
        assert!(
            dot.contains("\"words\" -> \"counts\" [label=\"hash\", style=bold];"),
            "{dot}"
        );
        assert!(
            dot.contains("\"counts\" -> \"out\" [label=\"forward (chained)\"];"),
            "{dot}"
        );
    }

    #[test]
    fn mermaid_names_nodes_by_index_and_escapes_labels() {
        let text = mermaid(&super::super::from_text(SPEC));
        assert!(text.starts_with("flowchart LR\n  subgraph chain0[\"chain 1: 2 threads\"]\n    n0[\"lines<br/>file ×2\"]\n"), "{text}");
        assert!(text.contains("==>|\"hash\"|"), "{text}");
        assert_eq!(mermaid_text("a\"<b>|#"), "a#quot;#lt;b#gt;#124;#35;");
    }

    #[test]
    fn dot_quotes_what_would_end_a_string() {
        assert_eq!(dot_quoted("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
    }

    #[test]
    fn svg_draws_every_node_and_edge_label() {
        let svg = svg(&super::super::from_text(SPEC)).unwrap();
        assert!(svg.starts_with("<?xml"), "{}", &svg[..100.min(svg.len())]);
        for text in [
            "lines",
            "words",
            "counts",
            "out",
            "hash",
            "chain 2: 1 thread",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
    }
}
