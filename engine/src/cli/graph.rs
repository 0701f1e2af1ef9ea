//! `dataflow graph`: the plan of a spec, drawn.

use std::path::Path;
use std::process::ExitCode;

use super::check::planned;
use super::print;
use crate::plan;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// Graphviz's language: `dataflow graph spec.yaml | dot -Tpng > g.png`.
    Dot,
    /// A Mermaid flowchart, which GitHub and GitLab draw in Markdown.
    Mermaid,
    /// A drawing, laid out here (no Graphviz needed).
    Svg,
}

pub fn run(path: &Path, format: GraphFormat) -> ExitCode {
    let plan = match planned(path, "drawn", false) {
        Ok((_, plan)) => plan,
        Err(code) => return code,
    };
    let text = match format {
        GraphFormat::Dot => plan::drawing::dot(&plan),
        GraphFormat::Mermaid => plan::drawing::mermaid(&plan),
        GraphFormat::Svg => match plan::drawing::svg(&plan) {
            Ok(svg) => svg,
            Err(e) => {
                report!("error: cannot lay the graph out: {e}; `--format dot` and `--format mermaid` still work. Please report this as a bug.");
                return ExitCode::from(70);
            }
        },
    };
    match print(&text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}
