//! Which files may go: pure decisions, tested without a store.
//!
//! A run deletes only checkpoints it owns: its own, and those of the
//! lineage it continues ([`lineage`]: the checkpoint it restored and the
//! older ones of the runs before it), as Flink's restore claims the
//! checkpoint it restores. Other runs' checkpoints (a run started without
//! `--from` over a store an earlier run left; checkpoints newer than the
//! one restored) are what a user may still restore, and stay.

use std::collections::BTreeSet;

use super::layout;
use super::metadata::Metadata;
use super::store::{CheckpointStore, StoreError};

/// What retention deletes: whole checkpoint folders, and shared files no
/// kept checkpoint refers to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Deletions {
    pub checkpoints: Vec<u64>,
    pub shared_files: Vec<String>,
}

/// Of the checkpoints in `completed` (any order, every run's) that the
/// current run owns, keeps the newest `retain` and the ones in `protect`
/// (the bases that snapshots still in flight build on), and returns what
/// else may be deleted. Checkpoints it does not own are all kept.
/// `shared_files` lists the shared folder; `in_flight` are files written by
/// checkpoints not yet complete, which are never deleted here.
pub fn plan(
    completed: &[&Metadata],
    owned: &dyn Fn(&Metadata) -> bool,
    retain: usize,
    shared_files: &[String],
    in_flight: &BTreeSet<String>,
    protect: &BTreeSet<u64>,
) -> Deletions {
    let mut ids: Vec<u64> = completed
        .iter()
        .filter(|m| owned(m))
        .map(|m| m.checkpoint_id)
        .collect();
    ids.sort_unstable();
    let keep_from = ids.len().saturating_sub(retain.max(1));
    let kept: BTreeSet<u64> = completed
        .iter()
        .map(|m| m.checkpoint_id)
        .filter(|id| !ids.contains(id))
        .chain(ids[keep_from..].iter().copied())
        .chain(
            ids[..keep_from]
                .iter()
                .filter(|id| protect.contains(id))
                .copied(),
        )
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

/// `dataflow checkpoints --prune`, for a job that is not running: keeps
/// the newest `keep` of the `intact` checkpoints, whichever run took them,
/// and the shared files they need; the other checkpoints go, with the
/// folders in `unusable` (damaged or incomplete) and every other shared file.
pub fn prune(intact: &[&Metadata], unusable: &[u64], keep: usize, shared: &[String]) -> Deletions {
    let nothing = BTreeSet::new();
    let mut deletions = plan(intact, &|_| true, keep, shared, &BTreeSet::new(), &nothing);
    deletions.checkpoints.extend(unusable);
    deletions.checkpoints.sort_unstable();
    deletions
}

/// The checkpoints a run restored from the location `restored` continues:
/// that checkpoint, the older checkpoints of the run that took it, and so
/// on back along the restores that run started from, as long as they are
/// checkpoints in `job_dir` (the job's folder's location). A savepoint, or
/// a checkpoint of another store, is claimed by no one.
pub fn lineage(completed: &[Metadata], restored: &str, job_dir: &str) -> BTreeSet<u64> {
    let in_job_dir = |location: &str| {
        location
            .strip_prefix(job_dir)?
            .strip_prefix('/')
            .and_then(layout::parse_checkpoint_name)
    };
    let mut claimed = BTreeSet::new();
    let mut point = in_job_dir(restored);
    while let Some(at) = point {
        let Some(taken) = completed.iter().find(|m| m.checkpoint_id == at) else {
            break;
        };
        claimed.extend(
            completed
                .iter()
                .filter(|m| m.run == taken.run && m.checkpoint_id <= at)
                .map(|m| m.checkpoint_id),
        );
        // Numbers only decrease along the chain; anything else is not ours.
        point = taken
            .restored_from
            .as_deref()
            .and_then(in_job_dir)
            .filter(|earlier| *earlier < at);
    }
    claimed
}

/// Deletes every completed checkpoint of `run` and the shared files no
/// other checkpoint needs (`on_cancel: delete`).
pub fn delete_run(store: &dyn CheckpointStore, job: &str, run: &str) -> Result<(), StoreError> {
    let completed = super::inspect::existing_checkpoints(store, job)?;
    let (own, others): (Vec<&Metadata>, Vec<&Metadata>) =
        completed.iter().partition(|m| m.run == run);
    let needed: BTreeSet<&str> = others
        .iter()
        .flat_map(|m| m.files().map(|f| f.path.as_str()))
        .collect();
    for m in &own {
        store.delete(&layout::metadata(job, m.checkpoint_id))?;
        store.delete_dir(&layout::checkpoint_dir(job, m.checkpoint_id))?;
        for f in m.files().filter(|f| !needed.contains(f.path.as_str())) {
            store.delete(&f.path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::layout::SnapshotKind;
    use crate::checkpoint::metadata::{FileRef, InstanceState};
    use std::collections::BTreeMap;

    fn meta(id: u64, files: &[(&str, u64)]) -> Metadata {
        meta_of("r", id, files)
    }

    fn meta_of(run: &str, id: u64, files: &[(&str, u64)]) -> Metadata {
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
            format_version: 2,
            job: "j".into(),
            spec_hash: String::new(),
            checkpoint_id: id,
            kind: crate::checkpoint::metadata::Kind::Checkpoint,
            run: run.into(),
            restored_from: None,
            history: Vec::new(),
            triggered_at_ms: 0,
            completed_at_ms: 0,
            mode: crate::plan::settings::CheckpointMode::ExactlyOnce,
            incremental: true,
            max_parallelism: 128,
            nodes: BTreeMap::new(),
            instances: [(
                "c#0".to_owned(),
                InstanceState {
                    node: "c".into(),
                    instance: 0,
                    parallelism: 1,
                    files,
                    source_position: None,
                    sink_pending: None,
                    event_time: None,
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
        let d = plan(
            &[&m3, &m1, &m2],
            &|m| m.run == "r",
            1,
            &shared,
            &in_flight,
            &BTreeSet::new(),
        );
        assert_eq!(d.checkpoints, [1, 2]);
        assert_eq!(d.shared_files, ["s/c-0-2.delta", "s/orphan"]);
        let d = plan(
            &[&m1, &m2, &m3],
            &|m| m.run == "r",
            3,
            &shared,
            &in_flight,
            &BTreeSet::new(),
        );
        assert!(d.checkpoints.is_empty());
        assert_eq!(d.shared_files, ["s/orphan"]);
        // A snapshot in flight still builds on checkpoint 2: it stays.
        let d = plan(
            &[&m1, &m2, &m3],
            &|m| m.run == "r",
            1,
            &shared,
            &in_flight,
            &BTreeSet::from([2]),
        );
        assert_eq!(d.checkpoints, [1]);
        assert_eq!(d.shared_files, ["s/orphan"]);
    }

    #[test]
    fn a_run_never_deletes_another_runs_checkpoints() {
        // Run "a" left chk-1 and chk-2 (incremental on chk-1); run "b" now
        // takes 3, 4 and 5 with retain 1.
        let a1 = meta_of("a", 1, &[("s/c-0-1.full", 1)]);
        let a2 = meta_of("a", 2, &[("s/c-0-1.full", 1), ("s/c-0-2.delta", 2)]);
        let b: Vec<Metadata> = (3..=5)
            .map(|id| meta_of("b", id, &[(&format!("s/c-0-{id}.full"), id)]))
            .collect();
        let shared: Vec<String> = [
            "s/c-0-1.full",
            "s/c-0-2.delta",
            "s/c-0-3.full",
            "s/c-0-4.full",
            "s/c-0-5.full",
        ]
        .map(String::from)
        .to_vec();
        let completed: Vec<&Metadata> = [&a1, &a2].into_iter().chain(&b).collect();
        let none = BTreeSet::new();
        let d = plan(
            &completed,
            &|m| m.run == "b",
            1,
            &shared,
            &none,
            &BTreeSet::new(),
        );
        assert_eq!(d.checkpoints, [3, 4]);
        assert_eq!(d.shared_files, ["s/c-0-3.full", "s/c-0-4.full"]);
        // Version 1 checkpoints (run unknown) count as another run's.
        let old = meta_of("", 1, &[("s/c-0-1.full", 1)]);
        let d = plan(
            &[&old, &b[0]],
            &|m| m.run == "b",
            1,
            &shared,
            &none,
            &BTreeSet::new(),
        );
        assert!(d.checkpoints.is_empty());
    }

    #[test]
    fn a_restore_claims_the_lineage_it_continues() {
        let dir = "file:///s/wc";
        let with_origin = |run: &str, id: u64, from: Option<&str>| {
            let mut m = meta_of(run, id, &[]);
            m.restored_from = from.map(String::from);
            m
        };
        let completed = vec![
            // Run "a" from the beginning; "b" restored a's chk-2; "c"
            // restored b's chk-5; "x" is a fresh run in between; "s"
            // restored a savepoint kept elsewhere.
            with_origin("a", 1, None),
            with_origin("a", 2, None),
            with_origin("a", 3, None),
            with_origin("b", 4, Some("file:///s/wc/chk-2")),
            with_origin("b", 5, Some("file:///s/wc/chk-2")),
            with_origin("x", 6, None),
            with_origin("b", 7, Some("file:///s/wc/chk-2")),
            with_origin("s", 8, Some("file:///elsewhere/sp-3")),
        ];
        let ids = |v: &[u64]| v.iter().copied().collect::<BTreeSet<u64>>();
        // Restoring b's chk-5: b's 4 and 5, and a's 1 and 2; not a's 3
        // (newer than what b restored), x's 6, or b's 7 (newer than 5).
        let chk = |id: u64| format!("{dir}/chk-{id}");
        assert_eq!(lineage(&completed, &chk(5), dir), ids(&[1, 2, 4, 5]));
        assert_eq!(lineage(&completed, &chk(3), dir), ids(&[1, 2, 3]));
        assert_eq!(lineage(&completed, &chk(8), dir), ids(&[8]));
        // Another store's checkpoint, or a savepoint, claims nothing.
        assert!(lineage(&completed, "file:///other/wc/chk-4", dir).is_empty());
        assert!(lineage(&completed, "file:///s/wc/savepoints/sp-7", dir).is_empty());
        assert!(lineage(&completed, &chk(99), dir).is_empty());
    }

    #[test]
    fn prune_keeps_the_newest_intact_checkpoints_of_any_run_and_what_they_need() {
        let m1 = meta_of("a", 1, &[("s/c-0-1.full", 1)]);
        let m2 = meta_of("b", 2, &[("s/c-0-1.full", 1), ("s/c-0-2.delta", 2)]);
        let m4 = meta_of("b", 4, &[("s/c-0-4.full", 4)]);
        let shared: Vec<String> = [
            "s/c-0-1.full",
            "s/c-0-2.delta",
            "s/c-0-3.delta",
            "s/c-0-4.full",
        ]
        .map(String::from)
        .to_vec();
        let d = prune(&[&m1, &m2, &m4], &[3, 5], 2, &shared);
        assert_eq!(d.checkpoints, [1, 3, 5]);
        assert_eq!(d.shared_files, ["s/c-0-3.delta"]);
        let d = prune(&[&m1, &m2, &m4], &[], 1, &shared);
        assert_eq!(d.checkpoints, [1, 2]);
        assert_eq!(
            d.shared_files,
            ["s/c-0-1.full", "s/c-0-2.delta", "s/c-0-3.delta"]
        );
    }
}
