//! Every path in the checkpoint store is formatted here, and only here.
//!
//! ```text
//! <store>/<job>/chk-<N>/_metadata                 written last: a checkpoint without it never counts
//! <store>/<job>/chk-<N>/<node>-<i>.full           full snapshots (incremental: false)
//! <store>/<job>/shared/<node>-<i>-<N>.full|.delta incremental snapshots, shared by later checkpoints
//! <store>/<job>/savepoints/sp-<N>/                savepoints taken without a location (see savepoint.rs)
//! ```
//!
//! Paths are relative to the store's root and use `/`.

/// The folder of one job's checkpoints.
pub fn job_dir(job: &str) -> String {
    format!("{job}/")
}

/// The folder of checkpoint `id`.
pub fn checkpoint_dir(job: &str, id: u64) -> String {
    format!("{job}/chk-{id}/")
}

pub fn metadata(job: &str, id: u64) -> String {
    format!("{job}/chk-{id}/_metadata")
}

/// The default folder of the savepoint taken as checkpoint `id`.
pub fn savepoint_dir(job: &str, id: u64) -> String {
    format!("{job}/savepoints/sp-{id}/")
}

/// The id in a savepoint folder name (`sp-17` → 17).
pub fn parse_savepoint_name(name: &str) -> Option<u64> {
    parse_checkpoint_name(&format!("chk-{}", name.strip_prefix("sp-")?))
}

pub fn shared_dir(job: &str) -> String {
    format!("{job}/shared/")
}

/// Whether a snapshot file holds a whole state or the changes since the last one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotKind {
    Full,
    Delta,
}

impl SnapshotKind {
    fn ext(self) -> &'static str {
        match self {
            SnapshotKind::Full => "full",
            SnapshotKind::Delta => "delta",
        }
    }
}

/// A snapshot file of instance `instance` of `node` for checkpoint `id`.
/// `shared`: in the shared folder (incremental checkpoints) or the checkpoint's own.
pub fn snapshot(
    job: &str,
    node: &str,
    instance: u32,
    id: u64,
    kind: SnapshotKind,
    shared: bool,
) -> String {
    if shared {
        format!("{job}/shared/{node}-{instance}-{id}.{}", kind.ext())
    } else {
        format!("{job}/chk-{id}/{node}-{instance}.{}", kind.ext())
    }
}

/// The id in a checkpoint folder name (`chk-17` → 17).
pub fn parse_checkpoint_name(name: &str) -> Option<u64> {
    let digits = name.trim_end_matches('/').strip_prefix("chk-")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_checkpoint_name("chk-17"), Some(17));
        assert_eq!(parse_checkpoint_name("chk-17/"), Some(17));
        for bad in ["chk-", "chk-1a", "chk--1", "shared", "chk-../1"] {
            assert_eq!(parse_checkpoint_name(bad), None, "{bad}");
        }
        assert_eq!(
            snapshot("wc", "counts", 1, 7, SnapshotKind::Delta, true),
            "wc/shared/counts-1-7.delta"
        );
        assert_eq!(
            snapshot("wc", "counts", 1, 7, SnapshotKind::Full, false),
            "wc/chk-7/counts-1.full"
        );
    }
}
