//! A checkpoint completing: its `_metadata` built from every instance's
//! acknowledgement, the completion recorded once that file is written, and
//! what retention may delete afterwards.
//!
//! Apart from the machine's inputs in `mod.rs` because this is what a
//! completed checkpoint leaves behind in the store and the run's figures;
//! whether a checkpoint completes at all is decided there and in [`abort`].
//!
//! [`abort`]: super::abort

use std::collections::BTreeSet;
use std::time::Duration;

use super::{Action, Machine, Now};
use crate::checkpoint::coordinator::human_bytes;
use crate::checkpoint::history::Status;
use crate::checkpoint::layout;
use crate::checkpoint::metadata::{extend_history, InstanceState, Kind, Metadata, FORMAT_VERSION};
use crate::checkpoint::retention::{self, Deletions};
use crate::checkpoint::Ack;

impl Machine {
    /// The `_metadata` of checkpoint `id`, once every instance acknowledged it.
    pub(super) fn metadata(&self, id: u64, now: Now) -> Metadata {
        let flight = &self.in_flight[&id];
        let settings = &self.config.settings;
        let longest = |of: fn(&Ack) -> Duration| {
            flight
                .acks
                .values()
                .map(|a| of(a).as_secs_f64() * 1e3)
                .fold(0.0, f64::max)
        };
        Metadata {
            format_version: FORMAT_VERSION,
            job: self.config.job.clone(),
            spec_hash: self.config.spec_hash.clone(),
            checkpoint_id: id,
            kind: Kind::Checkpoint,
            run: self.config.run.clone(),
            restored_from: self.config.restored_from.clone(),
            history: extend_history(&self.config.restored_history, self.first_id, id),
            triggered_at_ms: flight.triggered_at_ms,
            completed_at_ms: now.wall_ms,
            mode: settings.mode,
            incremental: settings.incremental,
            max_parallelism: self.config.max_parallelism,
            nodes: self.config.shapes.clone(),
            instances: flight
                .acks
                .values()
                .map(|a| {
                    let state = InstanceState {
                        node: a.node.clone(),
                        instance: a.index,
                        parallelism: a.parallelism,
                        files: a.files.clone(),
                        source_position: a.source_position.clone(),
                        sink_pending: a.sink_pending.clone(),
                        event_time: a.event_time,
                    };
                    (a.instance.clone(), state)
                })
                .collect(),
            alignment_ms: longest(|a| a.alignment),
            sync_ms: longest(|a| a.sync),
        }
    }

    /// `_metadata` of checkpoint `id` is in the store: it is complete.
    pub fn metadata_written(&mut self, id: u64, now: Now) -> Vec<Action> {
        let Some(mut flight) = self.in_flight.remove(&id) else {
            return Vec::new();
        };
        let Some(metadata) = flight.metadata.take() else {
            self.in_flight.insert(id, flight);
            return Vec::new();
        };
        let duration = now.at.saturating_duration_since(flight.started);
        let record = self.record(id, &flight, Status::Completed, now.at);
        self.ended.push(record);
        self.schedule.ended(now.at);
        self.consecutive_failures = 0;
        let written = metadata.written_size();
        tracing::info!(
            "checkpoint {id} complete in {} ms: {} written ({}), alignment {:.1} ms, sync {:.2} ms",
            duration.as_millis(),
            human_bytes(written),
            if metadata.is_full() {
                "full"
            } else {
                "incremental"
            },
            metadata.alignment_ms,
            metadata.sync_ms
        );
        let s = &mut self.stats;
        s.completed += 1;
        s.last = Some(id);
        s.last_history = metadata.history.clone();
        s.last_metadata = Some(Box::new(metadata.clone()));
        s.durations.push(duration);
        s.bytes_written += written;
        s.max_sync = s
            .max_sync
            .max(Duration::from_secs_f64(metadata.sync_ms / 1e3));
        s.max_alignment = s
            .max_alignment
            .max(Duration::from_secs_f64(metadata.alignment_ms / 1e3));
        self.uploaders_behind = true;
        let mut actions = vec![Action::Completed(id)];
        if self.final_checkpoint.is_some_and(|f| id >= f) {
            actions.push(Action::Finish);
        }
        if let Some(stop) = self.savepoints.remove(&id) {
            self.stats.stopped |= stop;
            actions.push(Action::WriteSavepoint(id));
        }
        self.completed.push(metadata);
        actions.push(Action::Retain);
        actions
    }

    /// What retention deletes, given the names in the shared folder (as
    /// paths from the store's root); the checkpoints it deletes are
    /// forgotten here.
    pub fn retention(&self, shared: &[String]) -> Deletions {
        let in_flight_files: BTreeSet<String> = self
            .in_flight
            .values()
            .flat_map(|f| {
                f.acks
                    .values()
                    .flat_map(|a| a.files.iter().map(|f| f.path.clone()))
            })
            .collect();
        // Files being written for checkpoints in flight are in no ack yet.
        let shared: Vec<String> = shared
            .iter()
            .filter(|p| {
                layout::parse_shared_name(p).is_none_or(|n| !self.in_flight.contains_key(&n.id))
            })
            .cloned()
            .collect();
        // An uploader may build on any checkpoint completed since the one
        // in flight was triggered (the notice can come before the
        // snapshot), so every completed checkpoint from the oldest base of
        // one in flight is kept.
        let oldest_base = self.in_flight.values().map(|f| f.base.unwrap_or(0)).min();
        let protect: BTreeSet<u64> = self
            .completed
            .iter()
            .map(|m| m.checkpoint_id)
            .filter(|id| oldest_base.is_some_and(|base| *id >= base))
            .collect();
        let run = &self.config.run;
        let claimed = &self.claimed;
        let completed: Vec<&Metadata> = self.completed.iter().collect();
        retention::plan(
            &completed,
            &|m| m.run == *run || claimed.contains(&m.checkpoint_id),
            self.config.settings.retain as usize,
            &shared,
            &in_flight_files,
            &protect,
        )
    }

    /// Checkpoint `id`, one [`retention`](Self::retention) gave, is
    /// deleted. One that could not be stays known, and goes in a later
    /// pass: forgotten, it would stay in the store for good once the
    /// newer checkpoints through which later runs claim it were gone.
    pub fn deleted(&mut self, id: u64) {
        self.completed.retain(|m| m.checkpoint_id != id);
    }
}
