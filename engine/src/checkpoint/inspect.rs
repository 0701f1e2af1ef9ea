//! Reading a store's checkpoints back: listing them and checking that
//! every file each one needs is there, whole and unchanged.

use super::layout;
use super::metadata::Metadata;
use super::restore::read_verified;
use super::store::CheckpointStore;

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
    /// Something is wrong; the text says what and where.
    Damaged(String),
}

/// Lists the checkpoints of `job`, oldest first, verifying each.
pub fn list(store: &dyn CheckpointStore, job: &str) -> Result<Vec<Found>, String> {
    let mut ids: Vec<u64> = store
        .list(&layout::job_dir(job))
        .map_err(|e| e.to_string())?
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

/// Verifies checkpoint `id` of `job`: its metadata, and every file's size and checksum.
pub fn check(store: &dyn CheckpointStore, job: &str, id: u64) -> FoundState {
    let path = layout::metadata(job, id);
    let bytes = match store.read(&path) {
        Ok(b) => b,
        Err(super::store::StoreError::NotFound { .. }) => return FoundState::Incomplete,
        Err(e) => return FoundState::Damaged(e.to_string()),
    };
    let metadata = match Metadata::decode(&bytes, &path) {
        Ok(m) => m,
        Err(e) => return FoundState::Damaged(e.to_string()),
    };
    if metadata.checkpoint_id != id || metadata.job != job {
        return FoundState::Damaged(format!(
            "`{path}` describes checkpoint {} of job `{}`",
            metadata.checkpoint_id, metadata.job
        ));
    }
    for file in metadata.files() {
        if let Err(e) = read_verified(store, file) {
            return FoundState::Damaged(e.to_string());
        }
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
