//! `dataflow graph`: the plan of a spec, drawn.

use std::path::Path;
use std::process::ExitCode;

use super::check::read_spec;
use super::{print, EXIT_USAGE};
use crate::{diag, plan};

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
    let loaded = match read_spec(path) {
        Ok(loaded) => loaded,
        Err(message) => {
            report!("error: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let (plan, diagnostics) = plan::compile(&loaded);
    let Some(plan) = plan else {
        diag::emit(&loaded.file, &diagnostics);
        report!(
            "{}: not drawn, the spec has errors (see `dataflow check`)",
            loaded.file.name
        );
        return ExitCode::from(1);
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
