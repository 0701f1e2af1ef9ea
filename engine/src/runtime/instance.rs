//! The loop each chain instance runs on its own thread.
//!
//! A chain is one or more operators fused on one thread (see [`physical`]).
//! Its head is a source, which polls its [`Source`], or reads messages from
//! its inputs (with crossbeam's `Select` when it has several). Each batch
//! then goes through the chain's operators in place and on to the output,
//! or into the sink that ends the chain. Operators see records only; this
//! loop handles batching, end of input, bad records (`on_error`),
//! checkpoint barriers and cancellation, for each member separately.
//!
//! [`physical`]: super::physical

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Select, Sender, TryRecvError};

use super::alignment::{Aligner, Step};
use super::message::Message;
use super::metrics::Metrics;
use super::output::{Cancelled, Output};
use crate::checkpoint::uploader::UploadTask;
use crate::checkpoint::{Ack, Report, SourceCommand};
use crate::operators::{OpError, Operator, Poll, RecordError, Sink, SinkError, Snapshot, Source};
use crate::plan::OnError;
use crate::runtime::cancel::Cancel;
use crate::value::Value;

/// What a member of a chain runs.
pub enum Role {
    Source(Box<dyn Source>),
    Transform(Box<dyn Operator>),
    Sink(Box<dyn Sink>),
}

/// How an instance ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Its input ended and everything was passed on.
    Done,
    Cancelled,
    /// A sink's reader closed the output (a pipe to `head`).
    OutputClosed,
}

/// A failure, and the member of the chain it happened in.
pub struct Failure {
    pub member: usize,
    pub cause: String,
}

/// Entries of a deferred snapshot copied per slice: as many keys as a
/// batch of the default size can change, so copying keeps pace with the
/// input; a million changed keys take 977 slices. A slice holds the
/// thread about 0.4 ms even on entries out of the cache (the first
/// checkpoint after restoring 1 M keys, against 5 ms for 4,096 entries).
const COPY_BUDGET: usize = 1024;

/// How long an idle source's chain copies snapshot slices before polling
/// the source again.
const IDLE_COPY: Duration = Duration::from_millis(2);

/// The most a receive waits before looking at the cancellation flag.
const RECV_POLL: Duration = Duration::from_millis(100);

/// One node's instance inside a chain: what is its own even when it
/// shares a thread.
pub struct Member {
    /// `<node>#<index>`.
    pub name: String,
    pub role: Role,
    pub on_error: OnError,
    pub metrics: Arc<Metrics>,
    /// Fail once, after this many input records (`DATAFLOW_INJECT_FAILURE`).
    pub fail_after: Option<u64>,
    /// Present when the job takes checkpoints.
    pub checkpoint: Option<MemberCheckpointing>,
    /// The acknowledgement of a snapshot still being copied.
    pub pending: Option<Ack>,
}

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

pub struct Instance {
    pub inputs: Vec<Receiver<Message>>,
    pub output: Output,
    pub cancel: Cancel,
    pub batch_size: usize,
    /// Present when the job takes checkpoints.
    pub checkpoint: Option<ChainCheckpointing>,
    /// Upstream first; never empty.
    pub members: Vec<Member>,
}

/// Whether the injected failure has happened: it happens once per process,
/// so a job restarted in the same process recovers.
static INJECTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The chain's part in checkpoints, shared by its members.
pub struct ChainCheckpointing {
    /// Source heads: checkpoint ids to emit barriers for.
    pub triggers: Option<Receiver<SourceCommand>>,
    pub reports: Sender<Report>,
    pub aligner: Aligner,
}

enum Next {
    Message(usize, Message),
    Idle,
}

/// Why a loop stopped early.
enum Stop {
    Cancelled,
    OutputClosed,
    Failed(usize, String),
}

impl From<Cancelled> for Stop {
    fn from(_: Cancelled) -> Self {
        Stop::Cancelled
    }
}

/// The loop's state apart from the members, so a member can run while the
/// loop sends its output.
struct Io {
    inputs: Vec<Receiver<Message>>,
    output: Output,
    cancel: Cancel,
    batch_size: usize,
    checkpoint: Option<ChainCheckpointing>,
    /// The batch going through the chain, and the one its next operator fills.
    batch: Vec<Value>,
    scratch: Vec<Value>,
}

impl Instance {
    /// Runs until the input ends, the job is cancelled or a member fails.
    pub fn run(self) -> Result<Finish, Failure> {
        let Instance {
            inputs,
            output,
            cancel,
            batch_size,
            checkpoint,
            mut members,
        } = self;
        let mut io = Io {
            inputs,
            output,
            cancel,
            batch_size,
            checkpoint,
            batch: Vec::with_capacity(batch_size),
            scratch: Vec::with_capacity(batch_size),
        };
        let result = if matches!(members.first().map(|m| &m.role), Some(Role::Source(_))) {
            io.run_source(&mut members)
        } else {
            io.run_inputs(&mut members)
        };
        match result {
            Ok(()) => Ok(Finish::Done),
            Err(Stop::Cancelled) => Ok(Finish::Cancelled),
            Err(Stop::OutputClosed) => Ok(Finish::OutputClosed),
            Err(Stop::Failed(member, cause)) => Err(Failure { member, cause }),
        }
    }
}

impl Io {
    fn run_source(&mut self, members: &mut [Member]) -> Result<(), Stop> {
        loop {
            if self.cancel.is_cancelled() {
                return Err(Stop::Cancelled);
            }
            let Role::Source(source) = &mut members[0].role else {
                return Err(Stop::Failed(0, "internal error: no source".into()));
            };
            let poll = source.poll(&mut self.batch, self.batch_size);
            members[0].metrics.add_out(self.batch.len());
            self.process(members, 1)?;
            if Self::copying(members) {
                // A slice per batch; while the source is idle, slice after
                // slice for up to `IDLE_COPY` before polling it again.
                let idle = matches!(poll, Ok(Poll::Idle));
                let started = Instant::now();
                loop {
                    self.copy_snapshots(members, COPY_BUDGET, true)?;
                    if !idle || !Self::copying(members) || started.elapsed() >= IDLE_COPY {
                        break;
                    }
                }
            }
            let stopped = self.source_barriers(members)?;
            match poll {
                Ok(Poll::End) => {
                    self.await_finish(members)?;
                    return self.finish(members);
                }
                Ok(Poll::Ready) => {}
                Ok(Poll::Idle) => self.output.flush_if_idle()?,
                Err(OpError::Record(e)) => {
                    let m = &members[0];
                    bad_record(m.on_error, &m.metrics, &m.name, 0, e)?
                }
                Err(OpError::Fatal(e)) => return Err(Stop::Failed(0, e)),
            }
            if stopped {
                // `dataflow stop`: nothing is read after the savepoint's barrier.
                self.await_finish(members)?;
                return self.finish(members);
            }
            self.commit(members)?;
            self.output.flush_if_due()?;
        }
    }

    fn run_inputs(&mut self, members: &mut [Member]) -> Result<(), Stop> {
        let mut open = self.inputs.len();
        let mut ended = vec![false; self.inputs.len()];
        while open > 0 {
            // A slice per message; slice after slice while the inputs are
            // empty, so a record that arrives waits for one slice at most.
            while Self::copying(members) {
                self.copy_snapshots(members, COPY_BUDGET, true)?;
                // Inputs held for alignment do not count: their records
                // wait for the barrier anyway.
                let waiting = self.inputs.iter().enumerate().any(|(i, r)| {
                    !r.is_empty()
                        && !self
                            .checkpoint
                            .as_ref()
                            .is_some_and(|cp| cp.aligner.is_blocked(i))
                });
                if waiting {
                    break;
                }
            }
            match self.next(&ended)? {
                Next::Message(i, control @ (Message::End | Message::Barrier(_))) => {
                    let mut step = self.control(i, &control, &mut ended, &mut open);
                    while let Step::Snapshot { id, alignment } = step {
                        self.snapshot(members, id, alignment, None)?;
                        step = self
                            .checkpoint
                            .as_mut()
                            .map_or(Step::Continue, |cp| cp.aligner.ready());
                    }
                }
                Next::Message(_, Message::Batch(records)) => {
                    // The received batch becomes the spare one: its
                    // allocation is reused, not freed on this thread.
                    let spent = std::mem::replace(&mut self.batch, records);
                    if self.scratch.capacity() < spent.capacity() {
                        self.scratch = spent;
                    }
                    self.process(members, 0)?;
                }
                Next::Idle => {}
            }
            self.commit(members)?;
            self.output.flush_if_due()?;
        }
        self.finish(members)
    }

    /// Runs `self.batch` through `members[from..]` and passes what comes
    /// out on: into the sink that ends the chain, or to the output.
    fn process(&mut self, members: &mut [Member], from: usize) -> Result<(), Stop> {
        for (k, member) in members.iter_mut().enumerate().skip(from) {
            member.metrics.add_in(self.batch.len());
            let Member {
                role,
                on_error,
                metrics,
                name,
                fail_after: member_fail_after,
                ..
            } = member;
            match role {
                Role::Transform(op) => {
                    for record in self.batch.drain(..) {
                        match op.process(record, &mut self.scratch) {
                            Ok(()) => {}
                            Err(OpError::Record(e)) => bad_record(*on_error, metrics, name, k, e)?,
                            Err(OpError::Fatal(e)) => return Err(Stop::Failed(k, e)),
                        }
                    }
                    metrics.add_out(self.scratch.len());
                    std::mem::swap(&mut self.batch, &mut self.scratch);
                    if member_fail_after.is_some_and(|n| metrics.snapshot().0 >= n)
                        && !INJECTED.swap(true, std::sync::atomic::Ordering::Relaxed)
                    {
                        return Err(Stop::Failed(
                            k,
                            "injected failure (DATAFLOW_INJECT_FAILURE)".into(),
                        ));
                    }
                }
                Role::Sink(sink) => {
                    let written = self.batch.len();
                    let result = sink.write(&self.batch);
                    self.batch.clear();
                    return match result {
                        Ok(()) => {
                            metrics.add_out(written);
                            Ok(())
                        }
                        Err(SinkError::Closed) => Err(Stop::OutputClosed),
                        Err(SinkError::Io(e)) => Err(Stop::Failed(k, e)),
                    };
                }
                Role::Source(_) => {
                    return Err(Stop::Failed(k, "internal error: a chained source".into()))
                }
            }
        }
        self.output.push_all(self.batch.drain(..))?;
        Ok(())
    }

    /// The input has ended and everything before it went through: sinks
    /// commit what the final checkpoint covers and finish, and downstream
    /// instances are told.
    fn finish(&mut self, members: &mut [Member]) -> Result<(), Stop> {
        self.copy_snapshots(members, usize::MAX, false)?;
        // The final checkpoint completed before the sources ended their
        // streams, so its commit is already waiting.
        self.commit(members)?;
        for (k, member) in members.iter_mut().enumerate() {
            if let Role::Sink(sink) = &mut member.role {
                match sink.finish() {
                    Ok(()) => {}
                    Err(SinkError::Closed) => return Err(Stop::OutputClosed),
                    Err(SinkError::Io(e)) => return Err(Stop::Failed(k, e)),
                }
            }
        }
        self.output.end()?;
        Ok(())
    }

    /// The next message from an input that has not ended, or `Idle` when
    /// none came before the next flush is due.
    fn next(&mut self, ended: &[bool]) -> Result<Next, Stop> {
        if self.cancel.is_cancelled() {
            return Err(Stop::Cancelled);
        }
        if self.inputs.len() == 1 {
            match self.inputs[0].try_recv() {
                Ok(m) => return Ok(Next::Message(0, m)),
                Err(TryRecvError::Disconnected) => return Err(Stop::Cancelled),
                Err(TryRecvError::Empty) => self.output.flush_if_idle()?,
            }
            let deadline = self.output.flush_deadline().min(Instant::now() + RECV_POLL);
            let timeout = deadline.saturating_duration_since(Instant::now());
            return match self.inputs[0].recv_timeout(timeout) {
                Ok(m) => Ok(Next::Message(0, m)),
                Err(RecvTimeoutError::Timeout) => Ok(Next::Idle),
                Err(RecvTimeoutError::Disconnected) => Err(Stop::Cancelled),
            };
        }
        let mut select = Select::new();
        let mut live = Vec::with_capacity(self.inputs.len());
        let blocked = |i: usize| {
            self.checkpoint
                .as_ref()
                .is_some_and(|c| c.aligner.is_blocked(i))
        };
        for (i, rx) in self
            .inputs
            .iter()
            .enumerate()
            .filter(|(i, _)| !ended[*i] && !blocked(*i))
        {
            select.recv(rx);
            live.push(i);
        }
        let ready = match select.try_select() {
            Ok(op) => Ok(op),
            Err(_) => {
                self.output.flush_if_idle()?;
                let deadline = self.output.flush_deadline().min(Instant::now() + RECV_POLL);
                select.select_timeout(deadline.saturating_duration_since(Instant::now()))
            }
        };
        match ready {
            Ok(op) => {
                let i = live[op.index()];
                op.recv(&self.inputs[i])
                    .map(|m| Next::Message(i, m))
                    .map_err(|_| Stop::Cancelled)
            }
            Err(_) => Ok(Next::Idle),
        }
    }

    /// Takes a checkpoint for every id the coordinator triggered, with the
    /// source's position after the records already passed on. Returns
    /// whether one was a stop: the source must then read no more.
    fn source_barriers(&mut self, members: &mut [Member]) -> Result<bool, Stop> {
        while let Some(command) = self
            .checkpoint
            .as_ref()
            .and_then(|c| c.triggers.as_ref())
            .and_then(|t| t.try_recv().ok())
        {
            match command {
                SourceCommand::Checkpoint(id) => self.source_barrier(members, id)?,
                SourceCommand::Stop(id) => {
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
        let position = match &members[0].role {
            Role::Source(source) => Some(source.position()),
            _ => None,
        };
        self.snapshot(members, id, Duration::ZERO, position)
    }

    /// With checkpoints, a source whose input has ended stays until a
    /// checkpoint taken after every input ended completes, answering
    /// triggers meanwhile, so the tail of the output gets committed.
    fn await_finish(&mut self, members: &mut [Member]) -> Result<(), Stop> {
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
                Ok(SourceCommand::Checkpoint(id) | SourceCommand::Stop(id)) => {
                    self.source_barrier(members, id)?
                }
                Ok(SourceCommand::Finish) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.commit(members)?;
        }
    }

    /// Commits each sink's output up to every checkpoint completed since last asked.
    fn commit(&mut self, members: &mut [Member]) -> Result<(), Stop> {
        for (k, member) in members.iter_mut().enumerate() {
            let (Role::Sink(sink), Some(commits)) = (
                &mut member.role,
                member.checkpoint.as_ref().and_then(|c| c.commits.as_ref()),
            ) else {
                continue;
            };
            for id in commits.try_iter() {
                sink.on_complete(id)
                    .map_err(|e| Stop::Failed(k, format!("cannot commit checkpoint {id}: {e}")))?;
            }
        }
        Ok(())
    }

    /// Notes an end of input or a barrier on input `i`; says whether the
    /// chain may now snapshot.
    fn control(
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
            Message::Batch(_) => Step::Continue,
        }
    }

    /// Barrier `id` has come on every input (or a source was triggered):
    /// each member takes the synchronous part of its snapshot (a sink
    /// pre-commits), the barrier goes downstream, and then each member's
    /// state goes to its uploader, or it acknowledges at once. A snapshot
    /// whose copying is deferred goes to the uploader once copied.
    fn snapshot(
        &mut self,
        members: &mut [Member],
        id: u64,
        alignment: Duration,
        source_position: Option<serde_json::Value>,
    ) -> Result<(), Stop> {
        // Checkpoints came faster than copying: the earlier one first.
        self.copy_snapshots(members, usize::MAX, true)?;
        let mut taken = Vec::with_capacity(members.len());
        for (k, member) in members.iter_mut().enumerate() {
            let started = Instant::now();
            let snapshot = match &mut member.role {
                Role::Source(_) => Snapshot::Stateless,
                Role::Transform(op) => op
                    .snapshot()
                    .map_err(|e| Stop::Failed(k, format!("cannot snapshot its state: {e}")))?,
                Role::Sink(sink) => {
                    sink.on_barrier(id).map_err(|e| {
                        Stop::Failed(k, format!("cannot pre-commit for checkpoint {id}: {e}"))
                    })?;
                    Snapshot::Stateless
                }
            };
            taken.push((snapshot, started.elapsed()));
        }
        self.output.barrier(id)?;
        let Some(cp) = &self.checkpoint else {
            return Ok(());
        };
        for (k, (member, (snapshot, sync))) in members.iter_mut().zip(taken).enumerate() {
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
                sync,
                alignment,
            };
            if k == 0 {
                ack.source_position = source_position.clone();
            }
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
    fn copy_snapshots(
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
                .map_err(|e| Stop::Failed(k, format!("cannot snapshot its state: {e}")))?;
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
    fn copying(members: &[Member]) -> bool {
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
        .send(UploadTask::Snapshot { changes, ack })
        .map_err(|_| Stop::Failed(k, "its snapshot uploader stopped".into()))
}

/// Applies member `k`'s `on_error` to a record it could not process.
fn bad_record(
    on_error: OnError,
    metrics: &Metrics,
    name: &str,
    k: usize,
    e: RecordError,
) -> Result<(), Stop> {
    match on_error {
        OnError::Fail => Err(Stop::Failed(
            k,
            format!("{e} (set `on_error: skip` or `log` on the node to drop such records)"),
        )),
        OnError::Skip => {
            metrics.add_dropped(1);
            Ok(())
        }
        OnError::Log => {
            metrics.add_dropped(1);
            tracing::warn!("{name}: dropped a record: {e}");
            Ok(())
        }
    }
}
