//! Sampling what a node puts out while the job runs, for `dataflow tap`.
//!
//! Every instance holds its node's [`Tap`]. Untapped, a batch costs one
//! relaxed load. Tapped, up to [`PER_BATCH`] records of each batch are
//! copied into a bounded channel with `try_send`: when the reader is slow
//! the samples are lost, and the job never waits for it. A tap nobody has
//! read for [`FORGET_AFTER`] closes itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::value::Value;

/// At most this many records of one batch are sampled.
pub const PER_BATCH: usize = 64;
/// Samples waiting for the reader; more are lost.
const QUEUE: usize = 4096;
/// A tap not read for this long is closed.
pub const FORGET_AFTER: Duration = Duration::from_secs(5);

/// One node's tap point, shared by its instances.
#[derive(Default)]
pub struct Tap {
    open: AtomicBool,
    to: Mutex<Option<Sender<Value>>>,
}

impl Tap {
    /// Offers a batch the node put out (for a sink: what it took in).
    #[inline]
    pub fn offer(&self, batch: &[Value]) {
        if self.open.load(Ordering::Relaxed) && !batch.is_empty() {
            self.copy(batch);
        }
    }

    /// Another instance of the node copying its batch at this moment holds
    /// the lock: this batch goes unsampled rather than wait for it.
    #[cold]
    fn copy(&self, batch: &[Value]) {
        let Ok(to) = self.to.try_lock() else {
            return;
        };
        if let Some(to) = to.as_ref() {
            for record in batch.iter().take(PER_BATCH) {
                if to.try_send(record.clone()).is_err() {
                    break;
                }
            }
        }
    }

    fn open(&self) -> Receiver<Value> {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        *self.to.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        self.open.store(true, Ordering::Relaxed);
        rx
    }

    fn close(&self) {
        self.open.store(false, Ordering::Relaxed);
        *self.to.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// The run's taps, by node name; outlives its attempts.
pub struct Taps {
    points: HashMap<String, Arc<Tap>>,
    /// Open taps: what they sampled, and when they were last read.
    reading: Mutex<HashMap<String, (Receiver<Value>, Instant)>>,
}

/// `tap` named a node the job does not have.
#[derive(Debug, thiserror::Error)]
#[error("the job has no node `{node}`; its nodes: {}", known.join(", "))]
pub struct UnknownNode {
    pub node: String,
    pub known: Vec<String>,
}

impl Taps {
    pub fn new(nodes: impl IntoIterator<Item = String>) -> Taps {
        Taps {
            points: nodes.into_iter().map(|n| (n, Arc::default())).collect(),
            reading: Mutex::default(),
        }
    }

    /// The tap point of `node` (an unknown node's is never opened).
    pub fn point(&self, node: &str) -> Arc<Tap> {
        self.points.get(node).cloned().unwrap_or_default()
    }

    /// Up to `max` records sampled from `node` since the last read,
    /// waiting up to `wait` for the first. Opens the tap on the first read.
    pub fn read(&self, node: &str, max: usize, wait: Duration) -> Result<Vec<Value>, UnknownNode> {
        let Some(point) = self.points.get(node) else {
            let mut known: Vec<String> = self.points.keys().cloned().collect();
            known.sort();
            return Err(UnknownNode {
                node: node.to_owned(),
                known,
            });
        };
        self.forget_unread();
        let rx = {
            let mut reading = self.reading.lock().unwrap_or_else(|e| e.into_inner());
            let entry = reading
                .entry(node.to_owned())
                .or_insert_with(|| (point.open(), Instant::now()));
            entry.1 = Instant::now();
            entry.0.clone()
        };
        let mut records = Vec::new();
        if let Ok(first) = rx.recv_timeout(wait) {
            records.push(first);
            records.extend(rx.try_iter().take(max.saturating_sub(1)));
        }
        Ok(records)
    }

    /// Closes the taps nobody has read for [`FORGET_AFTER`].
    pub fn forget_unread(&self) {
        let mut reading = self.reading.lock().unwrap_or_else(|e| e.into_inner());
        reading.retain(|node, (_, read)| {
            let keep = read.elapsed() < FORGET_AFTER;
            if !keep {
                if let Some(point) = self.points.get(node) {
                    point.close();
                }
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unread_tap_costs_nothing_and_a_slow_reader_loses_samples() {
        let taps = Taps::new(["a".to_owned()]);
        let point = taps.point("a");
        let batch: Vec<Value> = (0..100).map(Value::Int).collect();
        point.offer(&batch);
        assert!(taps.reading.lock().unwrap().is_empty());
        // The first read opens the tap; nothing was sampled before it.
        assert!(taps.read("a", 10, Duration::ZERO).unwrap().is_empty());
        point.offer(&batch);
        let got = taps.read("a", 10, Duration::from_secs(1)).unwrap();
        assert_eq!(got, (0..10).map(Value::Int).collect::<Vec<_>>());
        let rest = taps.read("a", 1000, Duration::from_secs(1)).unwrap();
        assert_eq!(rest.len(), PER_BATCH - 10, "at most {PER_BATCH} of a batch");
        // Nobody reads: the queue fills, offers go on without waiting.
        for _ in 0..200 {
            point.offer(&batch);
        }
        let queued = taps.read("a", usize::MAX, Duration::ZERO).unwrap();
        assert_eq!(queued.len(), QUEUE);
        let err = taps.read("b", 1, Duration::ZERO).unwrap_err();
        assert_eq!(err.to_string(), "the job has no node `b`; its nodes: a");
    }
}
