//! What a run's checkpoints did, for people watching it: the recent ones
//! one by one (Flink's checkpoint history), and counts and a duration
//! histogram over the whole run, which the control endpoint serves as
//! JSON and as Prometheus metrics.
//!
//! The coordinator's machine writes a [`CheckpointRecord`] when a
//! checkpoint ends; its shell publishes them into the run's [`History`],
//! which outlives restarts.

use std::collections::VecDeque;

use serde::Serialize;

/// How many ended checkpoints are kept one by one (Flink keeps 10).
pub const KEPT: usize = 100;

/// The upper bounds of the duration histogram's buckets, in seconds.
pub const DURATION_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    InProgress,
    Completed,
    /// Timed out or could not be written: counts against `tolerable_failures`.
    Failed,
    /// Given up without a fault: the job ended or part of it finished first.
    Abandoned,
}

/// One checkpoint, as it ended (or so far, while in progress).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckpointRecord {
    pub id: u64,
    /// Taken for `dataflow savepoint` or `stop`.
    pub savepoint: bool,
    pub status: Status,
    /// Milliseconds since the Unix epoch.
    pub triggered_at_ms: u64,
    /// From trigger to completion or abort (so far, while in progress).
    pub duration_ms: u64,
    /// Bytes of state this checkpoint wrote (an incremental one writes
    /// only what changed).
    pub bytes: u64,
    /// Instances that have acknowledged, of all that take part.
    pub acknowledged: usize,
    pub participants: usize,
    /// Why it failed or was abandoned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The acknowledged instances' parts, by instance name.
    pub instances: Vec<InstanceRecord>,
}

/// One instance's part in a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceRecord {
    pub instance: String,
    /// From the trigger to its acknowledgement.
    pub acknowledged_after_ms: f64,
    /// How long its inputs were held waiting for the barrier on all of them.
    pub alignment_ms: f64,
    /// How long the snapshot held its thread.
    pub sync_ms: f64,
    /// How long writing its state to the store took, off its thread.
    pub async_ms: f64,
    pub bytes: u64,
}

/// The run's checkpoints: the recent ones, in progress and ended, and
/// figures over the whole run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct History {
    pub completed: u64,
    pub failed: u64,
    pub abandoned: u64,
    /// Completed checkpoints' durations: counts per bucket of
    /// [`DURATION_BUCKETS`] (not cumulative), the last for longer ones.
    #[serde(skip)]
    pub duration_counts: [u64; DURATION_BUCKETS.len() + 1],
    #[serde(skip)]
    pub duration_sum_s: f64,
    /// Bytes written by completed checkpoints over the run.
    pub bytes_written: u64,
    /// Checkpoints under way now, oldest first.
    pub in_progress: Vec<CheckpointRecord>,
    /// The [`KEPT`] most recently ended, oldest first.
    pub ended: VecDeque<CheckpointRecord>,
}

impl History {
    /// Adds checkpoints that ended.
    pub fn ended(&mut self, records: impl IntoIterator<Item = CheckpointRecord>) {
        for record in records {
            match record.status {
                Status::Completed => {
                    self.completed += 1;
                    self.bytes_written += record.bytes;
                    let seconds = record.duration_ms as f64 / 1e3;
                    let bucket = DURATION_BUCKETS
                        .iter()
                        .position(|&le| seconds <= le)
                        .unwrap_or(DURATION_BUCKETS.len());
                    self.duration_counts[bucket] += 1;
                    self.duration_sum_s += seconds;
                }
                Status::Failed => self.failed += 1,
                Status::Abandoned => self.abandoned += 1,
                Status::InProgress => continue,
            }
            self.in_progress.retain(|r| r.id != record.id);
            if self.ended.len() == KEPT {
                self.ended.pop_front();
            }
            self.ended.push_back(record);
        }
    }

    /// The newest completed checkpoint kept.
    pub fn last_completed(&self) -> Option<&CheckpointRecord> {
        self.ended
            .iter()
            .rev()
            .find(|r| r.status == Status::Completed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u64, status: Status, duration_ms: u64) -> CheckpointRecord {
        CheckpointRecord {
            id,
            savepoint: false,
            status,
            triggered_at_ms: 0,
            duration_ms,
            bytes: 10,
            acknowledged: 1,
            participants: 1,
            cause: None,
            instances: Vec::new(),
        }
    }

    #[test]
    fn counts_bucket_and_keep_the_most_recent() {
        let mut h = History::default();
        h.in_progress.push(record(1, Status::InProgress, 0));
        h.ended([record(1, Status::Completed, 3)]);
        assert!(h.in_progress.is_empty());
        h.ended([
            record(2, Status::Completed, 700),
            record(3, Status::Failed, 60_000),
            record(4, Status::Abandoned, 1),
            record(5, Status::Completed, 120_000),
        ]);
        assert_eq!((h.completed, h.failed, h.abandoned), (3, 1, 1));
        assert_eq!(h.bytes_written, 30);
        assert_eq!(h.duration_counts[0], 1, "3 ms is within 5 ms");
        assert_eq!(h.duration_counts[7], 1, "0.7 s is within 1 s");
        assert_eq!(
            h.duration_counts[DURATION_BUCKETS.len()],
            1,
            "2 min is past 60 s"
        );
        assert!((h.duration_sum_s - 120.703).abs() < 1e-9);
        assert_eq!(h.last_completed().map(|r| r.id), Some(5));
        for id in 6..=200 {
            h.ended([record(id, Status::Completed, 1)]);
        }
        assert_eq!(h.ended.len(), KEPT);
        assert_eq!(h.ended.front().map(|r| r.id), Some(101));
    }
}
