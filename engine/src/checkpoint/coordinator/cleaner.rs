//! Removing the files of aborted checkpoints, on a thread of its own.
//!
//! Each removal is a few store calls, each bounded by the store's deadline.
//! Done by the coordinator, a store grown slow made the next checkpoint
//! expire before its trigger went out, and its removal the one after: no
//! checkpoint completed again (issue 13's sixth finding). Here, removals
//! wait in a queue while checkpoints go on.

use std::collections::BTreeSet;
use std::sync::Arc;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use super::layout;
use crate::checkpoint::store::{CheckpointStore, StoreError};

/// How many removals may wait. Each is one aborted checkpoint; past this
/// many the store is not keeping up, and what is not removed now is swept
/// by retention (shared files) or by the next run (checkpoint folders).
const QUEUE: usize = 1024;

pub struct Cleaner {
    queue: Sender<u64>,
    /// Closed when the thread has carried out every removal.
    done: Receiver<()>,
}

impl Cleaner {
    pub fn spawn(store: Arc<dyn CheckpointStore>, job: String) -> std::io::Result<Cleaner> {
        let (queue, ids) = crossbeam_channel::bounded(QUEUE);
        let (finished, done) = crossbeam_channel::bounded::<()>(0);
        std::thread::Builder::new()
            .name("checkpoint-cleaner".into())
            .spawn(move || {
                clean(&*store, &job, &ids);
                drop(finished);
            })?;
        Ok(Cleaner { queue, done })
    }

    /// Queues the removal of every file aborted checkpoint `id` wrote.
    pub fn remove(&self, id: u64) {
        if let Err(TrySendError::Full(_)) = self.queue.try_send(id) {
            tracing::debug!(
                "{QUEUE} removals queued: the files of checkpoint {id} wait for retention"
            );
        }
    }

    /// Waits, up to `within`, for every removal queued to be carried out:
    /// a store that does not answer must not hold the end of the job. What
    /// is left is swept as when the queue is full.
    pub fn finish(self, within: std::time::Duration) {
        drop(self.queue);
        if let Err(RecvTimeoutError::Timeout) = self.done.recv_timeout(within) {
            tracing::warn!(
                "the files of some aborted checkpoints are left for retention or the next run to remove"
            );
        }
    }
}

/// Removes each checkpoint queued; one that fails is tried again after the
/// next that succeeds (the store is back), and once more at the end.
fn clean(store: &dyn CheckpointStore, job: &str, ids: &Receiver<u64>) {
    let mut failed = BTreeSet::new();
    for id in ids {
        if remove(store, job, id, &mut failed) && !failed.is_empty() {
            for id in std::mem::take(&mut failed) {
                remove(store, job, id, &mut failed);
            }
        }
    }
    for id in std::mem::take(&mut failed) {
        remove(store, job, id, &mut failed);
    }
}

fn remove(store: &dyn CheckpointStore, job: &str, id: u64, failed: &mut BTreeSet<u64>) -> bool {
    match remove_files(store, job, id) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("cannot yet remove the files of aborted checkpoint {id}: {e}");
            failed.insert(id);
            false
        }
    }
}

/// The checkpoint's folder, and the shared files it wrote.
fn remove_files(store: &dyn CheckpointStore, job: &str, id: u64) -> Result<(), StoreError> {
    store.delete_dir(&layout::checkpoint_dir(job, id))?;
    let shared = layout::shared_dir(job);
    let names = match store.list(&shared) {
        Ok(names) => names,
        Err(StoreError::NotFound { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    names
        .iter()
        .filter(|n| layout::parse_shared_name(n).is_some_and(|n| n.id == id))
        .try_for_each(|name| store.delete(&format!("{shared}{name}")))
}
