//! Reading state back from a checkpoint's files.

use super::error::CheckpointError;
use super::inspect::{read_verified, RestoreError};
use super::metadata::FileRef;
use super::snapshot::{self, Entries};
use super::store::CheckpointStore;

/// The state a chain of files (a full snapshot, then deltas) of a job with
/// `groups` key groups adds up to, keeping only the key groups `keep` accepts.
pub fn load_chain(
    store: &dyn CheckpointStore,
    chain: &[FileRef],
    groups: u32,
    keep: impl Fn(u16) -> bool,
) -> Result<Entries, RestoreError> {
    let mut entries = Entries::new();
    for file in chain {
        let bytes = read_verified(store, file)?;
        snapshot::decode_into(&bytes, groups, &keep, &mut entries).map_err(|e| {
            RestoreError::Damaged {
                path: file.path.clone(),
                why: e.to_string(),
            }
        })?;
    }
    Ok(entries)
}

/// A checkpoint chosen to restore from, verified.
pub struct Restore {
    pub store: std::sync::Arc<dyn CheckpointStore>,
    pub metadata: super::metadata::Metadata,
    /// Where it is, for messages (`file:///…/word-count/chk-17`).
    pub location: String,
    /// How long finding it and checking every file took.
    pub verified_in: std::time::Duration,
}

/// Finds and verifies the checkpoint or savepoint `from` names: `latest`,
/// `chk-<N>` or `sp-<N>` in the spec's store, or a full location
/// (`s3://bucket/prefix/job/chk-17`, a savepoint's folder, as a URI or an
/// absolute path). Returns it with notes for the user (such as a damaged
/// newer checkpoint skipped by `latest`), or a message saying why it
/// cannot be used.
pub fn resolve(
    spec_store: &crate::plan::StoreLocation,
    job: &str,
    from: &str,
) -> Result<(Restore, Vec<String>), CheckpointError> {
    use super::choice::{choose, parse_point, split_checkpoint_folder, Point};

    let (location, job, wanted) = match parse_point(from)? {
        Point::Savepoint(id) => {
            let mut location = spec_store.clone();
            location.root = format!(
                "{}/{}",
                location.root.trim_end_matches('/'),
                super::layout::savepoint_dir(job, id).trim_end_matches('/')
            );
            return match savepoint_at(&location)? {
                Some(restore) => Ok((restore, Vec::new())),
                None => Err(CheckpointError::NoSavepoint {
                    name: from.to_owned(),
                    location: location.to_string(),
                }),
            };
        }
        Point::Location(text) => {
            let mut location = super::savepoint::parse_location(&text)?;
            if let Some(restore) = savepoint_at(&location)? {
                return Ok((restore, Vec::new()));
            }
            let Some((root, job, id)) = split_checkpoint_folder(&location.root) else {
                return Err(CheckpointError::NeitherFolder {
                    from: from.to_owned(),
                });
            };
            location.root = root;
            (location, job, Some(id))
        }
        Point::Latest => (spec_store.clone(), job.to_owned(), None),
        Point::Checkpoint(id) => (spec_store.clone(), job.to_owned(), Some(id)),
    };
    let started = std::time::Instant::now();
    let store: std::sync::Arc<dyn CheckpointStore> =
        std::sync::Arc::new(super::store::OpendalStore::open(&location)?);
    let found = super::inspect::list(&*store, &job)?;
    let here = format!("{}/{job}", location.to_string().trim_end_matches('/'));
    let chosen = choose(&found, wanted, &here)?;
    Ok((
        Restore {
            store,
            metadata: chosen.metadata.clone(),
            location: format!("{here}/chk-{}", chosen.id),
            verified_in: started.elapsed(),
        },
        chosen.notes,
    ))
}

/// The savepoint in the folder `location`, verified; `None` when the
/// folder holds no savepoint's `_metadata` (it may be a checkpoint's).
fn savepoint_at(location: &crate::plan::StoreLocation) -> Result<Option<Restore>, CheckpointError> {
    use super::metadata::{Kind, Metadata, MAX_BYTES};
    use super::store::StoreError;

    let started = std::time::Instant::now();
    let store = match super::store::OpendalStore::open_to_read(location) {
        Ok(store) => store,
        // A folder that does not exist holds no savepoint; the caller's
        // reading as a checkpoint's location says what is missing.
        Err(_) => return Ok(None),
    };
    let bytes = match store.read("_metadata", MAX_BYTES) {
        Ok(bytes) => bytes,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let at = location.to_string().trim_end_matches('/').to_owned();
    let metadata = Metadata::decode(&bytes, &format!("{at}/_metadata"))?;
    if metadata.kind != Kind::Savepoint {
        return Ok(None);
    }
    super::inspect::verify_files(&store, &metadata, "").map_err(|e| {
        CheckpointError::DamagedSavepoint {
            at: at.clone(),
            source: Box::new(e),
        }
    })?;
    Ok(Some(Restore {
        store: std::sync::Arc::new(store),
        metadata,
        location: at,
        verified_in: started.elapsed(),
    }))
}

/// The verified checkpoint `from` names, checked against the plan; the
/// state of the nodes in `drop` is left out of it.
pub fn restore_point(
    plan: &crate::plan::Plan,
    from: &str,
    allow_non_restored: bool,
    drop: &std::collections::BTreeSet<String>,
) -> Result<Restore, CheckpointError> {
    let cp = plan.checkpoint().ok_or(CheckpointError::NoStore)?;
    let (mut restore, notes) = resolve(&cp.store, &plan.job().name, from)?;
    for note in notes {
        tracing::warn!("{note}");
    }
    for note in check_mapping(plan, &restore.metadata, allow_non_restored, drop)? {
        tracing::warn!("{note}");
    }
    restore
        .metadata
        .instances
        .retain(|_, i| !drop.contains(&i.node));
    tracing::info!("restoring from {}", restore.location);
    Ok(restore)
}

/// Checks, before anything runs, that the plan can take the checkpoint's
/// state ([`super::compat::assess`]); returns notes about state left out
/// on purpose, or every reason it cannot.
pub fn check_mapping(
    plan: &crate::plan::Plan,
    metadata: &super::metadata::Metadata,
    allow_non_restored: bool,
    drop: &std::collections::BTreeSet<String>,
) -> Result<Vec<String>, CheckpointError> {
    use super::compat::{assess, Verdict};

    let id = metadata.checkpoint_id;
    let assessment = assess(plan, metadata, drop);
    let known: Vec<&str> = assessment.nodes.iter().map(|n| n.node.as_str()).collect();
    let mut refusals: Vec<String> = drop
        .iter()
        .filter(|d| {
            !assessment.nodes.iter().any(|n| {
                &n.node == *d && matches!(n.verdict, Verdict::Dropped { on_purpose: true })
            })
        })
        .map(|d| {
            format!(
                "--drop-state {d}: chk-{id} holds no state of a node `{d}` (the nodes with state or a position: {})",
                known.join(", ")
            )
        })
        .collect();
    refusals.extend(assessment.refusals(id, allow_non_restored));
    if !refusals.is_empty() {
        return Err(CheckpointError::Refused { reasons: refusals });
    }
    Ok(assessment
        .nodes
        .iter()
        .filter_map(|n| match n.verdict {
            Verdict::Dropped { on_purpose } => Some(format!(
                "the state of `{}` in chk-{id} is not restored ({})",
                n.node,
                if on_purpose {
                    "--drop-state"
                } else {
                    "--allow-non-restored-state"
                }
            )),
            _ => None,
        })
        .collect())
}
