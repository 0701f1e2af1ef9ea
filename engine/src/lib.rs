//! `dataflow`: a stream-processing engine that runs pipelines written as YAML.
//!
//! The layers, each depending only on those above it:
//!
//! - [`value`]: the record model every operator handles.
//! - [`error`]: the three kinds of failure (the user's, outside, a bug)
//!   that every layer's errors are sorted into.
//! - [`spec`]: the spec language: YAML text → typed [`spec::Spec`], with
//!   source positions, and the JSON Schema generated from the same types.
//! - [`expr`]: CEL expressions, compiled once; common shapes run natively.
//! - [`nodes`]: the node types, one module each: settings, checks,
//!   planning and how each builds its operator; the registry of them.
//! - [`plan`]: the validated plan: names resolved, expressions compiled,
//!   graph checked, as a petgraph DAG. The only input of everything after.
//! - [`diag`]: diagnostics with spans, rendered like a compiler's or as JSON.
//! - [`console`]: the terminal a run shares: colour, the status line, and
//!   writing records and log lines around it.
//! - [`state`]: keyed state backends (memory, sled), addressed by key group.
//! - [`time`]: event time: timestamps, watermarks from sources and
//!   across inputs.
//! - [`operators`]: sources, transforms and sinks, as small traits.
//! - [`checkpoint`]: barriers, snapshots, the coordinator and the store.
//! - [`runtime`]: the executor: a thread per operator instance, bounded
//!   channels between them, batches of records, cancellation and failure;
//!   a run's restarts.
//! - [`control`]: a running job's HTTP endpoint on loopback, and the run
//!   files through which `dataflow list`, `savepoint` and `stop` find it.
//! - [`pipeline_test`]: `dataflow test`: a spec run in process on records
//!   a tests file gives, its sinks' output compared with what it expects.
//! - [`cli`]: the `dataflow` command.
//! - [`workdir`]: working folders in shared places (`state.dir`, a store's
//!   staging folder), and the sweep of those killed runs left.

pub mod checkpoint;
pub mod cli;
pub mod console;
pub mod control;
pub mod diag;
pub mod error;
pub mod expr;
pub mod kafka;
pub mod nodes;
pub mod operators;
pub mod pipeline_test;
pub mod plan;
pub mod runtime;
pub mod spec;
pub mod state;
pub mod time;
pub mod value;
pub mod workdir;

/// The layering the list above describes, checked where a comment could
/// not: below the planner, nothing reads the spec.
#[cfg(test)]
mod layers {
    use std::path::Path;

    /// Every line of the `.rs` files under `dir` that names `what`,
    /// comments aside.
    fn naming(dir: &Path, what: &str, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("the source folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                naming(&path, what, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file");
                for (i, line) in text.lines().enumerate() {
                    if line.contains(what) && !line.trim_start().starts_with("//") {
                        found.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
                    }
                }
            }
        }
    }

    #[test]
    fn nothing_below_the_planner_reads_the_spec() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("engine/src");
        let mut found = Vec::new();
        for layer in ["runtime", "operators", "checkpoint", "state", "control"] {
            naming(&src.join(layer), "crate::spec", &mut found);
            naming(&src.join(layer), "spec::{", &mut found);
        }
        assert!(
            found.is_empty(),
            "below the planner, the spec is read at:\n{}",
            found.join("\n")
        );
    }
}
