//! Sinks' output around checkpoints, as the supervisor settles it: before
//! an attempt starts, to exactly the output of the restore point; after
//! it ends, a file sink's committed up to the last checkpoint it completed.
//!
//! Apart from the supervisor in `mod.rs` because it is the one place the
//! runtime handles sink folders itself rather than through a running sink;
//! what a folder holds and how it is recovered is `file::recover`'s.

use super::{CheckpointingError, RunError, RunOptions, SetupError};
use crate::checkpoint::coordinator;
use crate::checkpoint::store::OpendalStore;
use crate::plan::{Plan, Planned};

/// Before a job with checkpoints starts, settles every file sink's folder
/// for the restore point: its visible output becomes exactly that of the
/// restored checkpoint's past (see `file::recover`); output outside it is
/// moved aside or refused ([`NewerOutput`](super::NewerOutput)).
pub(super) fn recover_sinks(plan: &Plan, options: &RunOptions) -> Result<(), RunError> {
    use crate::checkpoint::metadata::in_history;
    use crate::operators::sinks::file;

    // Sinks that settle their output themselves (a Kafka topic's).
    recover_each(plan, options.restore.as_ref().map(|r| &r.metadata)).map_err(
        |(node, source)| SetupError::Output {
            node: node.to_owned(),
            source,
        },
    )?;

    let sinks: Vec<(&str, &std::path::Path)> = plan
        .graph()
        .node_weights()
        .filter_map(|node| match &node.planned {
            Planned::Sink(sink) => Some((node.name.as_str(), sink.committed_folder()?)),
            _ => None,
        })
        .collect();
    let Some(cp) = plan.checkpoint().filter(|_| !sinks.is_empty()) else {
        return Ok(());
    };
    // The pasts of the complete checkpoints: a pending file one of them
    // holds must survive until it is restored.
    // A store that cannot be listed now may be back for a restart.
    let pasts: Vec<(u64, Vec<(u64, u64)>)> = match OpendalStore::open_to_read(&cp.store) {
        Ok(store) => crate::checkpoint::inspect::existing_checkpoints(&store, &plan.job().name)
            .map_err(CheckpointingError::Store)?
            .iter()
            .map(|m| (m.checkpoint_id, m.past()))
            .collect(),
        Err(_) => Vec::new(),
    };
    let restorable = |n: u64| {
        pasts
            .iter()
            .any(|(id, past)| n <= *id && in_history(past, n))
    };
    let (id, history) = match &options.restore {
        Some(r) => (r.metadata.checkpoint_id, r.metadata.past()),
        None => (0, Vec::new()),
    };
    let point = file::RestorePoint {
        id,
        history: &history,
        restorable: &restorable,
    };
    for (name, path) in sinks {
        let recovery = file::recover(path, &point, options.newer_output, &options.run_id).map_err(
            |source| SetupError::Output {
                node: name.to_owned(),
                source,
            },
        )?;
        if recovery.brought_back > 0 {
            tracing::info!(
                "`{name}`: {} output file{} of chk-{id}'s past brought back from an earlier restore's .superseded-* folder",
                recovery.brought_back,
                if recovery.brought_back == 1 { "" } else { "s" },
            );
        }
        if let Some(moved) = recovery.moved {
            tracing::warn!(
                "`{name}`: {} output file{} not in chk-{id}'s past (committed after it, or on another branch) moved to {}: the restore writes their records again",
                moved.count,
                if moved.count == 1 { "" } else { "s" },
                moved.to.display()
            );
        }
    }
    Ok(())
}

/// Commits each file sink's files pending for the last checkpoint this
/// attempt completed (and the earlier ones of its past). After an attempt
/// that did not finish (a failure, a cancel), the other sinks are settled
/// for that checkpoint as a restore from it would: what they pre-committed
/// for it and had not committed becomes visible.
pub(super) fn settle_sinks(plan: &Plan, stats: &coordinator::Stats, finished: bool) {
    let Some(last) = stats.last else {
        return;
    };
    if let Some(metadata) = stats.last_metadata.as_deref().filter(|_| !finished) {
        if let Err((node, e)) = recover_each(plan, Some(metadata)) {
            tracing::warn!(
                "`{node}`: the output of chk-{last} is not all committed yet ({e}); the next restore commits it"
            );
        }
    }
    let point = crate::operators::sinks::file::RestorePoint {
        id: last,
        history: &stats.last_history,
        restorable: &|_| true,
    };
    for node in plan.graph().node_weights() {
        let Planned::Sink(sink) = &node.planned else {
            continue;
        };
        if let Some(folder) = sink.committed_folder() {
            if let Err(e) = crate::operators::sinks::file::settle(folder, &point) {
                tracing::warn!(
                    "`{}`: the output of chk-{last} is not all committed yet ({e}); the next restore commits it",
                    node.name
                );
            }
        }
    }
}

/// [`PlannedSink::recover`](crate::nodes::PlannedSink::recover) of every
/// sink, for a start from `from`; the first failure, with its node.
fn recover_each<'p>(
    plan: &'p Plan,
    from: Option<&crate::checkpoint::metadata::Metadata>,
) -> Result<(), (&'p str, crate::operators::SinkError)> {
    for node in plan.graph().node_weights() {
        let Planned::Sink(sink) = &node.planned else {
            continue;
        };
        let at = crate::nodes::SinkRestore {
            node: &node.name,
            parallelism: node.parallelism,
            from,
        };
        match sink.recover(&at) {
            Ok(Some(done)) => tracing::info!("{done}"),
            Ok(None) => {}
            Err(e) => return Err((&node.name, e)),
        }
    }
    Ok(())
}
