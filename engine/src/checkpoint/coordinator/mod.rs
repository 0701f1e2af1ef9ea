//! The checkpoint coordinator: Flink's JobManager role.
//!
//! It triggers checkpoints on schedule, collects every instance's
//! acknowledgement, writes `_metadata` last, tells uploaders and sinks a
//! checkpoint completed, runs retention, and aborts checkpoints that time
//! out or that an instance could not write, having their files removed
//! ([`cleaner`]). Past `tolerable_failures` consecutive failures it fails
//! the job.
//!
//! Every decision is the pure [`machine::Machine`]'s; this shell only
//! carries its actions out over channels and the store.

mod cleaner;
pub mod machine;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};

use super::history::History;
use super::layout;
use super::metadata::{self, Metadata};
use super::retention;
use super::savepoint::{self, Target};
use super::store::{CheckpointStore, StoreError};
use super::uploader::UploadTask;
use super::{Report, SavepointFailure, SavepointRequest, SourceCommand};
use crate::error::Class;
use cleaner::Cleaner;
use machine::{Action, Machine, Now};
pub use machine::{Config, Participant, Stats, TooManyFailures};

/// Why the coordinator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot start a thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// What the supervisor tells the coordinator.
pub enum Control {
    /// An instance ended: it will acknowledge nothing more.
    Finished(String),
    /// Take a savepoint (and stop, if asked) as soon as possible.
    Savepoint(SavepointRequest),
}

/// Where the coordinator's actions go.
pub struct Links {
    /// To each source.
    pub triggers: Vec<Sender<SourceCommand>>,
    /// To each uploader.
    pub uploaders: Vec<Sender<UploadTask>>,
    /// To each sink, told of each completed checkpoint so it can commit.
    pub commits: Vec<Sender<u64>>,
    /// The newest checkpoint this run completed (0: none yet), for the
    /// status line to read without a message.
    pub last_completed: Arc<AtomicU64>,
    /// What people watching the run see of its checkpoints.
    pub history: Arc<Mutex<History>>,
}

pub struct Coordinator {
    machine: Machine,
    store: Arc<dyn CheckpointStore>,
    links: Links,
    /// Per uploader, the newest completed checkpoint it has not been told
    /// of yet because its queue was full; retried on every tick.
    untold: Vec<Option<u64>>,
    /// Removes aborted checkpoints' files; taken at the end ([`Coordinator::drain`]).
    cleaner: Option<Cleaner>,
    /// A savepoint request not triggered yet.
    asked: Option<SavepointRequest>,
    /// Savepoints in flight, by checkpoint id, with where each goes.
    savepoints: std::collections::BTreeMap<u64, (SavepointRequest, Target)>,
    /// The `_metadata` of the checkpoint last completed, for its savepoint.
    last_metadata: Option<Metadata>,
    /// When checkpoints in progress were last shown ([`Coordinator::publish`]).
    published: Instant,
}

/// How often checkpoints in progress are shown while none ends.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

fn now() -> Now {
    Now {
        at: Instant::now(),
        wall_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    }
}

impl Coordinator {
    /// Prepares a coordinator over what the store holds; numbering
    /// continues after the checkpoints already there.
    pub fn new(
        config: Config,
        store: Arc<dyn CheckpointStore>,
        links: Links,
    ) -> Result<Coordinator, StartError> {
        let job = config.job.clone();
        let existing = super::inspect::existing_checkpoints(&*store, &job)?;
        let folders: Vec<u64> = store
            .list(&layout::job_dir(&job))?
            .iter()
            .filter_map(|n| layout::parse_checkpoint_name(n))
            .collect();
        // Folders without `_metadata` are checkpoints a crashed run never
        // finished: nothing can use them.
        for id in &folders {
            if !existing.iter().any(|m| m.checkpoint_id == *id)
                && store
                    .read(&layout::metadata(&job, *id), metadata::MAX_BYTES)
                    .is_err()
            {
                let _ = store.delete_dir(&layout::checkpoint_dir(&job, *id));
            }
        }
        let job_dir = format!("{}/{job}", store.describe().trim_end_matches('/'));
        let claimed = config
            .restored_from
            .as_deref()
            .map(|from| retention::lineage(&existing, from, &job_dir))
            .unwrap_or_default();
        let highest = folders.iter().copied().max();
        let cleaner = Cleaner::spawn(Arc::clone(&store), job)?;
        Ok(Coordinator {
            machine: Machine::new(config, existing, highest, claimed, Instant::now()),
            store,
            untold: vec![None; links.uploaders.len()],
            links,
            cleaner: Some(cleaner),
            asked: None,
            savepoints: Default::default(),
            last_metadata: None,
            published: Instant::now(),
        })
    }

    /// Runs until the job ends (`control` or `reports` disconnected), or
    /// until checkpointing fails the job: the error says why. Call
    /// [`Coordinator::drain`] afterwards.
    pub fn coordinate(
        &mut self,
        reports: &Receiver<Report>,
        control: &Receiver<Control>,
    ) -> Result<(), TooManyFailures> {
        let tick = Duration::from_millis(5);
        loop {
            let actions = crossbeam_channel::select! {
                recv(reports) -> report => match report {
                    Ok(Report::Ack(ack)) => self.machine.ack(ack, now()),
                    Ok(Report::InputEnded { instance }) => {
                        self.machine.input_ended(instance);
                        Vec::new()
                    }
                    Ok(Report::Declined { id, instance, cause }) => {
                        self.machine.declined(id, &instance, &cause, now())
                    }
                    // Every instance and uploader is gone: nothing more can complete.
                    Err(_) => return Ok(()),
                },
                recv(control) -> msg => match msg {
                    Ok(Control::Finished(name)) => self.machine.finished(name, now()),
                    Ok(Control::Savepoint(request)) => {
                        match self.machine.ask_savepoint(request.then) {
                            Ok(()) => self.asked = Some(request),
                            Err(why) => {
                                let _ = request.reply.send(Err(SavepointFailure::new(
                                    Class::User,
                                    why.to_string(),
                                )));
                            }
                        }
                        Vec::new()
                    }
                    Err(_) => return Ok(()),
                },
                default(tick) => Vec::new(),
            };
            self.carry_out(actions)?;
            self.tell_uploaders();
            let actions = self.machine.tick(now());
            self.carry_out(actions)?;
            self.publish(false);
        }
    }

    /// Shows the checkpoints under way and those that ended to whoever
    /// watches the run.
    fn publish(&mut self, now_anyway: bool) {
        let ended = self.machine.take_ended();
        let now = Instant::now();
        if !now_anyway && ended.is_empty() && now.duration_since(self.published) < PUBLISH_EVERY {
            return;
        }
        self.published = now;
        let mut history = self.links.history.lock().unwrap_or_else(|e| e.into_inner());
        history.ended(ended);
        history.in_progress = self.machine.in_progress(now);
    }

    fn carry_out(&mut self, actions: Vec<Action>) -> Result<(), TooManyFailures> {
        let mut queue: std::collections::VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Trigger { command, savepoint } => self.trigger(command, savepoint),
                Action::WriteMetadata(metadata) => {
                    let id = metadata.checkpoint_id;
                    let bytes = metadata.encode();
                    let written = self
                        .store
                        .write(&layout::metadata(self.machine.job(), id), bytes);
                    queue.extend(match written {
                        Ok(()) => {
                            self.last_metadata = Some(*metadata);
                            self.machine.metadata_written(id, now())
                        }
                        Err(e) => self.machine.metadata_failed(id, &e.to_string(), now()),
                    });
                }
                Action::Completed(id) => {
                    self.links.last_completed.store(id, Ordering::Relaxed);
                    for untold in &mut self.untold {
                        *untold = Some(id);
                    }
                    self.tell_uploaders();
                    for c in &self.links.commits {
                        let _ = c.send(id);
                    }
                }
                Action::WriteSavepoint(id) => self.write_savepoint(id),
                Action::Finish => {
                    for t in &self.links.triggers {
                        let _ = t.send(SourceCommand::Finish);
                    }
                }
                Action::Retain => self.retain(),
                Action::RemoveFiles(id) => self.remove_files(id),
                Action::SavepointFailed { id, why } => {
                    if let Some((request, _)) = self.savepoints.remove(&id) {
                        let _ = request.reply.send(Err(SavepointFailure::new(
                            Class::External,
                            format!("savepoint {id} failed: {why}"),
                        )));
                    }
                }
                Action::Fail(why) => return Err(why),
            }
        }
        Ok(())
    }

    fn trigger(&mut self, command: SourceCommand, savepoint: bool) {
        let (SourceCommand::Checkpoint(id) | SourceCommand::Stop { id, .. }) = command else {
            return;
        };
        if savepoint {
            let Some(request) = self.asked.take() else {
                self.machine.withdraw(id, now());
                return;
            };
            // Into the folder it names, or by default one bearing its number.
            match Target::resolve(
                request.to.as_deref(),
                &self.store,
                self.machine.job(),
                id,
                super::store::deadline_within(self.machine.timeout()),
            ) {
                Ok(target) => {
                    self.savepoints.insert(id, (request, target));
                }
                Err(why) => {
                    let _ = request.reply.send(Err(SavepointFailure::from_error(&why)));
                    self.machine.withdraw(id, now());
                    return;
                }
            }
        }
        for t in &self.links.triggers {
            // A source that has ended cannot take part; the machine hears
            // of it and abandons the checkpoint. One held up by
            // backpressure past the timeout of earlier checkpoints may
            // still hold their triggers: this one is then dropped (the
            // checkpoint times out) rather than block the coordinator, and
            // the last slot is kept for `Finish`.
            if t.len() + 1 < t.capacity().unwrap_or(usize::MAX) {
                let _ = t.try_send(command);
            }
        }
    }

    fn write_savepoint(&mut self, id: u64) {
        let Some((request, target)) = self.savepoints.remove(&id) else {
            return;
        };
        let written = match &self.last_metadata {
            Some(metadata) if metadata.checkpoint_id == id => {
                savepoint::write(&*self.store, metadata, &target)
                    .map_err(|e| SavepointFailure::from_error(&e))
            }
            // The machine asks for a savepoint only of the checkpoint it
            // has just completed, whose metadata was the last written.
            _ => Err(SavepointFailure::new(
                Class::Bug,
                format!("internal error: checkpoint {id}'s metadata is not at hand"),
            )),
        };
        let reply = match written {
            Ok(_) => {
                tracing::info!("savepoint {id} written to {}", target.location);
                Ok((id, target.location))
            }
            Err(e) => {
                tracing::warn!(
                    "savepoint {id} could not be written to {}: {e}",
                    target.location
                );
                Err(SavepointFailure::new(
                    e.class,
                    format!("cannot write the savepoint to {}: {e}", target.location),
                ))
            }
        };
        let _ = request.reply.send(reply);
    }

    /// Tells each uploader of the newest completed checkpoint, without
    /// waiting on a full queue (the uploader may itself be waiting on the
    /// coordinator's report queue): what cannot go now goes on a later tick.
    /// The newest is enough: an uploader builds on the last it was told of.
    fn tell_uploaders(&mut self) {
        for (u, untold) in self.links.uploaders.iter().zip(&mut self.untold) {
            if let Some(id) = *untold {
                match u.try_send(UploadTask::Completed(id)) {
                    Err(crossbeam_channel::TrySendError::Full(_)) => {}
                    _ => *untold = None,
                }
            }
        }
        if self.untold.iter().all(Option::is_none) {
            self.machine.uploaders_caught_up();
        }
    }

    fn retain(&mut self) {
        let shared_dir = layout::shared_dir(self.machine.job());
        let shared: Vec<String> = match self.store.list(&shared_dir) {
            Ok(names) => names
                .into_iter()
                .map(|n| format!("{shared_dir}{n}"))
                .collect(),
            Err(e) => {
                tracing::warn!("retention skipped: {e}");
                return;
            }
        };
        let deletions = self.machine.retention(&shared);
        let job = self.machine.job().to_owned();
        // Oldest first, and none newer once one could not go: the
        // checkpoints a later run restores from are what claim the older
        // ones for it, and the shared files are what those still need.
        for &id in &deletions.checkpoints {
            // The metadata goes first: a half-deleted checkpoint never looks complete.
            if let Err(e) = self.store.delete(&layout::metadata(&job, id)) {
                tracing::warn!(
                    "retention could not delete checkpoint {id} (tried again later): {e}"
                );
                return;
            }
            self.machine.deleted(id);
            if let Err(e) = self.store.delete_dir(&layout::checkpoint_dir(&job, id)) {
                tracing::warn!("retention could not delete the files of checkpoint {id}: {e}");
            }
        }
        for f in &deletions.shared_files {
            if let Err(e) = self.store.delete(f) {
                tracing::warn!("retention could not delete {f}: {e}");
            }
        }
    }

    /// Removes every file checkpoint `id` wrote: its folder and its shared
    /// files. What cannot be removed now is retried later.
    fn remove_files(&mut self, id: u64) {
        if let Some(cleaner) = &self.cleaner {
            cleaner.remove(id);
        }
    }

    /// At the end of the job: no checkpoint still in flight will complete.
    /// Aborts them and waits (a bounded time) for their late uploads, so
    /// that no file of theirs is left behind.
    pub fn drain(mut self, reports: &Receiver<Report>) -> Stats {
        self.links.triggers.clear();
        self.links.commits.clear();
        // Uploaders stop once the instances and this coordinator let go of them.
        self.links.uploaders.clear();
        for (_, (request, _)) in std::mem::take(&mut self.savepoints) {
            // Its input ended, or it failed: asking again cannot help.
            let _ = request.reply.send(Err(SavepointFailure::new(
                Class::User,
                "the job ended before the savepoint completed",
            )));
        }
        for id in self.machine.end() {
            self.remove_files(id);
        }
        self.publish(true);
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Ok(report) = reports.recv_deadline(deadline) {
            let actions = match report {
                Report::Ack(ack) => self.machine.ack(ack, now()),
                Report::Declined {
                    id,
                    instance,
                    cause,
                } => self.machine.declined(id, &instance, &cause, now()),
                Report::InputEnded { .. } => continue,
            };
            for action in actions {
                if let Action::RemoveFiles(id) = action {
                    self.remove_files(id);
                }
            }
        }
        if let Some(cleaner) = self.cleaner.take() {
            cleaner.finish(Duration::from_secs(30));
        }
        self.machine.stats().clone()
    }
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
    //! The shell over an in-memory store: what the machine decides lands
    //! in the store and on the channels.

    use super::*;
    use crate::checkpoint::metadata::{hex, FileRef};
    use crate::checkpoint::snapshot;
    use crate::checkpoint::store::MemoryStore;
    use crate::checkpoint::Ack;
    use crate::checkpoint::AfterSavepoint;

    struct Job {
        store: Arc<MemoryStore>,
        triggers: Receiver<SourceCommand>,
        commits: Receiver<u64>,
        reports: Sender<Report>,
        control: Sender<Control>,
        ended: std::thread::JoinHandle<(Result<(), TooManyFailures>, Stats)>,
    }

    fn start(settings: &str) -> Job {
        let store = Arc::new(MemoryStore::default());
        let config = Config {
            job: "wc".into(),
            run: "r1".into(),
            restored_from: None,
            restored_id: None,
            restored_history: Vec::new(),
            shapes: Default::default(),
            spec_hash: "h".into(),
            settings: crate::plan::checkpoint_settings(settings),
            max_parallelism: 128,
            participants: ["read#0", "counts#0"]
                .map(|n| Participant {
                    name: n.into(),
                    is_source: n == "read#0",
                })
                .to_vec(),
        };
        let (trigger_tx, triggers) = crossbeam_channel::bounded(8);
        let (commit_tx, commits) = crossbeam_channel::bounded(64);
        let (reports, report_rx) = crossbeam_channel::bounded(64);
        let (control, control_rx) = crossbeam_channel::bounded(64);
        let links = Links {
            triggers: vec![trigger_tx],
            uploaders: Vec::new(),
            commits: vec![commit_tx],
            last_completed: Arc::default(),
            history: Arc::default(),
        };
        let shared: Arc<dyn CheckpointStore> = store.clone();
        let mut coordinator = Coordinator::new(config, shared, links).unwrap();
        let ended = std::thread::spawn(move || {
            let result = coordinator.coordinate(&report_rx, &control_rx);
            (result, coordinator.drain(&report_rx))
        });
        Job {
            store,
            triggers,
            commits,
            reports,
            control,
            ended,
        }
    }

    impl Job {
        /// Answers the next trigger as both instances would: the keyed one
        /// writes a full snapshot into the checkpoint's folder.
        fn answer(&self) -> SourceCommand {
            let command = self.triggers.recv_timeout(Duration::from_secs(10)).unwrap();
            let (SourceCommand::Checkpoint(id) | SourceCommand::Stop { id, .. }) = command else {
                return command;
            };
            let bytes = snapshot::encode(&snapshot::Entries::new());
            let path = layout::snapshot("wc", "counts", 0, id, layout::SnapshotKind::Full, false);
            let file = FileRef {
                path: path.clone(),
                size: bytes.len() as u64,
                checksum: hex(snapshot::checksum(&bytes)),
                kind: layout::SnapshotKind::Full,
                checkpoint: id,
            };
            self.store.write(&path, bytes).unwrap();
            for (instance, files) in [("read#0", vec![]), ("counts#0", vec![file])] {
                self.reports
                    .send(Report::Ack(ack(id, instance, files)))
                    .unwrap();
            }
            command
        }
    }

    /// A retention pass that could not delete an old checkpoint went on
    /// to delete newer ones and forgot it: once the newer one a later run
    /// restored from was gone, no run could claim the old one any more,
    /// and it stayed in the store for good (seen in
    /// `s3_outages_while_running_fail_checkpoints_but_not_the_job`).
    #[test]
    fn a_checkpoint_retention_could_not_delete_is_deleted_later_and_newer_ones_wait_for_it() {
        let job = start("{interval: 20ms, retain: 1}");
        *job.store.refuse_deletes.lock().unwrap() = Some("wc/chk-1/".into());
        let has = |id: u64| {
            job.store
                .paths()
                .contains(&format!("wc/chk-{id}/_metadata"))
        };
        for id in 1..=4 {
            assert_eq!(job.answer(), SourceCommand::Checkpoint(id));
            assert_eq!(job.commits.recv_timeout(Duration::from_secs(10)), Ok(id));
        }
        // chk-1 could not go, so nothing newer went before it.
        std::thread::sleep(Duration::from_millis(100));
        assert!(has(1) && has(2) && has(3), "{:?}", job.store.paths());
        *job.store.refuse_deletes.lock().unwrap() = None;
        let id = command_id(job.answer());
        assert_eq!(job.commits.recv_timeout(Duration::from_secs(10)), Ok(id));
        let deadline = Instant::now() + Duration::from_secs(10);
        while (1..id).any(has) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!(1..id).any(has), "{:?}", job.store.paths());
        drop(job.control);
        drop(job.triggers);
    }

    #[test]
    fn checkpoints_land_in_the_store_and_retention_and_stop_with_savepoint_follow() {
        let job = start("{interval: 20ms, retain: 1}");
        assert_eq!(job.answer(), SourceCommand::Checkpoint(1));
        assert_eq!(job.commits.recv_timeout(Duration::from_secs(10)), Ok(1));
        assert!(job.store.paths().contains(&"wc/chk-1/_metadata".to_owned()));
        assert_eq!(job.answer(), SourceCommand::Checkpoint(2));
        assert_eq!(job.commits.recv_timeout(Duration::from_secs(10)), Ok(2));
        let (reply, answer) = crossbeam_channel::bounded(1);
        let request = SavepointRequest {
            to: None,
            then: AfterSavepoint::Stop,
            reply,
        };
        job.control.send(Control::Savepoint(request)).unwrap();
        // The trigger already queued may be a checkpoint; the stop follows.
        let mut command = job.answer();
        while !matches!(command, SourceCommand::Stop { drain: false, .. }) {
            command = job.answer();
        }
        let id = command_id(command);
        assert_eq!(
            answer.recv_timeout(Duration::from_secs(10)).unwrap(),
            Ok((id, format!("memory://test/wc/savepoints/sp-{id}")))
        );
        assert_eq!(
            job.triggers.recv_timeout(Duration::from_secs(10)),
            Ok(SourceCommand::Finish)
        );
        drop(job.control);
        drop(job.reports);
        let (result, stats) = job.ended.join().unwrap();
        assert_eq!(result, Ok(()));
        assert!(stats.stopped);
        let paths = job.store.paths();
        assert!(
            !paths.iter().any(|p| p.starts_with("wc/chk-1/")),
            "retained 1: {paths:?}"
        );
        for file in ["_metadata", "counts-0.full"] {
            let path = format!("wc/savepoints/sp-{id}/{file}");
            assert!(paths.contains(&path), "{path} in {paths:?}");
        }
        assert!(paths.contains(&format!("wc/chk-{id}/_metadata")));
    }

    /// Instance `instance`'s (`<node>#0`) acknowledgement of checkpoint `id`.
    fn ack(id: u64, instance: &str, files: Vec<FileRef>) -> Ack {
        Ack {
            id,
            instance: instance.into(),
            node: instance.trim_end_matches("#0").into(),
            index: 0,
            parallelism: 1,
            files,
            source_position: None,
            sink_pending: None,
            event_time: None,
            sync: Duration::ZERO,
            alignment: Duration::ZERO,
            upload: Duration::ZERO,
        }
    }

    /// Issue 13's sixth finding: a run froze after a restore, every
    /// checkpoint timing out. Removing an aborted checkpoint's files took
    /// longer than the timeout on a store grown slow, and held the
    /// coordinator meanwhile: the next checkpoint expired before its
    /// trigger went out, its removal held the one after, and so on, with
    /// each late acknowledgement costing one more removal.
    #[test]
    fn a_removal_slower_than_the_timeout_does_not_hold_checkpoints_back() {
        let job = start("{interval: 20ms, timeout: 300ms, tolerable_failures: 1000}");
        job.store
            .delete_ms
            .store(1_000, std::sync::atomic::Ordering::Relaxed);
        // The first checkpoint gets no answer: it times out, and its files go.
        assert_eq!(
            job.triggers.recv_timeout(Duration::from_secs(10)),
            Ok(SourceCommand::Checkpoint(1))
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let committed = loop {
            assert!(
                Instant::now() < deadline,
                "no checkpoint completed in 20 s after the first timed out"
            );
            let answered = command_id(job.answer());
            if let Ok(id) = job.commits.recv_timeout(Duration::from_millis(100)) {
                break (id, answered);
            }
        };
        assert!(committed.0 >= 2, "{committed:?}");
        drop(job.control);
        drop(job.reports);
        let (result, _) = job.ended.join().unwrap();
        assert_eq!(result, Ok(()));
        let paths = job.store.paths();
        assert!(
            !paths.iter().any(|p| p.starts_with("wc/chk-1/")),
            "the aborted checkpoint's files are gone by the end: {paths:?}"
        );
    }

    fn command_id(command: SourceCommand) -> u64 {
        match command {
            SourceCommand::Checkpoint(id) | SourceCommand::Stop { id, .. } => id,
            SourceCommand::Finish => 0,
        }
    }

    #[test]
    fn a_store_that_is_down_fails_the_checkpoint_and_past_tolerance_the_job() {
        let job = start("{interval: 20ms, tolerable_failures: 0}");
        let command = job.triggers.recv_timeout(Duration::from_secs(10)).unwrap();
        job.store.down.store(true, Ordering::Relaxed);
        let id = command_id(command);
        for instance in ["read#0", "counts#0"] {
            job.reports
                .send(Report::Ack(ack(id, instance, Vec::new())))
                .unwrap();
        }
        drop(job.reports);
        let (result, stats) = job.ended.join().unwrap();
        let why = result.unwrap_err().to_string();
        assert!(
            why.contains("cannot write its metadata") && why.contains("the store is down"),
            "{why}"
        );
        assert_eq!((stats.completed, stats.failed), (0, 1));
        assert!(job.commits.try_recv().is_err(), "nothing committed");
    }
}
