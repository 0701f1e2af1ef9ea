//! `dataflow checkpoints`: list a job's checkpoints and savepoints, check
//! each one, and prune what is no longer wanted.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use serde_json::json;

use super::check::{read_spec, SpecFileError};
use super::{print, Format, EXIT_USAGE};
use crate::checkpoint::coordinator::human_bytes;
use crate::checkpoint::error::CheckpointError;
use crate::checkpoint::inspect::{self, FoundState};
use crate::checkpoint::layout;
use crate::checkpoint::lease;
use crate::checkpoint::metadata::Metadata;
use crate::checkpoint::retention;
use crate::checkpoint::store::{CheckpointStore, OpendalStore, StoreError};
use crate::error::{Class, Classify};
use crate::plan::store::Scheme;
use crate::plan::{StoreLocation, StoreLocationError};
use crate::{diag, plan};

/// Where to look: a spec (its store and job name), a job's folder given
/// as a path (`/tmp/dataflow/checkpoints/word-count`), or its location in
/// a store (`file:///…/word-count`, `s3://bucket/prefix/word-count?…`).
fn resolve(target: &str) -> Result<(StoreLocation, String), Unusable> {
    let path = Path::new(target);
    if path.is_file() {
        return from_spec(path);
    }
    resolve_location(target)
}

/// Why the target cannot be listed: all usage errors (status 2) but a
/// spec with errors (status 1, as `check` gives).
#[derive(Debug, thiserror::Error)]
enum Unusable {
    #[error(transparent)]
    Spec(#[from] SpecFileError),
    #[error("`{0}` has errors (see `dataflow check {0}`)")]
    InvalidSpec(String),
    #[error("`{0}` has no `checkpoint:` section, so it has no checkpoints")]
    NoCheckpoints(String),
    #[error(transparent)]
    Location(#[from] StoreLocationError),
    #[error("cannot resolve the folder `{target}`: {source}")]
    Folder {
        target: String,
        source: std::io::Error,
    },
    #[error("the spec file `{0}` does not exist")]
    NoSpec(String),
    #[error("`{0}` does not exist: give a spec file, a job's checkpoint folder, or a store location such as file:///tmp/dataflow/checkpoints/word-count")]
    Nothing(String),
    #[error("`{0}` names no job: give the job's folder, e.g. file:///tmp/dataflow/checkpoints/word-count")]
    NoJob(String),
}

impl Unusable {
    fn exit_code(&self) -> u8 {
        match self {
            Unusable::InvalidSpec(_) => 1,
            _ => EXIT_USAGE,
        }
    }
}

fn resolve_location(target: &str) -> Result<(StoreLocation, String), Unusable> {
    let path = Path::new(target);
    let is_uri = target.contains("://");
    let mut location = if is_uri {
        StoreLocation::parse(target)?
    } else if path.is_dir() {
        let absolute = std::path::absolute(path).map_err(|source| Unusable::Folder {
            target: target.to_owned(),
            source,
        })?;
        StoreLocation::local(&absolute.display().to_string())?
    } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
        return Err(Unusable::NoSpec(target.to_owned()));
    } else {
        return Err(Unusable::Nothing(target.to_owned()));
    };
    let root = location.root.trim_end_matches('/').to_owned();
    let (parent, job) = root
        .rsplit_once('/')
        .filter(|(_, job)| !job.is_empty())
        .ok_or_else(|| Unusable::NoJob(target.to_owned()))?;
    location.root = if parent.is_empty() {
        "/".to_owned()
    } else {
        parent.to_owned()
    };
    Ok((location, job.to_owned()))
}

fn from_spec(path: &Path) -> Result<(StoreLocation, String), Unusable> {
    let loaded = read_spec(path)?;
    let (plan, diagnostics) = plan::compile(&loaded);
    let Some(plan) = plan else {
        diag::emit(&loaded.file, &diagnostics);
        return Err(Unusable::InvalidSpec(path.display().to_string()));
    };
    let cp = plan
        .checkpoint()
        .cloned()
        .ok_or_else(|| Unusable::NoCheckpoints(path.display().to_string()))?;
    Ok((cp.store, plan.job().name.clone()))
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

/// `--prune`: what to keep, and whether to delete at all.
pub struct Prune {
    pub keep: usize,
    pub dry_run: bool,
}

pub fn run(target: &str, format: Format, prune: Option<Prune>) -> ExitCode {
    let (location, job) = match resolve(target) {
        Ok(r) => r,
        Err(e) => {
            report!("error: {e}");
            return ExitCode::from(e.exit_code());
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
        Err(e) => return super::failed(&e),
    };
    let found = match store.as_ref().map(|s| inspect::list(s, &job)).transpose() {
        Ok(f) => f.unwrap_or_default(),
        Err(e) => return super::failed(&e),
    };
    let savepoints = match store
        .as_ref()
        .map(|s| inspect::list_savepoints(s, &job))
        .transpose()
    {
        Ok(f) => f.unwrap_or_default(),
        Err(e) => return super::failed(&e),
    };
    let pruned = match (prune, &store) {
        (Some(prune), Some(_)) => match prune_job(&location, &job, &found, &prune) {
            Ok(pruned) => Some(pruned),
            Err(e) => return super::failed(&e),
        },
        _ => None,
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
                    FoundState::Damaged(why) => json!({"id": f.id, "name": format!("chk-{}", f.id), "status": "damaged", "error": why.to_string()}),
                })
                .collect();
            let savepoint_rows: Vec<_> = savepoints
                .iter()
                .map(|f| {
                    let name = format!("sp-{}", f.id);
                    match &f.state {
                        FoundState::Valid(m) => json!({
                            "id": f.id, "name": name, "status": "complete",
                            "completed_at_ms": m.completed_at_ms, "total_bytes": m.total_size(),
                            "run": m.run,
                        }),
                        FoundState::Incomplete => {
                            json!({"id": f.id, "name": name, "status": "incomplete"})
                        }
                        FoundState::Damaged(why) => {
                            json!({"id": f.id, "name": name, "status": "damaged", "error": why.to_string()})
                        }
                    }
                })
                .collect();
            let mut json = json!({"job": job, "store": location.to_string(), "checkpoints": rows, "savepoints": savepoint_rows});
            if let Some(p) = &pruned {
                json["pruned"] = json!({
                    "dry_run": p.dry_run,
                    "checkpoints": p.deletions.checkpoints,
                    "shared_files": p.deletions.shared_files,
                });
            }
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
            if !savepoints.is_empty() {
                let _ = writeln!(
                    out,
                    "savepoints of `{job}` in {}/{}",
                    location.to_string().trim_end_matches('/'),
                    layout::savepoints_dir(&job).trim_end_matches('/')
                );
            }
            for f in &savepoints {
                let _ = match &f.state {
                    FoundState::Valid(m) => writeln!(
                        out,
                        "  sp-{:<7} {}  total {:>10}  run {}",
                        f.id,
                        inspect::utc(m.completed_at_ms),
                        human_bytes(m.total_size()),
                        if m.run.is_empty() {
                            "?"
                        } else {
                            m.run.as_str()
                        },
                    ),
                    FoundState::Incomplete => writeln!(
                        out,
                        "  sp-{:<7} incomplete: no _metadata (failed, or still being written)",
                        f.id
                    ),
                    FoundState::Damaged(why) => writeln!(out, "  sp-{:<7} DAMAGED: {why}", f.id),
                };
            }
            if let Some(p) = &pruned {
                let names: Vec<String> = p
                    .deletions
                    .checkpoints
                    .iter()
                    .map(|id| format!("chk-{id}"))
                    .collect();
                let _ = writeln!(
                    out,
                    "{} {} and {} shared file{}{}",
                    if p.dry_run {
                        "--dry-run: would delete"
                    } else {
                        "deleted"
                    },
                    if names.is_empty() {
                        "no checkpoint".to_owned()
                    } else {
                        names.join(", ")
                    },
                    p.deletions.shared_files.len(),
                    if p.deletions.shared_files.len() == 1 {
                        ""
                    } else {
                        "s"
                    },
                    if p.kept.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; kept {}",
                            p.kept
                                .iter()
                                .map(|id| format!("chk-{id}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                );
            }
        }
    }
    if let Err(code) = print(&out) {
        return code;
    }
    if pruned.is_some_and(|p| !p.dry_run) {
        // What was damaged is gone with the rest.
        return ExitCode::SUCCESS;
    }
    if damaged {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// What `--prune` deleted (or would).
struct Pruned {
    deletions: crate::checkpoint::retention::Deletions,
    kept: Vec<u64>,
    dry_run: bool,
}

/// Why `--prune` stopped.
#[derive(Debug, thiserror::Error)]
enum PruneError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}; nothing was deleted")]
    Lease(CheckpointError),
    #[error("{0} (the checkpoints listed before it are deleted)")]
    Partial(StoreError),
}

impl Classify for PruneError {
    fn class(&self) -> Class {
        match self {
            PruneError::Store(e) | PruneError::Partial(e) => e.class(),
            PruneError::Lease(e) => e.class(),
        }
    }
}

/// Deletes what [`retention::prune`] says may go: the metadata of each
/// checkpoint first (a half-deleted checkpoint never looks complete), then
/// its folder, then the shared files no kept checkpoint needs.
fn prune_job(
    location: &StoreLocation,
    job: &str,
    found: &[inspect::Found],
    prune: &Prune,
) -> Result<Pruned, PruneError> {
    let store: std::sync::Arc<dyn CheckpointStore> =
        std::sync::Arc::new(OpendalStore::open(location)?);
    // Held while pruning: no run of the job starts meanwhile.
    let local = (location.scheme == Scheme::File).then(|| Path::new(&location.root));
    let _lease = lease::acquire(
        std::sync::Arc::clone(&store),
        local,
        job,
        "checkpoints --prune",
    )
    .map_err(PruneError::Lease)?;
    let intact: Vec<&Metadata> = found
        .iter()
        .filter_map(|f| match &f.state {
            FoundState::Valid(m) => Some(&**m),
            _ => None,
        })
        .collect();
    let unusable: Vec<u64> = found
        .iter()
        .filter(|f| !matches!(f.state, FoundState::Valid(_)))
        .map(|f| f.id)
        .collect();
    let shared_dir = layout::shared_dir(job);
    let shared: Vec<String> = match store.list(&shared_dir) {
        Ok(names) => names
            .into_iter()
            .map(|n| format!("{shared_dir}{n}"))
            .collect(),
        Err(crate::checkpoint::store::StoreError::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let deletions = retention::prune(&intact, &unusable, prune.keep, &shared);
    let kept = found
        .iter()
        .map(|f| f.id)
        .filter(|id| !deletions.checkpoints.contains(id))
        .collect();
    if !prune.dry_run {
        let failed = PruneError::Partial;
        for id in &deletions.checkpoints {
            store.delete(&layout::metadata(job, *id)).map_err(failed)?;
            store
                .delete_dir(&layout::checkpoint_dir(job, *id))
                .map_err(failed)?;
        }
        for file in &deletions.shared_files {
            store.delete(file).map_err(failed)?;
        }
    }
    Ok(Pruned {
        deletions,
        kept,
        dry_run: prune.dry_run,
    })
}
