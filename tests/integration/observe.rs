//! Seeing a job: `dataflow graph`, and (issue 17) a running job's API,
//! metrics and web view.

use crate::harness::{dataflow, text};

#[test]
fn graph_draws_the_seed_job_in_each_format() {
    let out = dataflow(&["graph", "specs/word_count.yaml"]);
    let (dot, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(dot.starts_with("digraph \"word-count\" {"), "{dot}");
    for line in [
        "\"lines\" [label=\"lines\\nfile ×1\"];",
        "\"counts\" [label=\"counts\\nsum ×1\"];",
        "\"words\" -> \"pairs\" [label=\"hash (chained)\"];",
    ] {
        assert!(dot.contains(line), "{line} missing from\n{dot}");
    }

    let out = dataflow(&["graph", "specs/word_count.yaml", "--format", "mermaid"]);
    let (mermaid, _) = text(&out);
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert_eq!(mermaid.matches("-->").count(), 4, "{mermaid}");

    let out = dataflow(&["graph", "specs/word_count.yaml", "--format", "svg"]);
    let (svg, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
    for name in ["lines", "words", "pairs", "counts", "out"] {
        assert!(svg.contains(&format!(">{name}<")), "{name} not drawn");
    }
}

#[test]
fn graph_of_a_broken_spec_says_why_and_draws_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("bad.yaml");
    std::fs::write(
        &spec,
        "name: bad\nsources:\n  a: {type: generate}\nsinks:\n  out: {type: print, inputs: [nope]}\n",
    )
    .unwrap();
    let out = dataflow(&["graph", spec.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stdout, "");
    assert!(stderr.contains("nope"), "{stderr}");
    assert!(
        stderr.contains("not drawn, the spec has errors"),
        "{stderr}"
    );
    let out = dataflow(&["graph", "no/such.yaml"]);
    assert_eq!(out.status.code(), Some(2));
}
