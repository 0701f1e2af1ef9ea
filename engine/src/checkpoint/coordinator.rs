//! The checkpoint coordinator: Flink's JobManager role.
//!
//! It triggers checkpoints on schedule ([`Schedule`]), collects every
//! instance's acknowledgement, writes `_metadata` last, tells uploaders a
//! checkpoint completed, runs retention, and aborts checkpoints that time
//! out or that an instance could not write, removing their files. Past
//! `tolerable_failures` consecutive failures it fails the job.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};

use super::layout;
use super::metadata::{InstanceState, Metadata, FORMAT_VERSION};
use super::retention;
use super::savepoint::{self, Target};
use super::store::CheckpointStore;
use super::uploader::UploadTask;
use super::{Ack, Report, SavepointRequest, SourceCommand};
use crate::spec::CheckpointSpec;

/// When the next checkpoint may start: every `interval`, no sooner than
/// `min_pause` after the previous one ended, at most `max_concurrent` at once.
#[derive(Debug, Clone)]
pub struct Schedule {
    interval: Duration,
    min_pause: Duration,
    max_concurrent: usize,
    last_trigger: Instant,
    last_end: Option<Instant>,
}

impl Schedule {
    pub fn new(settings: &CheckpointSpec, start: Instant) -> Schedule {
        Schedule {
            interval: settings.interval.0,
            min_pause: settings.min_pause.0,
            max_concurrent: settings.max_concurrent.max(1) as usize,
            last_trigger: start,
            last_end: None,
        }
    }

    pub fn due(&self, now: Instant, in_flight: usize) -> bool {
        in_flight < self.max_concurrent
            && now >= self.last_trigger + self.interval
            && self.rested(now)
    }

    /// Whether `min_pause` has passed since the last checkpoint ended.
    pub fn rested(&self, now: Instant) -> bool {
        self.last_end.is_none_or(|end| now >= end + self.min_pause)
    }

    pub fn triggered(&mut self, now: Instant) {
        self.last_trigger = now;
    }

    /// A checkpoint completed or was aborted at `now`.
    pub fn ended(&mut self, now: Instant) {
        self.last_end = Some(now);
    }
}

/// One instance that takes part in every checkpoint.
#[derive(Debug, Clone)]
pub struct Participant {
    pub name: String,
    pub is_source: bool,
}

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
    pub shapes: BTreeMap<String, super::metadata::NodeShape>,
    pub spec_hash: String,
    pub settings: CheckpointSpec,
    pub max_parallelism: u32,
    pub participants: Vec<Participant>,
    /// The newest checkpoint this run completed (0: none yet), for the
    /// status line to read without a message.
    pub last_completed: Arc<AtomicU64>,
}

/// What the supervisor tells the coordinator.
pub enum Control {
    /// An instance ended: it will acknowledge nothing more.
    Finished(String),
    /// Take a savepoint (and stop, if asked) as soon as possible.
    Savepoint(SavepointRequest),
}

/// Figures for the run summary.
#[derive(Debug, Default, Clone)]
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
}

struct InFlight {
    started: Instant,
    triggered_at_ms: u64,
    acks: BTreeMap<String, Ack>,
    /// The newest completed checkpoint when this one was triggered: the
    /// oldest base its increments may build on, which retention must keep
    /// (with every checkpoint completed since).
    base: Option<u64>,
}

pub struct Coordinator {
    config: Config,
    store: Arc<dyn CheckpointStore>,
    triggers: Vec<Sender<SourceCommand>>,
    uploaders: Vec<Sender<UploadTask>>,
    /// Per uploader, the newest completed checkpoint it has not been told
    /// of yet because its queue was full; retried on every tick.
    untold: Vec<Option<u64>>,
    /// Sinks, told of each completed checkpoint so they can commit.
    commits: Vec<Sender<u64>>,
    schedule: Schedule,
    /// Sources that reached the end of their input.
    inputs_ended: BTreeSet<String>,
    /// Once every source's input has ended: the first checkpoint triggered
    /// since, whose completion lets the job finish.
    final_checkpoint: Option<u64>,
    next_id: u64,
    in_flight: BTreeMap<u64, InFlight>,
    aborted: BTreeSet<u64>,
    completed: Vec<Metadata>,
    finished: BTreeSet<String>,
    /// Aborted checkpoints whose files could not all be removed yet (the
    /// store was unreachable); retried after each completed checkpoint.
    unremoved: BTreeSet<u64>,
    consecutive_failures: u32,
    stats: Stats,
    /// A savepoint asked for and not triggered yet.
    savepoint_asked: Option<SavepointRequest>,
    /// The first number this coordinator gives: with `restored_history`,
    /// the history of each checkpoint it completes.
    first_id: u64,
    /// Checkpoints of earlier runs this run continues, which retention
    /// treats as its own ([`retention::lineage`]).
    claimed: BTreeSet<u64>,
    /// Savepoints in flight, by checkpoint id.
    savepoints: BTreeMap<u64, (SavepointRequest, Target)>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Coordinator {
    /// Prepares a coordinator; numbering continues after the checkpoints
    /// already in the store, which retention then treats as older ones.
    pub fn new(
        config: Config,
        store: Arc<dyn CheckpointStore>,
        triggers: Vec<Sender<SourceCommand>>,
        uploaders: Vec<Sender<UploadTask>>,
        commits: Vec<Sender<u64>>,
    ) -> Result<Coordinator, String> {
        let existing = existing_checkpoints(&*store, &config.job)?;
        // Folders without `_metadata` are checkpoints a crashed run never
        // finished: nothing can use them.
        for name in store
            .list(&layout::job_dir(&config.job))
            .map_err(|e| e.to_string())?
        {
            if let Some(id) = layout::parse_checkpoint_name(&name) {
                if !existing.iter().any(|m| m.checkpoint_id == id)
                    && store.read(&layout::metadata(&config.job, id)).is_err()
                {
                    let _ = store.delete_dir(&layout::checkpoint_dir(&config.job, id));
                }
            }
        }
        // Numbers also grow along a chain of restores, from a savepoint
        // copied from elsewhere too: a file sink names its output by them.
        let next_id = existing
            .iter()
            .map(|m| m.checkpoint_id)
            .chain(highest_folder(&*store, &config.job)?)
            .chain(config.restored_id)
            .max()
            .unwrap_or(0)
            + 1;
        let job_dir = format!("{}/{}", store.describe().trim_end_matches('/'), config.job);
        let claimed = config
            .restored_from
            .as_deref()
            .map(|from| retention::lineage(&existing, from, &job_dir))
            .unwrap_or_default();
        Ok(Coordinator {
            first_id: next_id,
            claimed,
            schedule: Schedule::new(&config.settings, Instant::now()),
            config,
            store,
            triggers,
            untold: vec![None; uploaders.len()],
            uploaders,
            commits,
            inputs_ended: BTreeSet::new(),
            final_checkpoint: None,
            next_id,
            in_flight: BTreeMap::new(),
            aborted: BTreeSet::new(),
            completed: existing,
            finished: BTreeSet::new(),
            unremoved: BTreeSet::new(),
            consecutive_failures: 0,
            stats: Stats::default(),
            savepoint_asked: None,
            savepoints: BTreeMap::new(),
        })
    }

    /// Runs until `control` is dropped. Returns the figures, or the reason
    /// the job must fail.
    /// Runs until the job ends (`control` or `reports` disconnected), or
    /// until checkpointing fails the job: the error says why. Call
    /// [`Coordinator::drain`] afterwards.
    pub fn coordinate(
        &mut self,
        reports: &Receiver<Report>,
        control: &Receiver<Control>,
    ) -> Result<(), String> {
        let tick = Duration::from_millis(5);
        loop {
            crossbeam_channel::select! {
                recv(reports) -> report => match report {
                    Ok(report) => self.on_report(report)?,
                    // Every instance and uploader is gone: nothing more can complete.
                    Err(_) => return Ok(()),
                },
                recv(control) -> msg => match msg {
                    Ok(Control::Finished(name)) => self.on_finished(name),
                    Ok(Control::Savepoint(request)) => self.on_savepoint(request),
                    Err(_) => return Ok(()),
                },
                default(tick) => {}
            }
            self.tell_uploaders();
            self.expire()?;
            let all_ended = self.all_inputs_ended();
            // The last checkpoint goes as soon as every input has ended, so
            // the tail of a bounded job is committed without waiting.
            let finishing = all_ended
                && self.in_flight.is_empty()
                && self.final_checkpoint.is_none()
                && self.schedule.rested(Instant::now());
            // Nothing is triggered while an uploader has not been told of
            // a completion: it would build the next snapshot on an older
            // checkpoint than the one retention keeps for it.
            let ready = self.finished.is_empty() && self.untold.iter().all(Option::is_none);
            if ready && self.final_checkpoint.is_none() {
                if let Some(request) = self.savepoint_asked.take() {
                    // A savepoint goes at once, whatever the schedule.
                    self.trigger_savepoint(request);
                    continue;
                }
            }
            if ready && (finishing || self.schedule.due(Instant::now(), self.in_flight.len())) {
                let id = self.trigger(SourceCommand::Checkpoint);
                if all_ended && self.final_checkpoint.is_none() {
                    self.final_checkpoint = Some(id);
                }
            }
        }
    }

    /// At the end of the job: no checkpoint still in flight will complete.
    /// Aborts them and waits (a bounded time) for their late uploads, so
    /// that no file of theirs is left behind.
    pub fn drain(mut self, reports: &Receiver<Report>) -> Stats {
        self.triggers.clear();
        self.commits.clear();
        // Uploaders stop once the instances and this coordinator let go of them.
        self.uploaders.clear();
        for id in std::mem::take(&mut self.in_flight).into_keys() {
            tracing::info!("checkpoint {id} abandoned: the job is ending");
            self.aborted.insert(id);
            self.remove_files(id);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Ok(report) = reports.recv_deadline(deadline) {
            let id = match report {
                Report::Ack(ack) => ack.id,
                Report::Declined { id, .. } => id,
                Report::InputEnded { .. } => continue,
            };
            if self.aborted.contains(&id) {
                self.remove_files(id);
            }
        }
        for id in self.unremoved.clone() {
            self.remove_files(id);
        }
        self.stats
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

    /// A savepoint request: refused at once when the job is ending or one
    /// is under way, else triggered on the next tick.
    fn on_savepoint(&mut self, request: SavepointRequest) {
        // A source whose input has ended still answers triggers; once all
        // have, the job is taking its final checkpoint.
        let refuse = if self.final_checkpoint.is_some() || self.all_inputs_ended() {
            Some("the job is finishing: its input has ended".to_owned())
        } else if !self.finished.is_empty() {
            Some("part of the job has already finished".to_owned())
        } else if self.savepoint_asked.is_some() || !self.savepoints.is_empty() {
            Some("a savepoint is already under way".to_owned())
        } else {
            None
        };
        if let Some(why) = refuse {
            let _ = request.reply.send(Err(why));
            return;
        }
        self.savepoint_asked = Some(request);
    }

    /// Triggers the savepoint asked for, into the folder it names or its
    /// default one, which bears its number.
    fn trigger_savepoint(&mut self, request: SavepointRequest) {
        let id = self.next_id;
        let target = match Target::resolve(request.to.as_deref(), &self.store, &self.config.job, id)
        {
            Ok(target) => target,
            Err(why) => {
                let _ = request.reply.send(Err(why));
                return;
            }
        };
        let stop = request.stop;
        let command = if stop {
            SourceCommand::Stop
        } else {
            SourceCommand::Checkpoint
        };
        let triggered = self.trigger(command);
        debug_assert_eq!(triggered, id);
        if stop {
            self.final_checkpoint = Some(id);
        }
        self.savepoints.insert(id, (request, target));
    }

    fn trigger(&mut self, command: fn(u64) -> SourceCommand) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let now = Instant::now();
        self.schedule.triggered(now);
        self.in_flight.insert(
            id,
            InFlight {
                started: now,
                triggered_at_ms: now_ms(),
                acks: BTreeMap::new(),
                base: self.completed.iter().map(|m| m.checkpoint_id).max(),
            },
        );
        for t in &self.triggers {
            // A source that has ended cannot take part; `on_finished` aborts
            // the checkpoint. One held up by backpressure past the timeout
            // of earlier checkpoints may still hold their triggers: this one
            // is then dropped (the checkpoint times out) rather than block
            // the coordinator, and the last slot is kept for `Finish`.
            if t.len() + 1 < t.capacity().unwrap_or(usize::MAX) {
                let _ = t.try_send(command(id));
            }
        }
        id
    }

    fn on_report(&mut self, report: Report) -> Result<(), String> {
        match report {
            Report::Ack(ack) => {
                let id = ack.id;
                if self.aborted.contains(&id) {
                    // A late acknowledgement of an aborted checkpoint: its files must go too.
                    self.remove_files(id);
                    return Ok(());
                }
                let Some(flight) = self.in_flight.get_mut(&id) else {
                    return Ok(());
                };
                flight.acks.insert(ack.instance.clone(), ack);
                if flight.acks.len() == self.config.participants.len() {
                    self.complete(id)?;
                }
                Ok(())
            }
            Report::InputEnded { instance } => {
                self.inputs_ended.insert(instance);
                Ok(())
            }
            Report::Declined { id, .. } if self.aborted.contains(&id) => {
                // A write that failed after the abort may have left a partial file.
                self.remove_files(id);
                Ok(())
            }
            Report::Declined {
                id,
                instance,
                cause,
            } => self.abort(
                id,
                &format!("{instance} could not write its snapshot: {cause}"),
                true,
            ),
        }
    }

    fn on_finished(&mut self, name: String) {
        self.finished.insert(name);
        let stuck: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, f)| self.finished.iter().any(|n| !f.acks.contains_key(n)))
            .map(|(id, _)| *id)
            .collect();
        for id in stuck {
            // Not a failure: part of the job has simply finished.
            let _ = self.abort(
                id,
                "part of the job finished before it was acknowledged",
                false,
            );
        }
    }

    /// Tells each uploader of the newest completed checkpoint, without
    /// waiting on a full queue (the uploader may itself be waiting on the
    /// coordinator's report queue): what cannot go now goes on a later tick.
    /// The newest is enough: an uploader builds on the last it was told of.
    fn tell_uploaders(&mut self) {
        for (u, untold) in self.uploaders.iter().zip(&mut self.untold) {
            if let Some(id) = *untold {
                match u.try_send(UploadTask::Completed(id)) {
                    Err(crossbeam_channel::TrySendError::Full(_)) => {}
                    _ => *untold = None,
                }
            }
        }
    }

    fn expire(&mut self) -> Result<(), String> {
        let timeout = self.config.settings.timeout.0;
        let expired: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.started.elapsed() > timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let missing: Vec<&str> = self
                .config
                .participants
                .iter()
                .filter(|p| !self.in_flight[&id].acks.contains_key(&p.name))
                .map(|p| p.name.as_str())
                .take(5)
                .collect();
            let why = format!(
                "not complete after {} (waiting for {})",
                self.config.settings.timeout,
                missing.join(", ")
            );
            self.abort(id, &why, true)?;
        }
        Ok(())
    }

    fn complete(&mut self, id: u64) -> Result<(), String> {
        let Some(flight) = self.in_flight.remove(&id) else {
            return Ok(());
        };
        let settings = &self.config.settings;
        let metadata = Metadata {
            format_version: FORMAT_VERSION,
            job: self.config.job.clone(),
            spec_hash: self.config.spec_hash.clone(),
            checkpoint_id: id,
            kind: super::metadata::Kind::Checkpoint,
            run: self.config.run.clone(),
            restored_from: self.config.restored_from.clone(),
            history: super::metadata::extend_history(
                &self.config.restored_history,
                self.first_id,
                id,
            ),
            triggered_at_ms: flight.triggered_at_ms,
            completed_at_ms: now_ms(),
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
                    };
                    (a.instance.clone(), state)
                })
                .collect(),
            alignment_ms: flight
                .acks
                .values()
                .map(|a| a.alignment.as_secs_f64() * 1e3)
                .fold(0.0, f64::max),
            sync_ms: flight
                .acks
                .values()
                .map(|a| a.sync.as_secs_f64() * 1e3)
                .fold(0.0, f64::max),
        };
        let bytes = serde_json::to_vec_pretty(&metadata).unwrap_or_default();
        if let Err(e) = self
            .store
            .write(&layout::metadata(&self.config.job, id), bytes)
        {
            self.in_flight.insert(id, flight);
            return self.abort(id, &format!("cannot write its metadata: {e}"), true);
        }
        let duration = flight.started.elapsed();
        self.schedule.ended(Instant::now());
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
        self.config.last_completed.store(id, Ordering::Relaxed);
        s.durations.push(duration);
        s.bytes_written += written;
        s.max_sync = s
            .max_sync
            .max(Duration::from_secs_f64(metadata.sync_ms / 1e3));
        s.max_alignment = s
            .max_alignment
            .max(Duration::from_secs_f64(metadata.alignment_ms / 1e3));
        for untold in &mut self.untold {
            *untold = Some(id);
        }
        self.tell_uploaders();
        for c in &self.commits {
            let _ = c.send(id);
        }
        if self.final_checkpoint.is_some_and(|f| id >= f) {
            for t in &self.triggers {
                let _ = t.send(SourceCommand::Finish);
            }
        }
        if let Some((request, target)) = self.savepoints.remove(&id) {
            self.stats.stopped |= request.stop;
            let written = savepoint::write(&*self.store, &metadata, &target);
            match &written {
                Ok(_) => tracing::info!("savepoint {id} written to {}", target.location),
                Err(e) => tracing::warn!(
                    "savepoint {id} could not be written to {}: {e}",
                    target.location
                ),
            }
            let reply = match written {
                Ok(_) => Ok((id, target.location)),
                Err(e) => Err(format!(
                    "cannot write the savepoint to {}: {e}",
                    target.location
                )),
            };
            let _ = request.reply.send(reply);
        }
        self.completed.push(metadata);
        self.retain();
        Ok(())
    }

    fn retain(&mut self) {
        for id in self.unremoved.clone() {
            self.remove_files(id);
        }
        let job = &self.config.job;
        let shared: Vec<String> = match self.store.list(&layout::shared_dir(job)) {
            Ok(names) => names
                .into_iter()
                .map(|n| format!("{}{n}", layout::shared_dir(job)))
                .collect(),
            Err(e) => {
                tracing::warn!("retention skipped: {e}");
                return;
            }
        };
        let in_flight: BTreeSet<String> = self
            .in_flight
            .values()
            .flat_map(|f| {
                f.acks
                    .values()
                    .flat_map(|a| a.files.iter().map(|f| f.path.clone()))
            })
            .collect();
        // Files being written for in-flight checkpoints are not listed yet in any ack.
        let in_flight_ids: BTreeSet<u64> = self.in_flight.keys().copied().collect();
        let shared: Vec<String> = shared
            .into_iter()
            .filter(|p| !written_by_any(p, &in_flight_ids))
            .collect();
        let completed: Vec<&Metadata> = self.completed.iter().collect();
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
        let deletions = retention::plan(
            &completed,
            &|m| m.run == *run || claimed.contains(&m.checkpoint_id),
            self.config.settings.retain as usize,
            &shared,
            &in_flight,
            &protect,
        );
        for id in &deletions.checkpoints {
            // The metadata goes first: a half-deleted checkpoint never looks complete.
            let removed = self
                .store
                .delete(&layout::metadata(job, *id))
                .and_then(|()| self.store.delete_dir(&layout::checkpoint_dir(job, *id)));
            if let Err(e) = removed {
                tracing::warn!("retention could not delete checkpoint {id}: {e}");
            }
        }
        self.completed
            .retain(|m| !deletions.checkpoints.contains(&m.checkpoint_id));
        for f in &deletions.shared_files {
            if let Err(e) = self.store.delete(f) {
                tracing::warn!("retention could not delete {f}: {e}");
            }
        }
    }

    fn abort(&mut self, id: u64, why: &str, failure: bool) -> Result<(), String> {
        if self.in_flight.remove(&id).is_none() {
            return Ok(());
        }
        self.aborted.insert(id);
        self.schedule.ended(Instant::now());
        if self.final_checkpoint == Some(id) {
            self.final_checkpoint = None;
        }
        if let Some((request, _)) = self.savepoints.remove(&id) {
            let _ = request
                .reply
                .send(Err(format!("savepoint {id} failed: {why}")));
        }
        self.remove_files(id);
        if !failure {
            tracing::info!("checkpoint {id} abandoned: {why}");
            return Ok(());
        }
        self.stats.failed += 1;
        self.consecutive_failures += 1;
        let tolerable = self.config.settings.tolerable_failures;
        tracing::warn!(
            "checkpoint {id} failed: {why} ({} in a row, {tolerable} tolerated)",
            self.consecutive_failures
        );
        if self.consecutive_failures > tolerable {
            return Err(format!(
                "checkpoint {id} failed: {why}; that is {} failed checkpoint{} in a row, more than tolerable_failures ({tolerable})",
                self.consecutive_failures,
                if self.consecutive_failures == 1 { "" } else { "s" }
            ));
        }
        Ok(())
    }

    /// Removes every file checkpoint `id` wrote: its folder and its shared
    /// files. What cannot be removed now is retried later.
    fn remove_files(&mut self, id: u64) {
        let job = &self.config.job;
        let shared = layout::shared_dir(job);
        let ids = BTreeSet::from([id]);
        let removed = self
            .store
            .delete_dir(&layout::checkpoint_dir(job, id))
            .and_then(|()| {
                self.store
                    .list(&shared)?
                    .iter()
                    .filter(|n| written_by_any(n, &ids))
                    .try_for_each(|name| self.store.delete(&format!("{shared}{name}")))
            });
        match removed {
            Ok(()) => {
                self.unremoved.remove(&id);
            }
            Err(e) => {
                tracing::warn!("cannot yet remove the files of aborted checkpoint {id}: {e}");
                self.unremoved.insert(id);
            }
        }
    }
}

/// Whether a shared file name (`<node>-<i>-<N>.full|delta`) was written by one of `ids`.
fn written_by_any(name: &str, ids: &BTreeSet<u64>) -> bool {
    let stem = name.rsplit('/').next().unwrap_or(name);
    let stem = stem
        .strip_suffix(".full")
        .or_else(|| stem.strip_suffix(".delta"))
        .unwrap_or("");
    stem.rsplit_once('-')
        .and_then(|(_, n)| n.parse().ok())
        .is_some_and(|n| ids.contains(&n))
}

/// The completed checkpoints in the store (those with a readable `_metadata`).
pub fn existing_checkpoints(
    store: &dyn CheckpointStore,
    job: &str,
) -> Result<Vec<Metadata>, String> {
    let mut out = Vec::new();
    for name in store
        .list(&layout::job_dir(job))
        .map_err(|e| e.to_string())?
    {
        let Some(id) = layout::parse_checkpoint_name(&name) else {
            continue;
        };
        // A folder without metadata is an unfinished checkpoint: it never counts.
        let path = layout::metadata(job, id);
        if let Ok(bytes) = store.read(&path) {
            match Metadata::decode(&bytes, &path) {
                Ok(m) => out.push(m),
                Err(e) => tracing::warn!("ignoring checkpoint {id}: {e}"),
            }
        }
    }
    out.sort_by_key(|m| m.checkpoint_id);
    Ok(out)
}

/// The highest checkpoint number with a folder, complete or not.
fn highest_folder(store: &dyn CheckpointStore, job: &str) -> Result<Option<u64>, String> {
    Ok(store
        .list(&layout::job_dir(job))
        .map_err(|e| e.to_string())?
        .iter()
        .filter_map(|n| layout::parse_checkpoint_name(n))
        .max())
}

pub fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(interval: u64, min_pause: u64, max_concurrent: u32) -> CheckpointSpec {
        serde_yaml::from_str(&format!("{{interval: {interval}ms, min_pause: {min_pause}ms, max_concurrent: {max_concurrent}}}")).unwrap()
    }

    #[test]
    fn interval_min_pause_and_max_concurrent() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = Schedule::new(&settings(100, 50, 1), t0);
        assert!(!s.due(t0 + ms(99), 0));
        assert!(s.due(t0 + ms(100), 0));
        s.triggered(t0 + ms(100));
        assert!(!s.due(t0 + ms(250), 1), "one at a time");
        s.ended(t0 + ms(190));
        assert!(s.due(t0 + ms(240), 0));
        // A long checkpoint ending late pushes the next one back by min_pause.
        s.triggered(t0 + ms(240));
        s.ended(t0 + ms(400));
        assert!(!s.due(t0 + ms(449), 0));
        assert!(s.due(t0 + ms(450), 0));
        let s = Schedule::new(&settings(10, 0, 2), t0);
        assert!(s.due(t0 + ms(10), 1));
        assert!(!s.due(t0 + ms(10), 2));
    }

    #[test]
    fn shared_file_names_name_their_checkpoint() {
        let ids = BTreeSet::from([7]);
        assert!(written_by_any("wc/shared/counts-0-7.delta", &ids));
        assert!(written_by_any("my-node-1-7.full", &ids));
        assert!(!written_by_any("counts-0-17.delta", &ids));
        assert!(!written_by_any("counts-7-1.delta", &ids));
    }
}
