//! What the machine tells people of its checkpoints: a
//! [`CheckpointRecord`] of each, kept until the shell publishes it.

use std::time::Instant;

use super::{InFlight, Machine};
use crate::checkpoint::history::{CheckpointRecord, InstanceRecord, Status};

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl Machine {
    /// Checkpoint `id` as it stands at `now`.
    pub(super) fn record(
        &self,
        id: u64,
        flight: &InFlight,
        status: Status,
        now: Instant,
    ) -> CheckpointRecord {
        let instances: Vec<InstanceRecord> = flight
            .acks
            .values()
            .map(|a| InstanceRecord {
                instance: a.instance.clone(),
                acknowledged_after_ms: flight.acked_after.get(&a.instance).map_or(0.0, |d| ms(*d)),
                alignment_ms: ms(a.alignment),
                sync_ms: ms(a.sync),
                async_ms: ms(a.upload),
                bytes: a
                    .files
                    .iter()
                    .filter(|f| f.checkpoint == id)
                    .map(|f| f.size)
                    .sum(),
            })
            .collect();
        CheckpointRecord {
            id,
            savepoint: self.savepoints.contains_key(&id),
            status,
            triggered_at_ms: flight.triggered_at_ms,
            duration_ms: now.saturating_duration_since(flight.started).as_millis() as u64,
            bytes: instances.iter().map(|i| i.bytes).sum(),
            acknowledged: flight.acks.len(),
            participants: self.config.participants.len(),
            cause: None,
            instances,
        }
    }

    /// The checkpoints under way at `now`, oldest first.
    pub fn in_progress(&self, now: Instant) -> Vec<CheckpointRecord> {
        self.in_flight
            .iter()
            .map(|(&id, flight)| self.record(id, flight, Status::InProgress, now))
            .collect()
    }

    /// The checkpoints that ended since the last call, in the order they did.
    pub fn take_ended(&mut self) -> Vec<CheckpointRecord> {
        std::mem::take(&mut self.ended)
    }
}
