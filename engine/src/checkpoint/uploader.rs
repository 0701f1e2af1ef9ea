//! The asynchronous part of a snapshot: writing an instance's files.
//!
//! Each stateful instance has an uploader thread. The instance hands it the
//! entries changed since its last snapshot (the synchronous part, taken on
//! the instance's thread) and goes on processing records while the
//! uploader writes and acknowledges.
//!
//! With `incremental`, checkpoint N writes a delta of every change since
//! the instance's last *completed* checkpoint (changes of aborted
//! checkpoints included) and refers to that checkpoint's chain; after
//! `max_chain` deltas, or without `incremental`, it writes a full snapshot:
//! the last completed chain read back and the changes applied.

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use super::layout::{self, SnapshotKind};
use super::metadata::{hex, FileRef};
use super::restore::load_chain;
use super::snapshot::{self, Entries};
use super::store::CheckpointStore;
use super::{Ack, Report};
use crate::state::{encode_value, Changes};

/// Work for an uploader.
pub enum UploadTask {
    /// Write checkpoint `ack.id`'s files, then send `ack` with them.
    Snapshot { changes: Changes, ack: Ack },
    /// Checkpoint `id` is complete: later deltas build on it.
    Completed(u64),
}

pub struct UploaderConfig {
    pub job: String,
    pub node: String,
    pub index: u32,
    pub incremental: bool,
    pub max_chain: u32,
}

struct Uploader {
    config: UploaderConfig,
    store: Arc<dyn CheckpointStore>,
    /// The last completed checkpoint of this instance and its chain.
    base: Option<(u64, Vec<FileRef>)>,
    /// Checkpoints since `base`: their changes, and the chain each wrote.
    pending: Vec<(u64, Changes, Vec<FileRef>)>,
}

/// Starts an uploader; it runs until the sending side is dropped.
pub fn spawn(
    config: UploaderConfig,
    store: Arc<dyn CheckpointStore>,
    reports: Sender<Report>,
    max_concurrent: u32,
) -> std::io::Result<Sender<UploadTask>> {
    // Room for a snapshot and a completion notice per checkpoint in flight,
    // so neither the operator nor the coordinator waits on a slow upload
    // (while the uploader might wait on the coordinator's report queue).
    let (tx, rx) = crossbeam_channel::bounded(2 * max_concurrent as usize + 2);
    let name = format!("{}#{}-upload", config.node, config.index);
    let mut uploader = Uploader {
        config,
        store,
        base: None,
        pending: Vec::new(),
    };
    std::thread::Builder::new()
        .name(name)
        .spawn(move || uploader.run(&rx, &reports))?;
    Ok(tx)
}

impl Uploader {
    fn run(&mut self, tasks: &Receiver<UploadTask>, reports: &Sender<Report>) {
        for task in tasks {
            match task {
                UploadTask::Snapshot { changes, mut ack } => {
                    let report = match self.write(ack.id, changes) {
                        Ok(files) => {
                            ack.files = files;
                            Report::Ack(ack)
                        }
                        Err(cause) => Report::Declined {
                            id: ack.id,
                            instance: ack.instance,
                            cause,
                        },
                    };
                    if reports.send(report).is_err() {
                        return;
                    }
                }
                UploadTask::Completed(id) => self.completed(id),
            }
        }
    }

    fn write(&mut self, id: u64, changes: Changes) -> Result<Vec<FileRef>, String> {
        // The changes are kept before anything can fail: the operator has
        // handed them over, and a later snapshot must include them even if
        // this one is never written.
        self.pending.push((id, changes, Vec::new()));
        let mut delta = Entries::new();
        let encoded = |c: &Changes| {
            c.iter()
                .map(|(k, v)| (k.clone(), encode_value(v)))
                .collect::<Vec<_>>()
        };
        for (_, changes, _) in &self.pending {
            delta.extend(encoded(changes));
        }
        let deltas_in_base = self
            .base
            .as_ref()
            .map_or(0, |(_, chain)| chain.len().saturating_sub(1));
        let full = !self.config.incremental
            || self.base.is_none()
            || deltas_in_base >= self.config.max_chain as usize;
        let (entries, kind, mut chain) = if full {
            let mut all = match &self.base {
                Some((_, chain)) => {
                    load_chain(&*self.store, chain, |_| true).map_err(|e| e.to_string())?
                }
                None => Entries::new(),
            };
            all.extend(delta);
            (all, SnapshotKind::Full, Vec::new())
        } else {
            let chain = self
                .base
                .as_ref()
                .map(|(_, c)| c.clone())
                .unwrap_or_default();
            (delta, SnapshotKind::Delta, chain)
        };
        let c = &self.config;
        let path = layout::snapshot(&c.job, &c.node, c.index, id, kind, c.incremental);
        let bytes = snapshot::encode(&entries);
        let (size, sum) = (bytes.len() as u64, snapshot::checksum(&bytes));
        self.store.write(&path, bytes).map_err(|e| e.to_string())?;
        chain.push(FileRef {
            path,
            size,
            checksum: hex(sum),
            kind,
            checkpoint: id,
        });
        if let Some(entry) = self.pending.last_mut() {
            entry.2 = chain.clone();
        }
        Ok(chain)
    }

    fn completed(&mut self, id: u64) {
        if let Some(at) = self.pending.iter().position(|(p, _, _)| *p == id) {
            let (_, _, chain) = self.pending.swap_remove(at);
            self.pending.retain(|(p, _, _)| *p > id);
            self.base = Some((id, chain));
        }
    }
}
