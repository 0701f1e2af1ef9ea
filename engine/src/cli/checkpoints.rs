//! `dataflow checkpoints`: list a job's checkpoints and check each one.

use std::path::Path;
use std::process::ExitCode;

use serde_json::json;

use super::check::read_spec;
use super::{Format, EXIT_USAGE};
use crate::checkpoint::coordinator::human_bytes;
use crate::checkpoint::inspect::{self, FoundState};
use crate::checkpoint::store::OpendalStore;
use crate::plan::StoreLocation;
use crate::{diag, plan, spec};

/// Where to look: a spec (its store and job name), or the location of a
/// job's folder in a store (`file:///tmp/dataflow/checkpoints/word-count`).
fn resolve(target: &str) -> Result<(StoreLocation, String), String> {
    if Path::new(target).is_file() {
        let loaded = spec::load(read_spec(Path::new(target))?);
        let (plan, diagnostics) = plan::compile(&loaded);
        let Some(plan) = plan else {
            diag::emit(&loaded.file, &diagnostics);
            return Err(format!(
                "`{target}` has errors (see `dataflow check {target}`)"
            ));
        };
        let cp = plan.checkpoint.ok_or_else(|| {
            format!("`{target}` has no `checkpoint:` section, so it has no checkpoints")
        })?;
        return Ok((cp.store, plan.job.name));
    }
    let mut location = StoreLocation::parse(target)
        .map_err(|e| format!("`{target}` is neither a spec file nor a store location ({e})"))?;
    let root = location.root.trim_end_matches('/').to_owned();
    let (parent, job) = root.rsplit_once('/').filter(|(_, job)| !job.is_empty()).ok_or_else(|| {
        format!("`{target}` names no job: give the job's folder, e.g. file:///tmp/dataflow/checkpoints/word-count")
    })?;
    location.root = if parent.is_empty() {
        "/".to_owned()
    } else {
        parent.to_owned()
    };
    Ok((location, job.to_owned()))
}

pub fn run(target: &str, format: Format) -> ExitCode {
    let (location, job) = match resolve(target) {
        Ok(r) => r,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let found = OpendalStore::open(&location)
        .map_err(|e| e.to_string())
        .and_then(|store| inspect::list(&store, &job));
    let found = match found {
        Ok(f) => f,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(1);
        }
    };
    let latest = found
        .iter()
        .rev()
        .find(|f| matches!(f.state, FoundState::Valid(_)))
        .map(|f| f.id);
    let damaged = found
        .iter()
        .any(|f| matches!(f.state, FoundState::Damaged(_)));
    match format {
        Format::Json => {
            let rows: Vec<_> = found
                .iter()
                .map(|f| match &f.state {
                    FoundState::Valid(m) => json!({
                        "id": f.id, "name": format!("chk-{}", f.id), "status": "complete",
                        "completed_at_ms": m.completed_at_ms,
                        "kind": if m.is_full() { "full" } else { "incremental" },
                        "total_bytes": m.total_size(), "written_bytes": m.written_size(),
                        "duration_ms": m.completed_at_ms.saturating_sub(m.triggered_at_ms),
                        "latest": Some(f.id) == latest,
                    }),
                    FoundState::Incomplete => json!({"id": f.id, "name": format!("chk-{}", f.id), "status": "incomplete"}),
                    FoundState::Damaged(why) => json!({"id": f.id, "name": format!("chk-{}", f.id), "status": "damaged", "error": why}),
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"job": job, "store": location.to_string(), "checkpoints": rows})
                )
                .unwrap_or_default()
            );
        }
        Format::Text => {
            println!("checkpoints of `{job}` in {location}");
            if found.is_empty() {
                println!("  (none)");
            }
            for f in &found {
                match &f.state {
                    FoundState::Valid(m) => println!(
                        "  chk-{:<6} {}  {:<11}  total {:>10}  written {:>10}  took {:>5} ms{}",
                        f.id,
                        inspect::utc(m.completed_at_ms),
                        if m.is_full() { "full" } else { "incremental" },
                        human_bytes(m.total_size()),
                        human_bytes(m.written_size()),
                        m.completed_at_ms.saturating_sub(m.triggered_at_ms),
                        if Some(f.id) == latest {
                            "  (latest)"
                        } else {
                            ""
                        }
                    ),
                    FoundState::Incomplete => println!(
                        "  chk-{:<6} incomplete: no _metadata (aborted, or still being written)",
                        f.id
                    ),
                    FoundState::Damaged(why) => println!("  chk-{:<6} DAMAGED: {why}", f.id),
                }
            }
        }
    }
    if damaged {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
