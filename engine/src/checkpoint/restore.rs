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
