//! The loop each instance runs on its own thread.
//!
//! A source polls its [`Source`] and pushes into its output; a transform or
//! sink receives messages from its inputs (with crossbeam's `Select` when
//! it has several), runs its operator on each batch and passes the results
//! on. Operators see records only; this loop handles batching, end of
//! input, bad records (`on_error`) and cancellation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Select, Sender};

use super::alignment::{Aligner, Step};
use super::message::Message;
use super::metrics::Metrics;
use super::output::{Cancelled, Output};
use crate::checkpoint::uploader::UploadTask;
use crate::checkpoint::{Ack, Report, SourceCommand};
use crate::operators::sources::Cancel;
use crate::operators::{OpError, Operator, Poll, RecordError, Sink, SinkError, Source};
use crate::spec::OnError;
use crate::state::Changes;
use crate::value::Value;

/// What an instance runs.
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

/// The most a receive waits before looking at the cancellation flag.
const RECV_POLL: Duration = Duration::from_millis(100);

pub struct Instance {
    pub on_error: OnError,
    pub name: String,
    pub inputs: Vec<Receiver<Message>>,
    pub output: Output,
    pub metrics: Arc<Metrics>,
    pub cancel: Cancel,
    pub batch_size: usize,
    /// Present when the job takes checkpoints.
    pub checkpoint: Option<Checkpointing>,
    /// Fail once, after this many input records (`DATAFLOW_INJECT_FAILURE`).
    pub fail_after: Option<u64>,
}

/// Whether the injected failure has happened: it happens once per process,
/// so a job restarted in the same process recovers.
static INJECTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// An instance's part in checkpoints.
pub struct Checkpointing {
    pub node: String,
    pub index: u32,
    pub parallelism: u32,
    /// Sources: checkpoint ids to emit barriers for.
    pub triggers: Option<Receiver<SourceCommand>>,
    /// Sinks: ids of completed checkpoints, to commit.
    pub commits: Option<Receiver<u64>>,
    pub reports: Sender<Report>,
    /// Stateful operators: where the asynchronous part of a snapshot goes.
    pub uploader: Option<Sender<UploadTask>>,
    pub aligner: Aligner,
}

enum Next {
    Message(usize, Message),
    Idle,
}

impl Instance {
    /// Runs until the input ends, the job is cancelled or the instance fails
    /// (with the cause as the error).
    pub fn run(mut self, role: Role) -> Result<Finish, String> {
        let result = match role {
            Role::Source(source) => self.run_source(source),
            Role::Transform(op) => self.run_transform(op),
            Role::Sink(sink) => self.run_sink(sink),
        };
        match result {
            Err(Stop::Cancelled) => Ok(Finish::Cancelled),
            Err(Stop::Failed(e)) => Err(e),
            Ok(finish) => Ok(finish),
        }
    }

    fn run_source(&mut self, mut source: Box<dyn Source>) -> Result<Finish, Stop> {
        let mut batch: Vec<Value> = Vec::with_capacity(self.batch_size);
        loop {
            if self.cancel.is_cancelled() {
                return Err(Stop::Cancelled);
            }
            let poll = source.poll(&mut batch, self.batch_size);
            self.metrics.add_out(batch.len());
            self.output.push_all(batch.drain(..))?;
            self.source_barriers(&*source)?;
            match poll {
                Ok(Poll::End) => {
                    self.await_finish(&*source)?;
                    self.output.end()?;
                    return Ok(Finish::Done);
                }
                Ok(Poll::Ready | Poll::Idle) => {}
                Err(OpError::Record(e)) => self.bad_record(e)?,
                Err(OpError::Fatal(e)) => return Err(Stop::Failed(e)),
            }
            self.output.flush_if_due()?;
        }
    }

    fn run_transform(&mut self, mut op: Box<dyn Operator>) -> Result<Finish, Stop> {
        let mut produced = Vec::with_capacity(self.batch_size);
        let mut open = self.inputs.len();
        let mut ended = vec![false; self.inputs.len()];
        while open > 0 {
            match self.next(&ended)? {
                Next::Message(i, control @ (Message::End | Message::Barrier(_))) => {
                    let step = self.control(i, &control, &mut ended, &mut open);
                    self.snapshot_if(step, || op.snapshot())?;
                }
                Next::Message(_, Message::Batch(records)) => {
                    self.metrics.add_in(records.len());
                    for record in records {
                        match op.process(record, &mut produced) {
                            Ok(()) => {}
                            Err(OpError::Record(e)) => self.bad_record(e)?,
                            Err(OpError::Fatal(e)) => return Err(Stop::Failed(e)),
                        }
                    }
                    self.metrics.add_out(produced.len());
                    self.output.push_all(produced.drain(..))?;
                    if self
                        .fail_after
                        .is_some_and(|n| self.metrics.snapshot().0 >= n)
                        && !INJECTED.swap(true, std::sync::atomic::Ordering::Relaxed)
                    {
                        return Err(Stop::Failed(
                            "injected failure (DATAFLOW_INJECT_FAILURE)".into(),
                        ));
                    }
                }
                Next::Idle => {}
            }
            self.output.flush_if_due()?;
        }
        self.output.end()?;
        Ok(Finish::Done)
    }

    fn run_sink(&mut self, mut sink: Box<dyn Sink>) -> Result<Finish, Stop> {
        let mut open = self.inputs.len();
        let mut ended = vec![false; self.inputs.len()];
        while open > 0 {
            match self.next(&ended)? {
                Next::Message(i, control @ (Message::End | Message::Barrier(_))) => {
                    let step = self.control(i, &control, &mut ended, &mut open);
                    self.sink_barrier(step, &mut *sink)?;
                }
                Next::Message(_, Message::Batch(records)) => {
                    self.metrics.add_in(records.len());
                    match sink.write(&records) {
                        Ok(()) => self.metrics.add_out(records.len()),
                        Err(SinkError::Closed) => return Ok(Finish::OutputClosed),
                        Err(SinkError::Io(e)) => return Err(Stop::Failed(e)),
                    }
                }
                Next::Idle => {}
            }
            self.commit(&mut *sink)?;
        }
        // The final checkpoint completed before the sources ended their
        // streams, so its commit is already waiting.
        self.commit(&mut *sink)?;
        match sink.finish() {
            Ok(()) => Ok(Finish::Done),
            Err(SinkError::Closed) => Ok(Finish::OutputClosed),
            Err(SinkError::Io(e)) => Err(Stop::Failed(e)),
        }
    }

    /// The next message from an input that has not ended, or `Idle` when
    /// none came before the next flush is due.
    fn next(&self, ended: &[bool]) -> Result<Next, Stop> {
        if self.cancel.is_cancelled() {
            return Err(Stop::Cancelled);
        }
        let deadline = self.output.flush_deadline().min(Instant::now() + RECV_POLL);
        let timeout = deadline.saturating_duration_since(Instant::now());
        if self.inputs.len() == 1 {
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
        match select.select_timeout(timeout) {
            Ok(op) => {
                let i = live[op.index()];
                op.recv(&self.inputs[i])
                    .map(|m| Next::Message(i, m))
                    .map_err(|_| Stop::Cancelled)
            }
            Err(_) => Ok(Next::Idle),
        }
    }

    /// Emits a barrier for every checkpoint the coordinator triggered, with
    /// the source's position after the records already passed on.
    fn source_barriers(&mut self, source: &dyn Source) -> Result<(), Stop> {
        while let Some(command) = self
            .checkpoint
            .as_ref()
            .and_then(|c| c.triggers.as_ref())
            .and_then(|t| t.try_recv().ok())
        {
            // `Finish` only ever comes after the input ended (see `await_finish`).
            if let SourceCommand::Checkpoint(id) = command {
                self.source_barrier(id, source)?;
            }
        }
        Ok(())
    }

    fn source_barrier(&mut self, id: u64, source: &dyn Source) -> Result<(), Stop> {
        self.output.barrier(id)?;
        let mut ack = self.ack(id, Duration::ZERO, Duration::ZERO);
        ack.source_position = Some(source.position());
        if let Some(cp) = &self.checkpoint {
            let _ = cp.reports.send(Report::Ack(ack));
        }
        Ok(())
    }

    /// With checkpoints, a source whose input has ended stays until a
    /// checkpoint taken after every input ended completes, answering
    /// triggers meanwhile, so the tail of the output gets committed.
    fn await_finish(&mut self, source: &dyn Source) -> Result<(), Stop> {
        let Some(cp) = &self.checkpoint else {
            return Ok(());
        };
        let Some(triggers) = cp.triggers.clone() else {
            return Ok(());
        };
        let _ = cp.reports.send(Report::InputEnded {
            instance: self.name.clone(),
        });
        self.output.flush()?;
        loop {
            if self.cancel.is_cancelled() {
                return Err(Stop::Cancelled);
            }
            match triggers.recv_timeout(RECV_POLL) {
                Ok(SourceCommand::Checkpoint(id)) => self.source_barrier(id, source)?,
                Ok(SourceCommand::Finish) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Pre-commits a sink's output at a barrier, then acknowledges.
    fn sink_barrier(&mut self, step: Step, sink: &mut dyn Sink) -> Result<(), Stop> {
        if let Step::Snapshot { id, .. } = step {
            sink.on_barrier(id)
                .map_err(|e| Stop::Failed(format!("cannot pre-commit for checkpoint {id}: {e}")))?;
        }
        self.snapshot_if(step, || Ok(None))
    }

    /// Commits a sink's output up to every checkpoint completed since last asked.
    fn commit(&mut self, sink: &mut dyn Sink) -> Result<(), Stop> {
        let Some(commits) = self.checkpoint.as_ref().and_then(|c| c.commits.as_ref()) else {
            return Ok(());
        };
        for id in commits.try_iter() {
            sink.on_complete(id)
                .map_err(|e| Stop::Failed(format!("cannot commit checkpoint {id}: {e}")))?;
        }
        Ok(())
    }

    /// Notes an end of input or a barrier on input `i`; says whether the
    /// instance may now snapshot.
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

    /// When a barrier has come on every input: takes the synchronous part
    /// of the snapshot, forwards the barrier, and hands the rest to the
    /// uploader (or acknowledges at once when there is no state).
    fn snapshot_if(
        &mut self,
        step: Step,
        take: impl FnOnce() -> Result<Option<Changes>, OpError>,
    ) -> Result<(), Stop> {
        let Step::Snapshot { id, alignment } = step else {
            return Ok(());
        };
        let started = Instant::now();
        let changes =
            take().map_err(|e| Stop::Failed(format!("cannot snapshot its state: {e}")))?;
        let sync = started.elapsed();
        self.output.barrier(id)?;
        let ack = self.ack(id, sync, alignment);
        let Some(cp) = &self.checkpoint else {
            return Ok(());
        };
        match (changes, &cp.uploader) {
            (Some(changes), Some(uploader)) => {
                if uploader
                    .send(UploadTask::Snapshot { changes, ack })
                    .is_err()
                {
                    return Err(Stop::Failed("its snapshot uploader stopped".into()));
                }
            }
            _ => {
                let _ = cp.reports.send(Report::Ack(ack));
            }
        }
        Ok(())
    }

    fn ack(&self, id: u64, sync: Duration, alignment: Duration) -> Ack {
        let (node, index, parallelism) =
            self.checkpoint.as_ref().map_or((String::new(), 0, 1), |c| {
                (c.node.clone(), c.index, c.parallelism)
            });
        Ack {
            id,
            instance: self.name.clone(),
            node,
            index,
            parallelism,
            files: Vec::new(),
            source_position: None,
            sync,
            alignment,
        }
    }

    /// Applies the node's `on_error` to a record that could not be processed.
    fn bad_record(&self, e: RecordError) -> Result<(), Stop> {
        match self.on_error {
            OnError::Fail => Err(Stop::Failed(format!(
                "{e} (set `on_error: skip` or `log` on the node to drop such records)"
            ))),
            OnError::Skip => {
                self.metrics.add_dropped(1);
                Ok(())
            }
            OnError::Log => {
                self.metrics.add_dropped(1);
                tracing::warn!("{}: dropped a record: {e}", self.name);
                Ok(())
            }
        }
    }
}

/// Why an instance loop stopped early.
enum Stop {
    Cancelled,
    Failed(String),
}

impl From<Cancelled> for Stop {
    fn from(_: Cancelled) -> Self {
        Stop::Cancelled
    }
}
