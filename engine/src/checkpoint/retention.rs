//! Which files may go: pure decisions, tested without a store.

use std::collections::BTreeSet;

use super::metadata::Metadata;

/// What retention deletes: whole checkpoint folders, and shared files no
/// kept checkpoint refers to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Deletions {
    pub checkpoints: Vec<u64>,
    pub shared_files: Vec<String>,
}

/// Keeps the newest `retain` of `completed` (any order), and the ones in
/// `protect` (the bases that snapshots still in flight build on), and
/// returns what else may be deleted. `shared_files` lists the shared
/// folder; `in_flight` are files written by checkpoints not yet complete,
/// which are never deleted here.
pub fn plan(
    completed: &[&Metadata],
    retain: usize,
    shared_files: &[String],
    in_flight: &BTreeSet<String>,
    protect: &BTreeSet<u64>,
) -> Deletions {
    let mut ids: Vec<u64> = completed.iter().map(|m| m.checkpoint_id).collect();
    ids.sort_unstable();
    let keep_from = ids.len().saturating_sub(retain.max(1));
    let kept: BTreeSet<u64> = ids[keep_from..]
        .iter()
        .chain(ids[..keep_from].iter().filter(|id| protect.contains(id)))
        .copied()
        .collect();
    let needed: BTreeSet<&str> = completed
        .iter()
        .filter(|m| kept.contains(&m.checkpoint_id))
        .flat_map(|m| m.files().map(|f| f.path.as_str()))
        .collect();
    Deletions {
        checkpoints: ids
            .iter()
            .copied()
            .filter(|id| !kept.contains(id))
            .collect(),
        shared_files: shared_files
            .iter()
            .filter(|f| !needed.contains(f.as_str()) && !in_flight.contains(*f))
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::layout::SnapshotKind;
    use crate::checkpoint::metadata::{FileRef, InstanceState};

    fn meta(id: u64, files: &[(&str, u64)]) -> Metadata {
        let files = files
            .iter()
            .map(|(p, c)| FileRef {
                path: (*p).into(),
                size: 1,
                checksum: String::new(),
                kind: SnapshotKind::Delta,
                checkpoint: *c,
            })
            .collect();
        Metadata {
            format_version: 1,
            job: "j".into(),
            spec_hash: String::new(),
            checkpoint_id: id,
            triggered_at_ms: 0,
            completed_at_ms: 0,
            mode: crate::spec::CheckpointMode::ExactlyOnce,
            incremental: true,
            max_parallelism: 128,
            instances: [(
                "c#0".to_owned(),
                InstanceState {
                    node: "c".into(),
                    instance: 0,
                    parallelism: 1,
                    files,
                    source_position: None,
                },
            )]
            .into(),
            alignment_ms: 0.0,
            sync_ms: 0.0,
        }
    }

    #[test]
    fn keeps_what_retained_checkpoints_share() {
        let m1 = meta(1, &[("s/c-0-1.full", 1)]);
        let m2 = meta(2, &[("s/c-0-1.full", 1), ("s/c-0-2.delta", 2)]);
        let m3 = meta(3, &[("s/c-0-1.full", 1), ("s/c-0-3.delta", 3)]);
        let shared: Vec<String> = ["s/c-0-1.full", "s/c-0-2.delta", "s/c-0-3.delta", "s/orphan"]
            .map(String::from)
            .to_vec();
        let in_flight = BTreeSet::from(["s/c-0-4.delta".to_owned()]);
        let d = plan(&[&m3, &m1, &m2], 1, &shared, &in_flight, &BTreeSet::new());
        assert_eq!(d.checkpoints, [1, 2]);
        assert_eq!(d.shared_files, ["s/c-0-2.delta", "s/orphan"]);
        let d = plan(&[&m1, &m2, &m3], 3, &shared, &in_flight, &BTreeSet::new());
        assert!(d.checkpoints.is_empty());
        assert_eq!(d.shared_files, ["s/orphan"]);
        // A snapshot in flight still builds on checkpoint 2: it stays.
        let d = plan(
            &[&m1, &m2, &m3],
            1,
            &shared,
            &in_flight,
            &BTreeSet::from([2]),
        );
        assert_eq!(d.checkpoints, [1]);
        assert_eq!(d.shared_files, ["s/orphan"]);
    }
}
