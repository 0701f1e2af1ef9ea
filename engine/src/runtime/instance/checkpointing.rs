//! A chain instance's part in checkpoints: the barriers it passes on, the
//! snapshots its members take at each, the copying of deferred snapshots
//! slice by slice, and the commits of its sinks once a checkpoint completes.
//!
//! Apart from the record loop in `mod.rs`, which only calls in here when a
//! barrier or an end of input arrives, when a source is triggered, or
//! between batches; without checkpoints none of this does anything.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::{ChainTime, Io, Member, Role, Stop, RECV_POLL};
use crate::checkpoint::metadata::TimeState;
use crate::checkpoint::uploader::UploadTask;
use crate::checkpoint::{Ack, Report, SourceCommand};
use crate::operators::Snapshot;
use crate::runtime::alignment::{Aligner, Step};
use crate::runtime::message::Message;
use crate::runtime::InstanceError;
use crate::time::{Watermark, END, START};

/// Entries of a deferred snapshot copied per slice: as many keys as a
/// batch of the default size can change, so copying keeps pace with the
/// input; a million changed keys take 977 slices. A slice holds the
/// thread about 0.4 ms even on entries out of the cache (the first
/// checkpoint after restoring 1 M keys, against 5 ms for 4,096 entries).
pub(super) const COPY_BUDGET: usize = 1024;

/// How long an idle source's chain copies snapshot slices before polling
/// the source again.
pub(super) const IDLE_COPY: Duration = Duration::from_millis(2);

/// A member's part in checkpoints.
pub struct MemberCheckpointing {
    pub node: String,
    pub index: u32,
    pub parallelism: u32,
    /// Stateful operators: where the asynchronous part of a snapshot goes.
    pub uploader: Option<Sender<UploadTask>>,
    /// Sinks: ids of completed checkpoints, to commit.
    pub commits: Option<Receiver<u64>>,
}

/// The chain's part in checkpoints, shared by its members.
pub struct ChainCheckpointing {
    /// Source heads: checkpoint ids to emit barriers for.
    pub triggers: Option<Receiver<SourceCommand>>,
    pub reports: Sender<Report>,
    pub aligner: Aligner,
}

impl Io {
    /// Takes a checkpoint for every id the coordinator triggered, with the
    /// source's position after the records already passed on. Returns
    /// whether one was a stop: the source must then read no more.
    pub(super) fn source_barriers(&mut self, members: &mut [Member]) -> Result<bool, Stop> {
        while let Some(command) = self
            .checkpoint
            .as_ref()
            .and_then(|c| c.triggers.as_ref())
            .and_then(|t| t.try_recv().ok())
        {
            match command {
                SourceCommand::Checkpoint(id) => self.source_barrier(members, id)?,
                SourceCommand::Stop { id, drain } => {
                    // Flink's `stop --drain`: the end of event time first,
                    // so windows close before the savepoint.
                    if drain && self.time.is_some() {
                        self.watermark(members, 1, Watermark::At(END))?;
                    }
                    self.source_barrier(members, id)?;
                    return Ok(true);
                }
                // Only ever sent after the input ended (see `await_finish`).
                SourceCommand::Finish => {}
            }
        }
        Ok(false)
    }

    fn source_barrier(&mut self, members: &mut [Member], id: u64) -> Result<(), Stop> {
        let position = match &mut members[0].role {
            Role::Source(source) => {
                let position = source.position();
                source.on_barrier(id);
                Some(position)
            }
            _ => None,
        };
        self.snapshot(members, id, Duration::ZERO, position)
    }

    /// With checkpoints, a source whose input has ended stays until a
    /// checkpoint taken after every input ended completes, answering
    /// triggers meanwhile, so the tail of the output gets committed.
    pub(super) fn await_finish(&mut self, members: &mut [Member]) -> Result<(), Stop> {
        let Some(cp) = &self.checkpoint else {
            return Ok(());
        };
        let Some(triggers) = cp.triggers.clone() else {
            return Ok(());
        };
        let _ = cp.reports.send(Report::InputEnded {
            instance: members[0].name.clone(),
        });
        self.output.flush()?;
        loop {
            if self.cancel.is_cancelled() {
                return Err(Stop::Cancelled);
            }
            self.copy_snapshots(members, usize::MAX, false)?;
            match triggers.recv_timeout(RECV_POLL) {
                Ok(SourceCommand::Checkpoint(id) | SourceCommand::Stop { id, .. }) => {
                    self.source_barrier(members, id)?
                }
                Ok(SourceCommand::Finish) | Err(RecvTimeoutError::Disconnected) => {
                    // The final checkpoint's notice may have come with it.
                    return self.commit(members);
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.commit(members)?;
        }
    }

    /// Commits each sink's output up to every checkpoint completed since last asked.
    pub(super) fn commit(&mut self, members: &mut [Member]) -> Result<(), Stop> {
        for (k, member) in members.iter_mut().enumerate() {
            let Some(commits) = member.checkpoint.as_ref().and_then(|c| c.commits.as_ref()) else {
                continue;
            };
            match &mut member.role {
                Role::Sink(sink) => {
                    for id in commits.try_iter() {
                        sink.on_complete(id).map_err(|source| {
                            Stop::failed(k, InstanceError::Commit { id, source })
                        })?;
                    }
                }
                Role::Source(source) => {
                    for id in commits.try_iter() {
                        source.on_complete(id);
                    }
                }
                Role::Transform(_) => {}
            }
        }
        Ok(())
    }

    /// Notes an end of input or a barrier on input `i`; says whether the
    /// chain may now snapshot.
    pub(super) fn control(
        &mut self,
        i: usize,
        message: &Message,
        ended: &mut [bool],
        open: &mut usize,
    ) -> Step {
        if let Message::End = message {
            ended[i] = true;
            *open -= 1;
        }
        let Some(cp) = &mut self.checkpoint else {
            return Step::Continue;
        };
        match message {
            Message::End => cp.aligner.on_end(i),
            Message::Barrier(id) => cp.aligner.on_barrier(i, *id),
            Message::Batch(..) | Message::Watermark(_) => Step::Continue,
        }
    }

    /// Barrier `id` has come on every input (or a source was triggered):
    /// each member takes the synchronous part of its snapshot (a sink
    /// pre-commits), the barrier goes downstream, and then each member's
    /// state goes to its uploader, or it acknowledges at once. A snapshot
    /// whose copying is deferred goes to the uploader once copied.
    pub(super) fn snapshot(
        &mut self,
        members: &mut [Member],
        id: u64,
        alignment: Duration,
        source_position: Option<serde_json::Value>,
    ) -> Result<(), Stop> {
        // Checkpoints came faster than copying: the earlier one first.
        self.copy_snapshots(members, usize::MAX, true)?;
        // Notices of checkpoints completed before this barrier first: a
        // transactional sink then has its earlier transaction committed
        // and can close the one it pre-commits now.
        self.commit(members)?;
        let mut taken = Vec::with_capacity(members.len());
        for (k, member) in members.iter_mut().enumerate() {
            let started = Instant::now();
            let (snapshot, pending) = match &mut member.role {
                Role::Source(_) => (Snapshot::Stateless, None),
                Role::Transform(op) => (
                    op.snapshot()
                        .map_err(|e| Stop::failed(k, InstanceError::Snapshot(e)))?,
                    None,
                ),
                Role::Sink(sink) => {
                    sink.on_barrier(id).map_err(|source| {
                        Stop::failed(k, InstanceError::PreCommit { id, source })
                    })?;
                    (Snapshot::Stateless, sink.pending())
                }
            };
            taken.push((snapshot, pending, started.elapsed()));
        }
        self.output.barrier(id)?;
        let Some(cp) = &self.checkpoint else {
            return Ok(());
        };
        for (k, (member, (snapshot, sink_pending, sync))) in
            members.iter_mut().zip(taken).enumerate()
        {
            let Some(mc) = &member.checkpoint else {
                continue;
            };
            let mut ack = Ack {
                id,
                instance: member.name.clone(),
                node: mc.node.clone(),
                index: mc.index,
                parallelism: mc.parallelism,
                files: Vec::new(),
                source_position: None,
                sink_pending,
                event_time: None,
                sync,
                alignment,
                upload: Duration::ZERO,
            };
            if k == 0 {
                ack.source_position = source_position.clone();
            }
            // Every member of a chain is where its head is: a member that
            // heads a chain of its own after a rescale starts from there.
            ack.event_time = match &self.time {
                Some(ChainTime::Source(stamper)) if k == 0 => {
                    Some(TimeState::NewestRead(stamper.resumable()))
                        .filter(|_| stamper.resumable() > START)
                }
                Some(ChainTime::Source(stamper)) => {
                    Some(TimeState::Watermark(stamper.sent())).filter(|_| stamper.sent() > START)
                }
                Some(ChainTime::Inputs(inputs)) => Some(TimeState::Watermark(inputs.resumable()))
                    .filter(|_| inputs.resumable() > START),
                None => None,
            };
            match (snapshot, &mc.uploader) {
                (Snapshot::Taken(changes), Some(uploader)) => upload(uploader, changes, ack, k)?,
                (Snapshot::Deferred, Some(_)) => member.pending = Some(ack),
                _ => {
                    let _ = cp.reports.send(Report::Ack(ack));
                }
            }
        }
        Ok(())
    }

    /// Copies up to `budget` entries of each deferred snapshot, and hands
    /// every one that is complete to its uploader.
    ///
    /// Unless the input has ended (`holds_input` false), the time a copy
    /// holds the thread counts towards the snapshot's synchronous part,
    /// which reports the longest hold: a record arriving during a slice
    /// waits for it, even if none was waiting when it began.
    pub(super) fn copy_snapshots(
        &mut self,
        members: &mut [Member],
        budget: usize,
        holds_input: bool,
    ) -> Result<(), Stop> {
        for (k, member) in members.iter_mut().enumerate() {
            let (Some(ack), Role::Transform(op)) = (&mut member.pending, &mut member.role) else {
                continue;
            };
            let started = Instant::now();
            let copied = op
                .copy_snapshot(budget)
                .map_err(|e| Stop::failed(k, InstanceError::Snapshot(e)))?;
            if holds_input {
                ack.sync = ack.sync.max(started.elapsed());
            }
            let Some(changes) = copied else {
                continue;
            };
            let Some(ack) = member.pending.take() else {
                continue;
            };
            let uploader = member.checkpoint.as_ref().and_then(|c| c.uploader.as_ref());
            if let Some(uploader) = uploader {
                upload(uploader, changes, ack, k)?;
            }
        }
        Ok(())
    }

    /// Whether a deferred snapshot is being copied.
    pub(super) fn copying(members: &[Member]) -> bool {
        members.iter().any(|m| m.pending.is_some())
    }
}

fn upload(
    uploader: &Sender<UploadTask>,
    changes: crate::state::Changes,
    ack: Ack,
    k: usize,
) -> Result<(), Stop> {
    uploader
        .send(UploadTask::Snapshot {
            changes,
            ack: Box::new(ack),
        })
        .map_err(|_| Stop::failed(k, InstanceError::UploaderGone))
}
