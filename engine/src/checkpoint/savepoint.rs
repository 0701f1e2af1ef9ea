//! Savepoints: a completed checkpoint rewritten as a self-contained folder.
//!
//! A savepoint is taken like a checkpoint (a barrier through the job, the
//! same number sequence); once that checkpoint completes, each instance's
//! chain of snapshots is read back and written as one full snapshot into
//! the savepoint's folder, then its `_metadata` (`kind: savepoint`) last.
//! Paths inside are relative to the folder, so the folder can be moved or
//! copied to another folder or store and restored from there; retention
//! never touches it.
//!
//! ```text
//! <folder>/_metadata
//! <folder>/<node>-<i>.full
//! ```

use std::sync::Arc;

use super::error::CheckpointError;
use super::layout::SnapshotKind;
use super::metadata::{hex, FileRef, Kind, Metadata};
use super::restore::load_chain;
use super::snapshot;
use super::store::{CheckpointStore, OpendalStore};
use crate::plan::StoreLocation;

/// Where a savepoint goes: a store and the folder in it.
pub struct Target {
    pub store: Arc<dyn CheckpointStore>,
    /// The folder inside `store`, ending with `/` (empty: its root).
    pub prefix: String,
    /// The folder's full location, for messages and `--from`.
    pub location: String,
}

impl Target {
    /// `to` (a location or an absolute folder path), or by default
    /// `<store>/<job>/savepoints/sp-<id>` in the checkpoint store. Calls to
    /// another store end by `deadline`, as the checkpoint store's do.
    pub fn resolve(
        to: Option<&str>,
        checkpoints: &Arc<dyn CheckpointStore>,
        job: &str,
        id: u64,
        deadline: std::time::Duration,
    ) -> Result<Target, CheckpointError> {
        match to {
            None => {
                let prefix = super::layout::savepoint_dir(job, id);
                Ok(Target {
                    store: Arc::clone(checkpoints),
                    location: format!(
                        "{}/{}",
                        checkpoints.describe().trim_end_matches('/'),
                        prefix.trim_end_matches('/')
                    ),
                    prefix,
                })
            }
            Some(to) => {
                let location = parse_location(to)?;
                let store = OpendalStore::open_with_deadline(&location, deadline)?;
                Ok(Target {
                    location: location.to_string().trim_end_matches('/').to_owned(),
                    store: Arc::new(store),
                    prefix: String::new(),
                })
            }
        }
    }
}

/// A location given on the command line: a URI, or an absolute path.
pub fn parse_location(text: &str) -> Result<StoreLocation, CheckpointError> {
    let parsed = if text.contains("://") {
        StoreLocation::parse(text)
    } else if text.starts_with('/') {
        StoreLocation::local(text.trim_end_matches('/'))
    } else {
        return Err(CheckpointError::NotALocation {
            text: text.to_owned(),
        });
    };
    Ok(parsed?)
}

/// Writes checkpoint `checkpoint` (in `from`) as a savepoint at `to`;
/// returns the savepoint's metadata.
pub fn write(
    from: &dyn CheckpointStore,
    checkpoint: &Metadata,
    to: &Target,
) -> Result<Metadata, CheckpointError> {
    let mut savepoint = checkpoint.clone();
    savepoint.kind = Kind::Savepoint;
    savepoint.incremental = false;
    for state in savepoint.instances.values_mut() {
        if state.files.is_empty() {
            continue;
        }
        let entries = load_chain(from, &state.files, checkpoint.max_parallelism, |_| true)?;
        let bytes = snapshot::encode(&entries);
        let name = format!("{}-{}.full", state.node, state.instance);
        let file = FileRef {
            path: name.clone(),
            size: bytes.len() as u64,
            checksum: hex(snapshot::checksum(&bytes)),
            kind: SnapshotKind::Full,
            checkpoint: checkpoint.checkpoint_id,
        };
        to.store.write(&format!("{}{name}", to.prefix), bytes)?;
        state.files = vec![file];
    }
    let bytes = savepoint.encode();
    to.store.write(&format!("{}_metadata", to.prefix), bytes)?;
    Ok(savepoint)
}
