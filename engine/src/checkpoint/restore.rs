//! Reading state back from a checkpoint's files.

use super::metadata::{hex, FileRef};
use super::snapshot::{self, Entries};
use super::store::{CheckpointStore, StoreError};

/// Why a checkpoint's state cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("`{path}` is damaged: {why}")]
    Damaged { path: String, why: String },
}

/// Reads one file and checks it against its reference.
pub fn read_verified(store: &dyn CheckpointStore, file: &FileRef) -> Result<Vec<u8>, RestoreError> {
    let bytes = store.read(&file.path)?;
    let damaged = |why: String| RestoreError::Damaged {
        path: file.path.clone(),
        why,
    };
    if bytes.len() as u64 != file.size {
        return Err(damaged(format!(
            "{} bytes, but the checkpoint recorded {}",
            bytes.len(),
            file.size
        )));
    }
    let sum = hex(snapshot::checksum(&bytes));
    if sum != file.checksum {
        return Err(damaged(format!(
            "checksum {sum}, but the checkpoint recorded {}",
            file.checksum
        )));
    }
    Ok(bytes)
}

/// The state a chain of files (a full snapshot, then deltas) adds up to,
/// keeping only the key groups `keep` accepts.
pub fn load_chain(
    store: &dyn CheckpointStore,
    chain: &[FileRef],
    keep: impl Fn(u16) -> bool,
) -> Result<Entries, RestoreError> {
    let mut entries = Entries::new();
    for file in chain {
        let bytes = read_verified(store, file)?;
        snapshot::decode_into(&bytes, &keep, &mut entries).map_err(|e| RestoreError::Damaged {
            path: file.path.clone(),
            why: e.to_string(),
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
) -> Result<(Restore, Vec<String>), String> {
    use super::inspect::{self, FoundState};
    use super::layout::{parse_checkpoint_name, parse_savepoint_name};

    if let Some(id) = parse_savepoint_name(from) {
        let mut location = spec_store.clone();
        location.root = format!(
            "{}/{}",
            location.root.trim_end_matches('/'),
            super::layout::savepoint_dir(job, id).trim_end_matches('/')
        );
        return match savepoint_at(&location)? {
            Some(restore) => Ok((restore, Vec::new())),
            None => Err(format!("there is no savepoint {from} at {location}")),
        };
    }
    let is_location = from.contains("://") || from.starts_with('/');
    if is_location {
        let location = super::savepoint::parse_location(from)?;
        if let Some(restore) = savepoint_at(&location)? {
            return Ok((restore, Vec::new()));
        }
    }
    let (location, job, wanted) = if is_location {
        let mut location = super::savepoint::parse_location(from)?;
        let root = location.root.trim_end_matches('/').to_owned();
        let mut parts = root.rsplitn(3, '/');
        let (name, job_name, parent) = (parts.next(), parts.next(), parts.next());
        let (Some(id), Some(job_name)) = (
            name.and_then(parse_checkpoint_name),
            job_name.filter(|j| !j.is_empty()),
        ) else {
            return Err(format!(
                "`{from}` is neither a savepoint (a folder with a `_metadata` file) nor a checkpoint's location (<store>/<job>/chk-<N>)"
            ));
        };
        location.root = match parent {
            Some(p) if !p.is_empty() => p.to_owned(),
            _ => "/".to_owned(),
        };
        (location, job_name.to_owned(), Some(id))
    } else if from == "latest" {
        (spec_store.clone(), job.to_owned(), None)
    } else {
        let id = parse_checkpoint_name(from)
            .ok_or_else(|| format!("`{from}` is not a checkpoint: use `latest`, a name such as `chk-17` or `sp-17`, or a full location"))?;
        (spec_store.clone(), job.to_owned(), Some(id))
    };
    let started = std::time::Instant::now();
    let store: std::sync::Arc<dyn CheckpointStore> = std::sync::Arc::new(
        super::store::OpendalStore::open(&location).map_err(|e| e.to_string())?,
    );
    let found = inspect::list(&*store, &job)?;
    let here = format!("{}/{job}", location.to_string().trim_end_matches('/'));
    let available = || {
        let names: Vec<String> = found
            .iter()
            .filter(|f| matches!(f.state, FoundState::Valid(_)))
            .map(|f| format!("chk-{}", f.id))
            .collect();
        if names.is_empty() {
            format!("there are no complete checkpoints in {here}")
        } else {
            format!("the complete ones are: {}", names.join(", "))
        }
    };
    let mut notes = Vec::new();
    let chosen = match wanted {
        Some(id) => match found.iter().find(|f| f.id == id) {
            None => {
                return Err(format!(
                    "there is no checkpoint chk-{id} in {here}; {}",
                    available()
                ))
            }
            Some(f) => f,
        },
        None => {
            let mut chosen = None;
            for f in found.iter().rev() {
                match &f.state {
                    FoundState::Valid(_) => {
                        chosen = Some(f);
                        break;
                    }
                    FoundState::Damaged(why) => notes.push(format!(
                        "chk-{} is damaged ({why}); trying an older one",
                        f.id
                    )),
                    FoundState::Incomplete => {}
                }
            }
            let f = chosen.ok_or_else(|| format!("no intact checkpoint to restore in {here}"))?;
            if !notes.is_empty() {
                notes.push(format!(
                    "restoring from chk-{}, the newest intact checkpoint",
                    f.id
                ));
            }
            f
        }
    };
    match &chosen.state {
        FoundState::Valid(metadata) => Ok((
            Restore {
                store,
                metadata: (**metadata).clone(),
                location: format!("{here}/chk-{}", chosen.id),
                verified_in: started.elapsed(),
            },
            notes,
        )),
        FoundState::Incomplete => Err(format!(
            "chk-{} in {here} is incomplete (it has no _metadata: it was aborted or never finished); {}",
            chosen.id,
            available()
        )),
        FoundState::Damaged(why) => Err(format!("chk-{} in {here} cannot be restored: {why}", chosen.id)),
    }
}

/// The savepoint in the folder `location`, verified; `None` when the
/// folder holds no savepoint's `_metadata` (it may be a checkpoint's).
fn savepoint_at(location: &crate::plan::StoreLocation) -> Result<Option<Restore>, String> {
    use super::metadata::{Kind, Metadata};
    use super::store::StoreError;

    let started = std::time::Instant::now();
    let store = match super::store::OpendalStore::open_to_read(location) {
        Ok(store) => store,
        // A folder that does not exist holds no savepoint; the caller's
        // reading as a checkpoint's location says what is missing.
        Err(_) => return Ok(None),
    };
    let bytes = match store.read("_metadata") {
        Ok(bytes) => bytes,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let at = location.to_string().trim_end_matches('/').to_owned();
    let metadata =
        Metadata::decode(&bytes, &format!("{at}/_metadata")).map_err(|e| e.to_string())?;
    if metadata.kind != Kind::Savepoint {
        return Ok(None);
    }
    for file in metadata.files() {
        read_verified(&store, file)
            .map_err(|e| format!("the savepoint at {at} is damaged: {e}"))?;
    }
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
) -> Result<Restore, String> {
    let cp = plan.checkpoint.as_ref().ok_or_else(|| {
        "the spec has no `checkpoint:` section, so there is no store to restore from".to_owned()
    })?;
    let (mut restore, notes) = resolve(&cp.store, &plan.job.name, from)?;
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
) -> Result<Vec<String>, String> {
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
        return Err(refusals.join("\n"));
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
