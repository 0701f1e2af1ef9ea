//! `dataflow checkpoints`: list a job's checkpoints and check each one.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use serde_json::json;

use super::check::read_spec;
use super::{print, Format, EXIT_USAGE};
use crate::checkpoint::coordinator::human_bytes;
use crate::checkpoint::inspect::{self, FoundState};
use crate::checkpoint::store::{CheckpointStore, OpendalStore};
use crate::plan::store::Scheme;
use crate::plan::StoreLocation;
use crate::{diag, plan};

/// Where to look: a spec (its store and job name), a job's folder given
/// as a path (`/tmp/dataflow/checkpoints/word-count`), or its location in
/// a store (`file:///…/word-count`, `s3://bucket/prefix/word-count?…`).
fn resolve(target: &str) -> Result<(StoreLocation, String), Unusable> {
    let path = Path::new(target);
    if path.is_file() {
        return from_spec(path);
    }
    resolve_location(target).map_err(Unusable::Usage)
}

/// Why the target cannot be listed.
enum Unusable {
    /// Not a spec, a folder or a location: exit status 2.
    Usage(String),
    /// A spec with errors: exit status 1, as `check` gives.
    InvalidSpec(String),
}

fn resolve_location(target: &str) -> Result<(StoreLocation, String), String> {
    let path = Path::new(target);
    let is_uri = target.contains("://");
    let mut location = if is_uri {
        StoreLocation::parse(target).map_err(|e| e.to_string())?
    } else if path.is_dir() {
        let absolute = std::path::absolute(path)
            .map_err(|e| format!("cannot resolve the folder `{target}`: {e}"))?;
        StoreLocation::local(&absolute.display().to_string()).map_err(|e| e.to_string())?
    } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
        return Err(format!("the spec file `{target}` does not exist"));
    } else {
        return Err(format!(
            "`{target}` does not exist: give a spec file, a job's checkpoint folder, or a store location such as file:///tmp/dataflow/checkpoints/word-count"
        ));
    };
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

fn from_spec(path: &Path) -> Result<(StoreLocation, String), Unusable> {
    let loaded = read_spec(path).map_err(Unusable::Usage)?;
    let (plan, diagnostics) = plan::compile(&loaded);
    let Some(plan) = plan else {
        diag::emit(&loaded.file, &diagnostics);
        let name = path.display();
        return Err(Unusable::InvalidSpec(format!(
            "`{name}` has errors (see `dataflow check {name}`)"
        )));
    };
    let cp = plan.checkpoint.ok_or_else(|| {
        Unusable::Usage(format!(
            "`{}` has no `checkpoint:` section, so it has no checkpoints",
            path.display()
        ))
    })?;
    Ok((cp.store, plan.job.name))
}

/// When a job has no checkpoints: the jobs that do in the same store, so a
/// mistyped name shows as one.
fn other_jobs(store: &OpendalStore) -> Vec<String> {
    let mut jobs: Vec<String> = store
        .list("")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|n| n.strip_suffix('/').map(str::to_owned))
        .filter(|n| !n.starts_with('.'))
        .collect();
    jobs.sort();
    jobs
}

pub fn run(target: &str, format: Format) -> ExitCode {
    let (location, job) = match resolve(target) {
        Ok(r) => r,
        Err(Unusable::Usage(message)) => {
            report!("error: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
        Err(Unusable::InvalidSpec(message)) => {
            report!("error: {message}");
            return ExitCode::from(1);
        }
    };
    // A spec's store is created by the job's first checkpoint; a location
    // typed by hand that does not exist is more likely a typo.
    let not_yet = Path::new(target).is_file()
        && location.scheme == Scheme::File
        && !Path::new(&location.root).exists();
    let store = match OpendalStore::open_to_read(&location) {
        Ok(store) => Some(store),
        Err(_) if not_yet => None,
        Err(e) => {
            report!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let found = match store.as_ref().map(|s| inspect::list(s, &job)).transpose() {
        Ok(f) => f.unwrap_or_default(),
        Err(message) => {
            report!("error: {message}");
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
    let mut out = String::new();
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
                        "run": m.run, "restored_from": m.restored_from,
                    }),
                    FoundState::Incomplete => json!({"id": f.id, "name": format!("chk-{}", f.id), "status": "incomplete"}),
                    FoundState::Damaged(why) => json!({"id": f.id, "name": format!("chk-{}", f.id), "status": "damaged", "error": why}),
                })
                .collect();
            let json = json!({"job": job, "store": location.to_string(), "checkpoints": rows});
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
        }
        Format::Text => {
            let _ = writeln!(out, "checkpoints of `{job}` in {location}");
            if store.is_none() {
                let _ = writeln!(out, "  (none: there is no folder `{}` yet)", location.root);
            } else if found.is_empty() {
                let _ = writeln!(out, "  (none)");
            }
            if let Some(store) = store.as_ref().filter(|_| found.is_empty()) {
                let others = other_jobs(store);
                if !others.is_empty() {
                    let _ = writeln!(out, "  the store has checkpoints of: {}", others.join(", "));
                }
            }
            for f in &found {
                let _ = match &f.state {
                    FoundState::Valid(m) => writeln!(
                        out,
                        "  chk-{:<6} {}  {:<11}  total {:>10}  written {:>10}  took {:>5} ms  run {:<12}{}",
                        f.id,
                        inspect::utc(m.completed_at_ms),
                        if m.is_full() { "full" } else { "incremental" },
                        human_bytes(m.total_size()),
                        human_bytes(m.written_size()),
                        m.completed_at_ms.saturating_sub(m.triggered_at_ms),
                        if m.run.is_empty() { "?" } else { m.run.as_str() },
                        if Some(f.id) == latest {
                            "  (latest)"
                        } else {
                            ""
                        }
                    ),
                    FoundState::Incomplete => writeln!(
                        out,
                        "  chk-{:<6} incomplete: no _metadata (aborted, or still being written)",
                        f.id
                    ),
                    FoundState::Damaged(why) => writeln!(out, "  chk-{:<6} DAMAGED: {why}", f.id),
                };
            }
        }
    }
    if let Err(code) = print(&out) {
        return code;
    }
    if damaged {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
