//! Per-instance counters, read by the status line, the run summary and
//! the control endpoint's metrics.
//!
//! Counters are updated once per batch (or per wait) with relaxed atomics:
//! they are statistics, never used to synchronise.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::operators::sinks::latency::Latency;

#[derive(Default, Debug)]
pub struct Metrics {
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    /// Records dropped under `on_error: skip | log`.
    pub dropped: AtomicU64,
    /// Records a window left out as late.
    pub late: AtomicU64,
    /// The chain's watermark, epoch milliseconds ([`NO_WATERMARK`]: none
    /// yet, `i64::MAX`: event time has ended).
    pub watermark: AtomicI64,
    /// Where the thread running this instance's chain spends its time.
    pub activity: Arc<Activity>,
    /// A sink's latencies, when it has a `latency_field`.
    pub latency: Arc<Latency>,
}

/// No watermark has passed yet.
pub const NO_WATERMARK: i64 = i64::MIN;

/// The time one chain instance's thread spent waiting, as Flink's
/// `backPressuredTimeMsPerSecond` and `idleTimeMsPerSecond` measure it:
/// blocked sending into a full channel (its readers are slower), and
/// waiting for input with nothing to do. The rest is busy. Measured only
/// around a wait that actually happens, so a thread that never waits pays
/// nothing.
#[derive(Default, Debug)]
pub struct Activity {
    pub blocked_ns: AtomicU64,
    pub idle_ns: AtomicU64,
}

impl Activity {
    /// Counts the time blocked since `since`; returns now, from which to
    /// count on.
    pub fn add_blocked(&self, since: Instant) -> Instant {
        let now = Instant::now();
        self.blocked_ns.fetch_add(
            now.duration_since(since).as_nanos() as u64,
            Ordering::Relaxed,
        );
        now
    }

    pub fn add_idle(&self, since: Instant) {
        self.idle_ns
            .fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }
}

impl Metrics {
    /// The counters of one member of a chain instance whose thread's
    /// waits go to `activity`.
    pub fn new(activity: Arc<Activity>) -> Metrics {
        Metrics {
            watermark: AtomicI64::new(NO_WATERMARK),
            activity,
            ..Metrics::default()
        }
    }

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
