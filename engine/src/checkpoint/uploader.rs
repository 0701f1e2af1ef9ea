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

use super::inspect::RestoreError;
use super::layout::{self, SnapshotKind};
use super::metadata::{hex, FileRef};
use super::restore::load_chain;
use super::snapshot;
use super::store::CheckpointStore;
use super::{Ack, Report};
use crate::state::codec::{encode_value, write_value};
use crate::state::Changes;
use crate::value::Value;

/// The most checkpoints in flight an uploader's queue has room for.
pub const MAX_QUEUED: usize = 64;

/// A changed entry, borrowed: ((key group, encoded key), value or tombstone).
type Change<'a> = (&'a (u16, Box<[u8]>), &'a Option<Value>);

/// Work for an uploader.
pub enum UploadTask {
    /// Write checkpoint `ack.id`'s files, then send `ack` with them.
    Snapshot { changes: Changes, ack: Box<Ack> },
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
    // Room for a snapshot and a completion notice per checkpoint in flight
    // (up to a limit: a channel allocates its slots up front), so the
    // operator seldom waits on a slow upload; the coordinator never does.
    let slots = 2 * (max_concurrent as usize).min(MAX_QUEUED) + 2;
    let (tx, rx) = crossbeam_channel::bounded(slots);
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
                    let started = std::time::Instant::now();
                    let report = match self.write(ack.id, changes) {
                        Ok(files) => {
                            ack.files = files;
                            ack.upload = started.elapsed();
                            Report::Ack(*ack)
                        }
                        Err(cause) => Report::Declined {
                            id: ack.id,
                            instance: ack.instance,
                            cause: cause.to_string(),
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

    fn write(&mut self, id: u64, changes: Changes) -> Result<Vec<FileRef>, RestoreError> {
        // The changes are kept before anything can fail: the operator has
        // handed them over, and a later snapshot must include them even if
        // this one is never written.
        self.pending.push((id, changes, Vec::new()));
        // Every change since the base, by key; where a key changed in
        // several of the checkpoints, its latest value (`pending` is in
        // checkpoint order, and the sort is stable).
        let mut delta: Vec<Change> = self
            .pending
            .iter()
            .flat_map(|(_, changes, _)| changes.iter().map(|(k, v)| (k, v)))
            .collect();
        if self.pending.len() == 1 {
            // One snapshot's changes list each key once: any order of
            // equal keys will do, and the unstable sort is faster.
            delta.sort_unstable_by(|a, b| a.0.cmp(b.0));
        } else {
            delta.sort_by(|a, b| a.0.cmp(b.0));
        }
        let mut latest: Vec<Change> = Vec::with_capacity(delta.len());
        for entry in delta {
            match latest.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => latest.push(entry),
            }
        }
        let deltas_in_base = self
            .base
            .as_ref()
            .map_or(0, |(_, chain)| chain.len().saturating_sub(1));
        let full = !self.config.incremental
            || self.base.is_none()
            || deltas_in_base >= self.config.max_chain as usize;
        let (bytes, kind, mut chain) = match (&self.base, full) {
            (Some((_, base)), true) => {
                let mut all =
                    load_chain(&*self.store, base, crate::plan::MAX_KEY_GROUPS, |_| true)?;
                for (key, value) in &latest {
                    match value {
                        Some(value) => all.insert((*key).clone(), encode_value(value)),
                        None => all.remove(*key),
                    };
                }
                (snapshot::encode(&all), SnapshotKind::Full, Vec::new())
            }
            (base, full) => {
                // The changes are the whole snapshot, or a delta on the base:
                // encoded straight from the values, without a copy. A whole
                // snapshot has nothing beneath it for a tombstone to remove.
                if full {
                    latest.retain(|(_, v)| v.is_some());
                }
                let bytes = snapshot::encode_sorted(
                    latest.iter().map(|((kg, key), v)| (*kg, &key[..], *v)),
                    latest.len(),
                    |v, out| match v {
                        Some(v) => {
                            write_value(v, out);
                            true
                        }
                        None => false,
                    },
                );
                let kind = if full {
                    SnapshotKind::Full
                } else {
                    SnapshotKind::Delta
                };
                let chain = match (base, full) {
                    (Some((_, c)), false) => c.clone(),
                    _ => Vec::new(),
                };
                (bytes, kind, chain)
            }
        };
        let c = &self.config;
        let path = layout::snapshot(&c.job, &c.node, c.index, id, kind, c.incremental);
        let (size, sum) = (bytes.len() as u64, snapshot::checksum(&bytes));
        self.store.write(&path, bytes)?;
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
            // `remove`, not `swap_remove`: later deltas rely on the order.
            let (_, _, chain) = self.pending.remove(at);
            self.pending.retain(|(p, _, _)| *p > id);
            self.base = Some((id, chain));
        }
    }
}
