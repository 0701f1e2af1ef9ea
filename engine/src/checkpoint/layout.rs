//! Every path in the checkpoint store is formatted here, and only here.
//!
//! ```text
//! <store>/<job>/chk-<N>/_metadata                 written last: a checkpoint without it never counts
//! <store>/<job>/chk-<N>/<node>-<i>.full           full snapshots (incremental: false)
//! <store>/<job>/shared/<node>-<i>-<N>.full|.delta incremental snapshots, shared by later checkpoints
//! <store>/<job>/savepoints/sp-<N>/                savepoints taken without a location (see savepoint.rs)
//! <store>/<job>/_lease, <store>/<job>/.lock        the run that holds the job (see lease.rs)
//! ```
//!
//! Paths are relative to the store's root and use `/`.

/// The folder of one job's checkpoints.
pub fn job_dir(job: &str) -> String {
    format!("{job}/")
}

/// The record of the run holding the job (see `lease.rs`).
pub fn lease(job: &str) -> String {
    format!("{job}/_lease")
}

/// The lock file a run holds in a local store (see `lease.rs`).
pub fn lock(job: &str) -> String {
    format!("{job}/.lock")
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

/// The folder of a job's savepoints taken without a location.
pub fn savepoints_dir(job: &str) -> String {
    format!("{job}/savepoints/")
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

/// What a shared snapshot file's name says (see [`snapshot`]).
#[derive(Debug, PartialEq, Eq)]
pub struct SharedName<'a> {
    pub node: &'a str,
    pub instance: u32,
    /// The checkpoint that wrote it.
    pub id: u64,
    pub kind: SnapshotKind,
}

/// Reads a shared snapshot file's name (`<node>-<i>-<N>.full|delta`), alone
/// or as a path; node names may hold `-`.
pub fn parse_shared_name(path: &str) -> Option<SharedName<'_>> {
    let name = path.rsplit('/').next()?;
    let (stem, kind) = match name.rsplit_once('.')? {
        (stem, "full") => (stem, SnapshotKind::Full),
        (stem, "delta") => (stem, SnapshotKind::Delta),
        _ => return None,
    };
    let (rest, id) = stem.rsplit_once('-')?;
    let (node, instance) = rest.rsplit_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if node.is_empty() || !digits(instance) || !digits(id) {
        return None;
    }
    Some(SharedName {
        node,
        instance: instance.parse().ok()?,
        id: id.parse().ok()?,
        kind,
    })
}

/// The id in a checkpoint folder name (`chk-17` → 17).
pub fn parse_checkpoint_name(name: &str) -> Option<u64> {
    let digits = name.trim_end_matches('/').strip_prefix("chk-")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&id| id <= MAX_CHECKPOINT_ID)
}

/// The highest checkpoint number: at one checkpoint a millisecond a job
/// would take 285,000 years to reach it, and numbers after it never wrap. A
/// folder with a higher one (`chk-18446744073709551615`) is no checkpoint.
pub const MAX_CHECKPOINT_ID: u64 = 1 << 53;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_checkpoint_name("chk-17"), Some(17));
        assert_eq!(parse_checkpoint_name("chk-17/"), Some(17));
        assert_eq!(
            parse_checkpoint_name("chk-9007199254740992"),
            Some(MAX_CHECKPOINT_ID)
        );
        for bad in [
            "chk-",
            "chk-1a",
            "chk--1",
            "shared",
            "chk-../1",
            "chk-9007199254740993",
            "chk-18446744073709551615",
            "chk-99999999999999999999999",
        ] {
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

    #[test]
    fn shared_names_round_trip_for_any_node_name() {
        for node in ["counts", "my-node", "a-1-2", "x.y"] {
            for (instance, id, kind) in
                [(0, 7, SnapshotKind::Delta), (12, 1234, SnapshotKind::Full)]
            {
                let path = snapshot("job-1", node, instance, id, kind, true);
                let name = parse_shared_name(&path).unwrap_or_else(|| panic!("{path}"));
                assert_eq!(
                    name,
                    SharedName {
                        node,
                        instance,
                        id,
                        kind
                    },
                    "{path}"
                );
            }
        }
        for bad in [
            "counts-0-7",
            "counts-0-7.tmp",
            "counts-7.delta",
            "-0-7.delta",
            "c-0-x.delta",
            "c--7.full",
        ] {
            assert_eq!(parse_shared_name(bad), None, "{bad}");
        }
    }
}
