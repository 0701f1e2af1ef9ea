//! Reading a store's checkpoints back: listing them and checking that
//! every file each one needs is there, whole and unchanged.

use super::error::CheckpointError;
use super::layout;
use super::metadata::{hex, FileRef, Metadata};
use super::snapshot;
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
    let bytes = store.read(&file.path, file.size)?;
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

/// One checkpoint folder as found in the store.
#[derive(Debug)]
pub struct Found {
    pub id: u64,
    pub state: FoundState,
}

#[derive(Debug)]
pub enum FoundState {
    /// Complete and every file checks out.
    Valid(Box<Metadata>),
    /// A folder without `_metadata`: aborted or still being written.
    Incomplete,
    /// Something is wrong; the error says what and where, and whose it is
    /// (a checkpoint of a newer dataflow is the user's to read elsewhere).
    Damaged(Box<CheckpointError>),
}

/// Lists the checkpoints of `job`, oldest first, verifying each.
pub fn list(store: &dyn CheckpointStore, job: &str) -> Result<Vec<Found>, StoreError> {
    let mut ids: Vec<u64> = store
        .list(&layout::job_dir(job))?
        .iter()
        .filter_map(|n| layout::parse_checkpoint_name(n))
        .collect();
    ids.sort_unstable();
    Ok(ids
        .into_iter()
        .map(|id| Found {
            id,
            state: check(store, job, id),
        })
        .collect())
}

/// The completed checkpoints in the store (those with a readable `_metadata`).
pub fn existing_checkpoints(
    store: &dyn CheckpointStore,
    job: &str,
) -> Result<Vec<Metadata>, StoreError> {
    let mut out = Vec::new();
    for name in store.list(&layout::job_dir(job))? {
        let Some(id) = layout::parse_checkpoint_name(&name) else {
            continue;
        };
        // A folder without metadata is an unfinished checkpoint: it never counts.
        let path = layout::metadata(job, id);
        if let Ok(bytes) = store.read(&path, super::metadata::MAX_BYTES) {
            match Metadata::decode(&bytes, &path) {
                Ok(m) => out.push(m),
                Err(e) => tracing::warn!("ignoring checkpoint {id}: {e}"),
            }
        }
    }
    out.sort_by_key(|m| m.checkpoint_id);
    Ok(out)
}

/// Verifies checkpoint `id` of `job`: its metadata, and every file's size and checksum.
pub fn check(store: &dyn CheckpointStore, job: &str, id: u64) -> FoundState {
    let path = layout::metadata(job, id);
    let bytes = match store.read(&path, super::metadata::MAX_BYTES) {
        Ok(b) => b,
        Err(super::store::StoreError::NotFound { .. }) => return FoundState::Incomplete,
        Err(e) => return FoundState::Damaged(Box::new(e.into())),
    };
    let metadata = match Metadata::decode(&bytes, &path) {
        Ok(m) => m,
        Err(e) => return FoundState::Damaged(Box::new(e.into())),
    };
    if metadata.checkpoint_id != id || metadata.job != job {
        let misplaced = CheckpointError::Misplaced {
            path,
            id: metadata.checkpoint_id,
            job: metadata.job,
        };
        return FoundState::Damaged(Box::new(misplaced));
    }
    if let Err(e) = verify_files(store, &metadata, "") {
        return FoundState::Damaged(Box::new(e));
    }
    FoundState::Valid(Box::new(metadata))
}

/// Reads every file a checkpoint needs (named relative to `dir`), checks
/// its size and checksum, and decodes it: contents that pass the checksum
/// but cannot be (a key group out of range) are damage too.
pub fn verify_files(
    store: &dyn CheckpointStore,
    metadata: &Metadata,
    dir: &str,
) -> Result<(), CheckpointError> {
    for file in metadata.files() {
        let inside = FileRef {
            path: format!("{dir}{}", file.path),
            ..file.clone()
        };
        let bytes = read_verified(store, &inside)?;
        let mut nothing = snapshot::Entries::new();
        snapshot::decode_into(&bytes, metadata.max_parallelism, |_| false, &mut nothing).map_err(
            |source| CheckpointError::Snapshot {
                path: inside.path,
                source,
            },
        )?;
    }
    Ok(())
}

/// Lists the savepoints of `job` in their default folder
/// (`<job>/savepoints/sp-N`), oldest first, verifying each.
pub fn list_savepoints(store: &dyn CheckpointStore, job: &str) -> Result<Vec<Found>, StoreError> {
    let dir = layout::savepoints_dir(job);
    let mut ids: Vec<u64> = match store.list(&dir) {
        Ok(names) => names
            .iter()
            .filter_map(|n| layout::parse_savepoint_name(n.trim_end_matches('/')))
            .collect(),
        Err(StoreError::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e),
    };
    ids.sort_unstable();
    Ok(ids
        .into_iter()
        .map(|id| Found {
            id,
            state: check_savepoint(store, &layout::savepoint_dir(job, id)),
        })
        .collect())
}

/// Verifies the savepoint in folder `dir` (ending with `/`), whose files
/// are named relative to it.
pub fn check_savepoint(store: &dyn CheckpointStore, dir: &str) -> FoundState {
    let path = format!("{dir}_metadata");
    let bytes = match store.read(&path, super::metadata::MAX_BYTES) {
        Ok(b) => b,
        Err(StoreError::NotFound { .. }) => return FoundState::Incomplete,
        Err(e) => return FoundState::Damaged(Box::new(e.into())),
    };
    let metadata = match Metadata::decode(&bytes, &path) {
        Ok(m) => m,
        Err(e) => return FoundState::Damaged(Box::new(e.into())),
    };
    if let Err(e) = verify_files(store, &metadata, dir) {
        return FoundState::Damaged(Box::new(e));
    }
    FoundState::Valid(Box::new(metadata))
}

/// `YYYY-MM-DD hh:mm:ss` UTC for milliseconds since the Unix epoch.
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00");
        assert_eq!(super::utc(1_795_625_592_340), "2026-11-25 16:53:12");
        assert_eq!(super::utc(951_782_400_000), "2000-02-29 00:00:00");
    }
}
