//! Per-instance counters, read by the status line and the run summary.
//!
//! Counters are updated once per batch with relaxed atomics: they are
//! statistics, never used to synchronise.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::operators::sinks::latency::Latency;

#[derive(Default, Debug)]
pub struct Metrics {
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    /// Records dropped under `on_error: skip | log`.
    pub dropped: AtomicU64,
    /// Records a window left out as late.
    pub late: AtomicU64,
    /// A sink's latencies, when it has a `latency_field`.
    pub latency: Arc<Latency>,
}

impl Metrics {
    pub fn add_in(&self, n: usize) {
        self.records_in.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn add_out(&self, n: usize) {
        self.records_out.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn add_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_late(&self, n: u64) {
        self.late.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.records_in.load(Ordering::Relaxed),
            self.records_out.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
        )
    }
}
