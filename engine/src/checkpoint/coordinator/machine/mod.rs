//! The coordinator's decisions, apart from its I/O.
//!
//! A state machine: what happens goes in (a tick of the clock, an
//! acknowledgement, a decline, a source's input ending, an instance
//! finishing, a savepoint asked for, `_metadata` written or not) and what
//! to do comes out as [`Action`]s. No threads, channels or store: the shell
//! in the coordinator's `mod.rs` carries the actions out, and the tests
//! below drive every setting with a clock of their own.
//!
//! This module takes the inputs and triggers checkpoints; when one is due
//! is `schedule`'s, what a completed one leaves behind `completion`'s,
//! and what becomes of one that does not complete `abort`'s.

mod abort;
mod completion;
mod record;
mod schedule;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::super::history::{CheckpointRecord, Status};
use super::super::metadata::{Metadata, NodeShape};
use super::super::{Ack, AfterSavepoint, SourceCommand};
use crate::plan::CheckpointSettings;
pub use schedule::Schedule;

/// One instance that takes part in every checkpoint.
#[derive(Debug, Clone)]
pub struct Participant {
    pub name: String,
    pub is_source: bool,
}

/// What a run's checkpoints record and how they are taken.
#[derive(Debug, Clone)]
pub struct Config {
    pub job: String,
    /// The run taking the checkpoints: retention deletes only its own.
    pub run: String,
    /// Where the run started from, recorded in each checkpoint.
    pub restored_from: Option<String>,
    /// The number of the checkpoint or savepoint restored.
    pub restored_id: Option<u64>,
    /// The history of the checkpoint restored (empty for a fresh start),
    /// which this run's checkpoints extend.
    pub restored_history: Vec<(u64, u64)>,
    /// The shape of each stateful node's state, recorded in each checkpoint.
    pub shapes: BTreeMap<String, NodeShape>,
    pub spec_hash: String,
    pub settings: CheckpointSettings,
    pub max_parallelism: u32,
    pub participants: Vec<Participant>,
}

/// The moment an input happens: the monotonic clock for durations and
/// deadlines, the wall clock for what `_metadata` records.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub at: Instant,
    /// Milliseconds since the Unix epoch.
    pub wall_ms: u64,
}

/// What the shell must do, in order.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Send `command` to every source. A savepoint's target is found
    /// first; if there is none, [`Machine::withdraw`] takes it back.
    Trigger {
        command: SourceCommand,
        savepoint: bool,
    },
    /// Every instance acknowledged: write this `_metadata`, then report
    /// with [`Machine::metadata_written`] or [`Machine::metadata_failed`].
    WriteMetadata(Box<Metadata>),
    /// Checkpoint `id` is complete: tell the uploaders and the sinks.
    Completed(u64),
    /// Write the savepoint taken as checkpoint `id` (just completed) and
    /// answer whoever asked for it.
    WriteSavepoint(u64),
    /// Tell every source to end its stream: the final checkpoint is complete.
    Finish,
    /// List the shared folder and apply [`Machine::retention`].
    Retain,
    /// Remove every file checkpoint `id` wrote: it was aborted.
    RemoveFiles(u64),
    /// The savepoint being taken as checkpoint `id` failed.
    SavepointFailed { id: u64, why: String },
    /// Checkpointing fails the job.
    Fail(TooManyFailures),
}

/// More checkpoints failed in a row than `tolerable_failures` allows: the
/// job fails. Each failure was the store's, a timeout or an instance's.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("checkpoint {id} failed: {why}; that is {in_a_row} failed checkpoint{} in a row, more than tolerable_failures ({tolerable})", if *.in_a_row == 1 { "" } else { "s" })]
pub struct TooManyFailures {
    pub id: u64,
    /// The last failure's cause.
    pub why: String,
    pub in_a_row: u32,
    pub tolerable: u32,
}

impl crate::error::Classify for TooManyFailures {
    fn class(&self) -> crate::error::Class {
        crate::error::Class::External
    }
}

/// Why a savepoint cannot be taken now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SavepointRefused {
    #[error("the job is finishing: its input has ended")]
    Finishing,
    #[error("part of the job has already finished")]
    PartFinished,
    #[error("a savepoint is already under way")]
    UnderWay,
}

/// Figures for the run summary.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Stats {
    pub completed: u64,
    pub failed: u64,
    pub last: Option<u64>,
    pub durations: Vec<Duration>,
    pub max_sync: Duration,
    pub max_alignment: Duration,
    pub bytes_written: u64,
    /// The job was stopped with a savepoint (`dataflow stop`).
    pub stopped: bool,
    /// The history of the last completed checkpoint (see `Metadata::history`).
    pub last_history: Vec<(u64, u64)>,
    /// The last completed checkpoint's `_metadata`: what its sinks had
    /// pre-committed, for the runtime to settle them as a restore would.
    pub last_metadata: Option<Box<crate::checkpoint::metadata::Metadata>>,
}

struct InFlight {
    started: Instant,
    triggered_at_ms: u64,
    acks: BTreeMap<String, Ack>,
    /// When each acknowledgement came, after the trigger.
    acked_after: BTreeMap<String, Duration>,
    /// The newest completed checkpoint when this one was triggered: the
    /// oldest base its increments may build on, which retention must keep
    /// (with every checkpoint completed since).
    base: Option<u64>,
    /// Its `_metadata`, once every instance acknowledged (being written).
    metadata: Option<Metadata>,
}

/// The coordinator's state. See the module's documentation.
pub struct Machine {
    config: Config,
    schedule: Schedule,
    /// Sources that reached the end of their input.
    inputs_ended: BTreeSet<String>,
    /// Instances that ended: they acknowledge nothing more.
    finished: BTreeSet<String>,
    /// Once every source's input has ended, or a stop was asked for: the
    /// checkpoint whose completion ends the job.
    final_checkpoint: Option<u64>,
    next_id: u64,
    /// The first number this run gives: with `restored_history`, the
    /// history of each checkpoint it completes.
    first_id: u64,
    in_flight: BTreeMap<u64, InFlight>,
    aborted: BTreeSet<u64>,
    /// Every completed checkpoint in the store, this run's and others'.
    completed: Vec<Metadata>,
    /// Checkpoints of earlier runs this run continues, which retention
    /// treats as its own ([`retention::lineage`](crate::checkpoint::retention::lineage)).
    claimed: BTreeSet<u64>,
    consecutive_failures: u32,
    stats: Stats,
    /// A savepoint asked for and not triggered yet, and what follows it.
    savepoint_asked: Option<AfterSavepoint>,
    /// Savepoints in flight, by checkpoint id: whether each stops the job.
    savepoints: BTreeMap<u64, bool>,
    /// An uploader has not been told of the newest completion yet: nothing
    /// is triggered until it has, or it would build the next snapshot on an
    /// older checkpoint than the one retention keeps for it.
    uploaders_behind: bool,
    /// Checkpoints that ended since the shell last took them.
    ended: Vec<CheckpointRecord>,
}

impl Machine {
    /// `existing`: the completed checkpoints in the store; `highest_folder`:
    /// the highest checkpoint number with a folder, complete or not;
    /// `claimed`: those of `existing` this run continues. Numbering goes on
    /// after all of them, and after the checkpoint restored.
    pub fn new(
        config: Config,
        existing: Vec<Metadata>,
        highest_folder: Option<u64>,
        claimed: BTreeSet<u64>,
        start: Instant,
    ) -> Machine {
        // Numbers also grow along a chain of restores, from a savepoint
        // copied from elsewhere too: a file sink names its output by them.
        let next_id = existing
            .iter()
            .map(|m| m.checkpoint_id)
            .chain(highest_folder)
            .chain(config.restored_id)
            .max()
            .unwrap_or(0)
            + 1;
        Machine {
            schedule: Schedule::new(&config.settings, start),
            config,
            inputs_ended: BTreeSet::new(),
            finished: BTreeSet::new(),
            final_checkpoint: None,
            next_id,
            first_id: next_id,
            in_flight: BTreeMap::new(),
            aborted: BTreeSet::new(),
            completed: existing,
            claimed,
            consecutive_failures: 0,
            stats: Stats::default(),
            savepoint_asked: None,
            savepoints: BTreeMap::new(),
            uploaders_behind: false,
            ended: Vec::new(),
        }
    }

    /// Time passes: expires checkpoints past their timeout, then triggers
    /// what is due (a savepoint asked for, the final checkpoint once every
    /// input has ended, or the next one on schedule).
    pub fn tick(&mut self, now: Now) -> Vec<Action> {
        let mut actions = Vec::new();
        self.expire(now, &mut actions);
        if matches!(actions.last(), Some(Action::Fail(_))) {
            return actions;
        }
        let ready = self.finished.is_empty() && !self.uploaders_behind;
        if !ready {
            return actions;
        }
        if self.final_checkpoint.is_none() {
            if let Some(then) = self.savepoint_asked.take() {
                // A savepoint goes at once, whatever the schedule.
                let id = self.trigger(now);
                let stop = then != AfterSavepoint::Run;
                if stop {
                    self.final_checkpoint = Some(id);
                }
                self.savepoints.insert(id, stop);
                let command = match then {
                    AfterSavepoint::Run => SourceCommand::Checkpoint(id),
                    AfterSavepoint::Stop => SourceCommand::Stop { id, drain: false },
                    AfterSavepoint::Drain => SourceCommand::Stop { id, drain: true },
                };
                actions.push(Action::Trigger {
                    command,
                    savepoint: true,
                });
                return actions;
            }
        }
        let all_ended = self.all_inputs_ended();
        // The last checkpoint goes as soon as every input has ended, so
        // the tail of a bounded job is committed without waiting.
        let finishing = all_ended
            && self.in_flight.is_empty()
            && self.final_checkpoint.is_none()
            && self.schedule.rested(now.at);
        if finishing || self.schedule.due(now.at, self.in_flight.len()) {
            let id = self.trigger(now);
            if all_ended && self.final_checkpoint.is_none() {
                self.final_checkpoint = Some(id);
            }
            actions.push(Action::Trigger {
                command: SourceCommand::Checkpoint(id),
                savepoint: false,
            });
        }
        actions
    }

    fn trigger(&mut self, now: Now) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.schedule.triggered(now.at);
        self.in_flight.insert(
            id,
            InFlight {
                started: now.at,
                triggered_at_ms: now.wall_ms,
                acks: BTreeMap::new(),
                acked_after: BTreeMap::new(),
                base: self.completed.iter().map(|m| m.checkpoint_id).max(),
                metadata: None,
            },
        );
        id
    }

    fn all_inputs_ended(&self) -> bool {
        let sources = self
            .config
            .participants
            .iter()
            .filter(|p| p.is_source)
            .count();
        self.inputs_ended.len() == sources
    }

    /// A savepoint asked for: refused with the reason when the job is
    /// ending or one is under way, else triggered on the next tick.
    pub fn ask_savepoint(&mut self, then: AfterSavepoint) -> Result<(), SavepointRefused> {
        // A source whose input has ended still answers triggers; once all
        // have, the job is taking its final checkpoint.
        if self.final_checkpoint.is_some() || self.all_inputs_ended() {
            Err(SavepointRefused::Finishing)
        } else if !self.finished.is_empty() {
            Err(SavepointRefused::PartFinished)
        } else if self.savepoint_asked.is_some() || !self.savepoints.is_empty() {
            Err(SavepointRefused::UnderWay)
        } else {
            self.savepoint_asked = Some(then);
            Ok(())
        }
    }

    /// The savepoint triggered as `id` has nowhere to go: it is taken back
    /// before any source hears of it (not a failed checkpoint).
    pub fn withdraw(&mut self, id: u64, now: Now) {
        if self.in_flight.remove(&id).is_some() {
            self.schedule.ended(now.at);
            self.aborted.insert(id);
        }
        self.savepoints.remove(&id);
        if self.final_checkpoint == Some(id) {
            self.final_checkpoint = None;
        }
    }

    pub fn ack(&mut self, ack: Ack, now: Now) -> Vec<Action> {
        let id = ack.id;
        if self.aborted.contains(&id) {
            // A late acknowledgement of an aborted checkpoint: files it
            // wrote for it must go too. Most instances wrote none, and
            // each removal is a few calls to the store.
            let wrote = ack.files.iter().any(|f| f.checkpoint == id);
            return if wrote {
                vec![Action::RemoveFiles(id)]
            } else {
                Vec::new()
            };
        }
        let Some(flight) = self.in_flight.get_mut(&id) else {
            return Vec::new();
        };
        flight.acked_after.insert(
            ack.instance.clone(),
            now.at.saturating_duration_since(flight.started),
        );
        flight.acks.insert(ack.instance.clone(), ack);
        if flight.acks.len() < self.config.participants.len() || flight.metadata.is_some() {
            return Vec::new();
        }
        let metadata = self.metadata(id, now);
        if let Some(flight) = self.in_flight.get_mut(&id) {
            flight.metadata = Some(metadata.clone());
        }
        vec![Action::WriteMetadata(Box::new(metadata))]
    }

    /// Every uploader now knows of the newest completed checkpoint.
    pub fn uploaders_caught_up(&mut self) {
        self.uploaders_behind = false;
    }

    /// A source reached the end of its input (it still answers triggers).
    pub fn input_ended(&mut self, instance: String) {
        self.inputs_ended.insert(instance);
    }

    /// The job is ending: nothing in flight will complete. Returns the
    /// checkpoints abandoned, whose files must go (late ones too: see
    /// [`Machine::is_aborted`]).
    pub fn end(&mut self) -> Vec<u64> {
        let in_flight = std::mem::take(&mut self.in_flight);
        let now = Instant::now();
        for (id, flight) in &in_flight {
            tracing::info!("checkpoint {id} abandoned: the job is ending");
            self.aborted.insert(*id);
            let record = self.record(*id, flight, Status::Abandoned, now);
            self.ended.push(CheckpointRecord {
                cause: Some("the job is ending".into()),
                ..record
            });
        }
        in_flight.into_keys().collect()
    }

    pub fn is_aborted(&self, id: u64) -> bool {
        self.aborted.contains(&id)
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn job(&self) -> &str {
        &self.config.job
    }

    /// How long a checkpoint may take, and so any store call serving one.
    pub fn timeout(&self) -> std::time::Duration {
        self.config.settings.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::checkpoint::layout;
    use crate::plan::checkpoint_settings as settings;

    /// A clock the test moves by hand.
    struct Clock(Instant);

    impl Clock {
        fn at(&self, ms: u64) -> Now {
            Now {
                at: self.0 + Duration::from_millis(ms),
                wall_ms: 1_000_000 + ms,
            }
        }
    }

    fn participants() -> Vec<Participant> {
        ["read#0", "counts#0"]
            .map(|name| Participant {
                name: name.into(),
                is_source: name.starts_with("read"),
            })
            .to_vec()
    }

    fn machine(yaml: &str) -> (Machine, Clock) {
        let clock = Clock(Instant::now());
        let config = Config {
            job: "wc".into(),
            run: "run-b".into(),
            restored_from: None,
            restored_id: None,
            restored_history: Vec::new(),
            shapes: BTreeMap::new(),
            spec_hash: "h".into(),
            settings: settings(yaml),
            max_parallelism: 128,
            participants: participants(),
        };
        let m = Machine::new(config, Vec::new(), None, BTreeSet::new(), clock.0);
        (m, clock)
    }

    fn ack(id: u64, instance: &str, files: &[&str]) -> Ack {
        Ack {
            id,
            instance: instance.into(),
            node: instance.split('#').next().unwrap().into(),
            index: 0,
            parallelism: 1,
            files: files
                .iter()
                .map(|p| crate::checkpoint::metadata::FileRef {
                    path: (*p).into(),
                    size: 10,
                    checksum: String::new(),
                    kind: layout::SnapshotKind::Delta,
                    checkpoint: id,
                })
                .collect(),
            source_position: None,
            sink_pending: None,
            event_time: None,
            sync: Duration::from_millis(2),
            alignment: Duration::from_millis(3),
            upload: Duration::from_millis(4),
        }
    }

    fn triggered(actions: &[Action]) -> Vec<u64> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Trigger { command, .. } => match command {
                    SourceCommand::Checkpoint(id) | SourceCommand::Stop { id, .. } => Some(*id),
                    SourceCommand::Finish => None,
                },
                _ => None,
            })
            .collect()
    }

    /// Acknowledges `id` from every instance and writes its metadata.
    fn complete(m: &mut Machine, id: u64, now: Now) -> Vec<Action> {
        assert!(m.ack(ack(id, "read#0", &[]), now).is_empty());
        let write = m.ack(
            ack(id, "counts#0", &[&format!("wc/shared/counts-0-{id}.delta")]),
            now,
        );
        let [Action::WriteMetadata(meta)] = &write[..] else {
            panic!("expected the metadata to write, got {write:?}")
        };
        assert_eq!(meta.checkpoint_id, id);
        let done = m.metadata_written(id, now);
        m.uploaders_caught_up();
        done
    }

    #[test]
    fn triggers_on_interval_and_completes_when_every_instance_acknowledged() {
        let (mut m, c) = machine("{interval: 100ms}");
        assert!(m.tick(c.at(99)).is_empty());
        assert_eq!(triggered(&m.tick(c.at(100))), [1]);
        let done = complete(&mut m, 1, c.at(130));
        assert_eq!(done, [Action::Completed(1), Action::Retain]);
        let s = m.stats();
        assert_eq!(
            (s.completed, s.last, s.durations[0]),
            (1, Some(1), Duration::from_millis(30))
        );
        assert_eq!(s.max_alignment, Duration::from_millis(3));
        // The interval counts from the last trigger.
        assert!(m.tick(c.at(199)).is_empty());
        assert_eq!(triggered(&m.tick(c.at(200))), [2]);
    }

    #[test]
    fn min_pause_holds_back_the_next_trigger_after_a_long_checkpoint() {
        let (mut m, c) = machine("{interval: 100ms, min_pause: 500ms}");
        assert_eq!(triggered(&m.tick(c.at(100))), [1]);
        complete(&mut m, 1, c.at(300));
        assert!(m.tick(c.at(799)).is_empty());
        assert_eq!(triggered(&m.tick(c.at(800))), [2]);
    }

    #[test]
    fn max_concurrent_bounds_checkpoints_in_flight() {
        let (mut m, c) = machine("{interval: 10ms}");
        assert_eq!(triggered(&m.tick(c.at(10))), [1]);
        assert!(m.tick(c.at(50)).is_empty(), "one at a time by default");
        let (mut m, c) = machine("{interval: 10ms, max_concurrent: 2}");
        assert_eq!(triggered(&m.tick(c.at(10))), [1]);
        assert_eq!(triggered(&m.tick(c.at(20))), [2]);
        assert!(m.tick(c.at(30)).is_empty());
        complete(&mut m, 1, c.at(35));
        assert_eq!(triggered(&m.tick(c.at(40))), [3]);
    }

    #[test]
    fn nothing_is_triggered_until_uploaders_heard_of_the_last_completion() {
        let (mut m, c) = machine("{interval: 10ms}");
        m.tick(c.at(10));
        m.ack(ack(1, "read#0", &[]), c.at(11));
        m.ack(ack(1, "counts#0", &[]), c.at(11));
        m.metadata_written(1, c.at(12));
        assert!(m.tick(c.at(100)).is_empty());
        m.uploaders_caught_up();
        assert_eq!(triggered(&m.tick(c.at(101))), [2]);
    }

    #[test]
    fn a_timeout_aborts_and_removes_files_and_tolerable_failures_decides_the_job() {
        let (mut m, c) = machine("{interval: 10ms, timeout: 100ms, tolerable_failures: 1}");
        m.tick(c.at(10));
        m.ack(ack(1, "read#0", &[]), c.at(20));
        assert!(m.tick(c.at(110)).is_empty(), "not yet past the timeout");
        let first = m.tick(c.at(111));
        assert_eq!(first[0], Action::RemoveFiles(1));
        assert!(!first.iter().any(|a| matches!(a, Action::Fail(_))));
        assert_eq!(triggered(&first), [2], "the next one goes at once");
        assert_eq!(m.stats().failed, 1);
        // A late acknowledgement of the aborted checkpoint removes the
        // files it wrote for it; one that wrote none asks for nothing.
        assert_eq!(
            m.ack(ack(1, "counts#0", &["wc/chk-1/counts-0.full"]), c.at(120)),
            [Action::RemoveFiles(1)]
        );
        let mut chained = ack(1, "counts#1", &["wc/shared/counts-1-0.full"]);
        chained.files[0].checkpoint = 0;
        assert_eq!(
            m.ack(chained, c.at(120)),
            [],
            "a file of an earlier checkpoint, in its chain, is not this one's"
        );
        assert_eq!(m.ack(ack(1, "read#1", &[]), c.at(120)), []);
        // The second failure in a row is one more than tolerated.
        let second = m.tick(c.at(212));
        let Some(Action::Fail(failure)) = second.last() else {
            panic!("expected the job to fail, got {second:?}")
        };
        let why = failure.to_string();
        assert!(why.contains("waiting for read#0, counts#0"), "{why}");
        assert!(why.contains("2 failed checkpoints in a row"), "{why}");
    }

    #[test]
    fn a_completion_resets_the_count_of_failures_in_a_row() {
        let (mut m, c) = machine("{interval: 10ms, tolerable_failures: 1}");
        m.tick(c.at(10));
        let declined = m.declined(1, "counts#0", "disk full", c.at(11));
        assert_eq!(declined, [Action::RemoveFiles(1)]);
        m.tick(c.at(30));
        complete(&mut m, 2, c.at(31));
        m.tick(c.at(50));
        let declined = m.declined(3, "counts#0", "disk full", c.at(51));
        assert_eq!(
            declined,
            [Action::RemoveFiles(3)],
            "one in a row, tolerated"
        );
        m.tick(c.at(70));
        let last = m.declined(4, "counts#0", "disk full", c.at(71));
        assert!(matches!(last.last(), Some(Action::Fail(_))), "{last:?}");
    }

    #[test]
    fn a_metadata_write_that_fails_is_a_failed_checkpoint() {
        let (mut m, c) = machine("{interval: 10ms}");
        m.tick(c.at(10));
        m.ack(ack(1, "read#0", &[]), c.at(11));
        m.ack(ack(1, "counts#0", &[]), c.at(11));
        let actions = m.metadata_failed(1, "store unreachable", c.at(12));
        assert_eq!(actions[0], Action::RemoveFiles(1));
        assert!(
            matches!(&actions[1], Action::Fail(f) if f.why.contains("cannot write its metadata: store unreachable"))
        );
    }

    #[test]
    fn the_final_checkpoint_goes_at_once_when_every_input_ended_and_finishes_the_job() {
        let (mut m, c) = machine("{interval: 10s, min_pause: 50ms}");
        m.input_ended("read#0".into());
        assert_eq!(
            triggered(&m.tick(c.at(5))),
            [1],
            "without waiting for the interval"
        );
        assert_eq!(
            complete(&mut m, 1, c.at(6)),
            [Action::Completed(1), Action::Finish, Action::Retain]
        );
        assert_eq!(
            m.ask_savepoint(AfterSavepoint::Run),
            Err(SavepointRefused::Finishing)
        );
    }

    #[test]
    fn an_instance_that_finished_abandons_what_it_did_not_acknowledge() {
        let (mut m, c) = machine("{interval: 10ms}");
        m.tick(c.at(10));
        m.ack(ack(1, "counts#0", &[]), c.at(11));
        let actions = m.finished("read#0".into(), c.at(12));
        assert_eq!(actions, [Action::RemoveFiles(1)]);
        assert_eq!(m.stats().failed, 0, "not a failure");
        assert!(
            m.tick(c.at(100)).is_empty(),
            "nothing more once part of the job ended"
        );
        assert_eq!(
            m.ask_savepoint(AfterSavepoint::Run),
            Err(SavepointRefused::PartFinished)
        );
    }

    #[test]
    fn a_savepoint_goes_at_once_and_one_at_a_time() {
        let (mut m, c) = machine("{interval: 10s}");
        assert_eq!(m.ask_savepoint(AfterSavepoint::Run), Ok(()));
        assert_eq!(
            m.ask_savepoint(AfterSavepoint::Stop),
            Err(SavepointRefused::UnderWay)
        );
        let actions = m.tick(c.at(1));
        assert_eq!(
            actions,
            [Action::Trigger {
                command: SourceCommand::Checkpoint(1),
                savepoint: true
            }]
        );
        assert_eq!(
            complete(&mut m, 1, c.at(2)),
            [
                Action::Completed(1),
                Action::WriteSavepoint(1),
                Action::Retain
            ]
        );
        assert!(!m.stats().stopped);
        assert_eq!(m.ask_savepoint(AfterSavepoint::Run), Ok(()));
    }

    #[test]
    fn stop_with_savepoint_ends_the_job_once_it_completes() {
        let (mut m, c) = machine("{interval: 10s}");
        m.ask_savepoint(AfterSavepoint::Stop).unwrap();
        assert_eq!(triggered(&m.tick(c.at(1))), [1]);
        assert_eq!(
            complete(&mut m, 1, c.at(2)),
            [
                Action::Completed(1),
                Action::Finish,
                Action::WriteSavepoint(1),
                Action::Retain
            ]
        );
        assert!(m.stats().stopped);
    }

    #[test]
    fn the_sources_hear_whether_a_stop_drains() {
        for (then, command) in [
            (AfterSavepoint::Run, SourceCommand::Checkpoint(1)),
            (
                AfterSavepoint::Stop,
                SourceCommand::Stop {
                    id: 1,
                    drain: false,
                },
            ),
            (
                AfterSavepoint::Drain,
                SourceCommand::Stop { id: 1, drain: true },
            ),
        ] {
            let (mut m, c) = machine("{interval: 10s}");
            m.ask_savepoint(then).unwrap();
            let sent: Vec<SourceCommand> = m
                .tick(c.at(1))
                .into_iter()
                .filter_map(|a| match a {
                    Action::Trigger { command, .. } => Some(command),
                    _ => None,
                })
                .collect();
            assert_eq!(sent, [command], "{then:?}");
        }
    }

    #[test]
    fn a_failed_savepoint_is_answered_and_a_withdrawn_one_is_no_failure() {
        let (mut m, c) = machine("{interval: 10s, tolerable_failures: 3}");
        m.ask_savepoint(AfterSavepoint::Stop).unwrap();
        m.tick(c.at(1));
        let actions = m.declined(1, "counts#0", "disk full", c.at(2));
        assert!(
            matches!(&actions[0], Action::SavepointFailed { id: 1, why } if why.contains("disk full"))
        );
        // The stop failed with it: the job goes on, and checkpoints with it.
        assert_eq!(triggered(&m.tick(c.at(10_002))), [2]);
        complete(&mut m, 2, c.at(10_003));
        m.ask_savepoint(AfterSavepoint::Run).unwrap();
        assert_eq!(triggered(&m.tick(c.at(10_004))), [3]);
        m.withdraw(3, c.at(10_004));
        assert_eq!(m.stats().failed, 1);
        assert_eq!(
            m.ask_savepoint(AfterSavepoint::Run),
            Ok(()),
            "the withdrawn one is no longer under way"
        );
    }

    #[test]
    fn numbering_continues_after_the_store_and_the_checkpoint_restored() {
        let clock = Clock(Instant::now());
        let (m, _) = machine("{interval: 10ms}");
        let mut config = m.config.clone();
        config.restored_id = Some(40);
        config.restored_history = vec![(1, 40)];
        let mut m = Machine::new(config, Vec::new(), Some(7), BTreeSet::new(), clock.0);
        assert_eq!(triggered(&m.tick(clock.at(10))), [41]);
        m.ack(ack(41, "read#0", &[]), clock.at(11));
        let write = m.ack(ack(41, "counts#0", &[]), clock.at(11));
        let [Action::WriteMetadata(meta)] = &write[..] else {
            panic!("{write:?}")
        };
        assert_eq!(meta.history, [(1, 41)]);
        assert_eq!(
            (meta.triggered_at_ms, meta.completed_at_ms),
            (1_000_010, 1_000_011)
        );
    }

    #[test]
    fn retention_keeps_the_newest_own_checkpoints_and_what_a_snapshot_in_flight_builds_on() {
        let (mut m, c) = machine("{interval: 10ms, retain: 1, max_concurrent: 2}");
        let shared = |ids: &[u64]| -> Vec<String> {
            ids.iter()
                .map(|i| format!("wc/shared/counts-0-{i}.delta"))
                .collect()
        };
        m.tick(c.at(10));
        complete(&mut m, 1, c.at(11));
        let d = m.retention(&shared(&[1]));
        assert!(d.checkpoints.is_empty() && d.shared_files.is_empty());
        // Checkpoint 2 in flight builds on 1; 3 completes meanwhile.
        m.tick(c.at(20));
        m.tick(c.at(30));
        complete(&mut m, 3, c.at(31));
        let d = m.retention(&shared(&[1, 2, 3]));
        assert!(
            d.checkpoints.is_empty(),
            "1 is the base of 2, in flight: {d:?}"
        );
        assert!(
            d.shared_files.is_empty(),
            "2's file is being written: {d:?}"
        );
        complete(&mut m, 2, c.at(40));
        let d = m.retention(&shared(&[1, 2, 3]));
        assert_eq!(d.checkpoints, [1, 2]);
        assert_eq!(d.shared_files, shared(&[1, 2]));
        // Asked again until deleted, then forgotten.
        m.deleted(1);
        assert_eq!(m.retention(&shared(&[2, 3])).checkpoints, [2]);
        m.deleted(2);
        assert!(m.retention(&shared(&[3])).checkpoints.is_empty());
    }

    #[test]
    fn retention_leaves_other_runs_checkpoints_unless_this_run_continues_them() {
        let clock = Clock(Instant::now());
        let (m, _) = machine("{interval: 10ms}");
        let earlier = |id: u64, run: &str| {
            let (mut other, c) = machine("{interval: 10ms}");
            other.config.run = run.into();
            other.next_id = id;
            other.tick(c.at(10));
            other.ack(ack(id, "read#0", &[]), c.at(11));
            let write = other.ack(ack(id, "counts#0", &[]), c.at(11));
            match write.into_iter().next() {
                Some(Action::WriteMetadata(meta)) => *meta,
                other => panic!("{other:?}"),
            }
        };
        let existing = vec![
            earlier(1, "run-a"),
            earlier(2, "run-a"),
            earlier(3, "run-z"),
        ];
        let mut m = Machine::new(
            m.config.clone(),
            existing,
            None,
            BTreeSet::from([1, 2]),
            clock.0,
        );
        assert_eq!(triggered(&m.tick(clock.at(10))), [4]);
        complete(&mut m, 4, clock.at(11));
        let d = m.retention(&[]);
        assert_eq!(
            d.checkpoints,
            [1, 2],
            "claimed ones go; run-z's chk-3 stays"
        );
    }

    #[test]
    fn at_the_end_what_is_in_flight_is_abandoned_and_late_acks_remove_files() {
        let (mut m, c) = machine("{interval: 10ms}");
        m.tick(c.at(10));
        assert_eq!(m.end(), [1]);
        assert!(m.is_aborted(1));
        assert_eq!(
            m.ack(ack(1, "counts#0", &["wc/chk-1/counts-0.full"]), c.at(11)),
            [Action::RemoveFiles(1)]
        );
        assert_eq!(m.ack(ack(1, "read#0", &[]), c.at(11)), []);
        assert_eq!(m.job(), "wc");
    }
}
