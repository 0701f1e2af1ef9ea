//! Checkpoints that do not complete: aborted when one times out, an
//! instance declines it or its `_metadata` cannot be written, and counted
//! against `tolerable_failures`; abandoned, which is no failure, when an
//! instance that has not acknowledged it finishes.
//!
//! Apart from the machine's inputs in `mod.rs` because every way a
//! checkpoint fails ends in the one [`Machine::abort`] here, which decides
//! whether the job fails with it.

use super::{Action, Machine, Now};
use crate::checkpoint::history::{CheckpointRecord, Status};

impl Machine {
    /// `_metadata` of checkpoint `id` could not be written.
    pub fn metadata_failed(&mut self, id: u64, why: &str, now: Now) -> Vec<Action> {
        let mut actions = Vec::new();
        self.abort(
            id,
            &format!("cannot write its metadata: {why}"),
            true,
            now,
            &mut actions,
        );
        actions
    }

    pub fn declined(&mut self, id: u64, instance: &str, cause: &str, now: Now) -> Vec<Action> {
        if self.aborted.contains(&id) {
            // A write that failed after the abort may have left a partial file.
            return vec![Action::RemoveFiles(id)];
        }
        let mut actions = Vec::new();
        self.abort(
            id,
            &format!("{instance} could not write its snapshot: {cause}"),
            true,
            now,
            &mut actions,
        );
        actions
    }

    /// An instance ended: checkpoints it has not acknowledged cannot
    /// complete, and are abandoned (not a failure).
    pub fn finished(&mut self, name: String, now: Now) -> Vec<Action> {
        self.finished.insert(name);
        let stuck: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, f)| self.finished.iter().any(|n| !f.acks.contains_key(n)))
            .map(|(id, _)| *id)
            .collect();
        let mut actions = Vec::new();
        for id in stuck {
            self.abort(
                id,
                "part of the job finished before it was acknowledged",
                false,
                now,
                &mut actions,
            );
        }
        actions
    }

    /// Aborts every checkpoint in flight past its timeout.
    pub(super) fn expire(&mut self, now: Now, actions: &mut Vec<Action>) {
        let timeout = self.config.settings.timeout;
        let expired: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, f)| now.at.saturating_duration_since(f.started) > timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let missing: Vec<&str> = self
                .config
                .participants
                .iter()
                .filter(|p| !self.in_flight[&id].acks.contains_key(&p.name))
                .map(|p| p.name.as_str())
                .collect();
            let more = match missing.len() {
                0..=5 => String::new(),
                n => format!(" and {} more", n - 5),
            };
            let why = format!(
                "not complete after {} (waiting for {}{more})",
                crate::plan::settings::human(self.config.settings.timeout),
                missing[..missing.len().min(5)].join(", ")
            );
            if self.abort(id, &why, true, now, actions) {
                return;
            }
        }
    }

    /// Aborts checkpoint `id`; a `failure` counts against
    /// `tolerable_failures`. Returns whether the job must fail.
    fn abort(
        &mut self,
        id: u64,
        why: &str,
        failure: bool,
        now: Now,
        actions: &mut Vec<Action>,
    ) -> bool {
        let Some(flight) = self.in_flight.remove(&id) else {
            return false;
        };
        let status = if failure {
            Status::Failed
        } else {
            Status::Abandoned
        };
        let record = self.record(id, &flight, status, now.at);
        self.ended.push(CheckpointRecord {
            cause: Some(why.to_owned()),
            ..record
        });
        self.aborted.insert(id);
        self.schedule.ended(now.at);
        if self.final_checkpoint == Some(id) {
            self.final_checkpoint = None;
        }
        if self.savepoints.remove(&id).is_some() {
            actions.push(Action::SavepointFailed {
                id,
                why: why.to_owned(),
            });
        }
        actions.push(Action::RemoveFiles(id));
        if !failure {
            tracing::info!("checkpoint {id} abandoned: {why}");
            return false;
        }
        self.stats.failed += 1;
        self.consecutive_failures += 1;
        let tolerable = self.config.settings.tolerable_failures;
        tracing::warn!(
            "checkpoint {id} failed: {why} ({} in a row, {tolerable} tolerated)",
            self.consecutive_failures
        );
        if self.consecutive_failures <= tolerable {
            return false;
        }
        actions.push(Action::Fail(super::TooManyFailures {
            id,
            why: why.to_owned(),
            in_a_row: self.consecutive_failures,
            tolerable,
        }));
        true
    }
}
