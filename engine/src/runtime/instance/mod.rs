//! The loop each chain instance runs on its own thread.
//!
//! A chain is one or more operators fused on one thread (see [`physical`]).
//! Its head is a source, which polls its [`Source`], or reads messages from
//! its inputs (with crossbeam's `Select` when it has several). Each batch
//! then goes through the chain's operators in place and on to the output,
//! or into the sink that ends the chain. Operators see records only; this
//! loop handles batching, end of input, bad records (`on_error`),
//! checkpoint barriers and cancellation, for each member separately; what
//! a barrier, a snapshot or a commit does is [`checkpointing`]'s.
//!
//! [`physical`]: super::physical

mod checkpointing;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Select, TryRecvError};

use super::alignment::Step;
use super::message::Message;
use super::metrics::{Activity, Metrics};
use super::output::{Cancelled, Output};
use super::tap::Tap;
use crate::checkpoint::Ack;
use crate::operators::{OpError, Operator, Poll, RecordError, Sink, SinkError, Source};
use crate::plan::OnError;
use crate::runtime::cancel::Cancel;
use crate::runtime::InstanceError;
use crate::time::inputs::InputWatermarks;
use crate::time::stamper::Stamper;
use crate::time::{now_millis, Watermark, END, START};
use crate::value::Value;
pub use checkpointing::{ChainCheckpointing, MemberCheckpointing};
use checkpointing::{COPY_BUDGET, IDLE_COPY};

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
    pub cause: InstanceError,
}

/// The most a receive waits before looking at the cancellation flag.
const RECV_POLL: Duration = Duration::from_millis(100);

/// How often members that go by the clock see it.
const TICK: Duration = Duration::from_millis(50);

/// One node's instance inside a chain: what is its own even when it
/// shares a thread.
pub struct Member {
    /// `<node>#<index>`.
    pub name: String,
    pub role: Role,
    pub on_error: OnError,
    pub metrics: Arc<Metrics>,
    /// Where `dataflow tap` samples what it puts out.
    pub tap: Arc<Tap>,
    /// Fail once, after this many input records (`DATAFLOW_INJECT_FAILURE`).
    pub fail_after: Option<u64>,
    /// Present when the job takes checkpoints.
    pub checkpoint: Option<MemberCheckpointing>,
    /// The acknowledgement of a snapshot still being copied.
    pub pending: Option<Ack>,
}

/// A chain's part in event time, when its records carry event times.
pub enum ChainTime {
    /// Its head is a source with `event_time`: it stamps the records read
    /// and makes watermarks from them.
    Source(Stamper),
    /// It reads channels: its watermark is its inputs' lowest.
    Inputs(InputWatermarks),
}

pub struct Instance {
    pub inputs: Vec<Receiver<Message>>,
    /// For each input, which of the head node's inputs sends on it.
    pub sides: Vec<usize>,
    pub output: Output,
    pub cancel: Cancel,
    pub batch_size: usize,
    /// Present when the job takes checkpoints.
    pub checkpoint: Option<ChainCheckpointing>,
    pub time: Option<ChainTime>,
    /// Where this thread's waits are counted.
    pub activity: Arc<Activity>,
    /// Upstream first; never empty.
    pub members: Vec<Member>,
}

/// Whether the injected failure has happened: it happens once per process,
/// so a job restarted in the same process recovers.
static INJECTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

enum Next {
    Message(usize, Message),
    Idle,
}

/// Why a loop stopped early.
enum Stop {
    Cancelled,
    OutputClosed,
    /// Boxed: a failure is rare, and every batch's result has room for it.
    Failed(usize, Box<InstanceError>),
}

impl Stop {
    fn failed(member: usize, e: impl Into<InstanceError>) -> Stop {
        Stop::Failed(member, Box::new(e.into()))
    }
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
    sides: Vec<usize>,
    /// Which of the head's inputs the batch going through came from.
    side: usize,
    output: Output,
    cancel: Cancel,
    batch_size: usize,
    checkpoint: Option<ChainCheckpointing>,
    time: Option<ChainTime>,
    activity: Arc<Activity>,
    /// The batch going through the chain, and the one its next operator
    /// fills; each with its records' event times, or none.
    batch: Vec<Value>,
    scratch: Vec<Value>,
    times: Vec<i64>,
    scratch_times: Vec<i64>,
    /// Records a source's `event_time` could not stamp.
    unstamped: Vec<RecordError>,
    /// Late records of the last member, for its late output, and their times.
    late: Vec<Value>,
    late_times: Vec<i64>,
    /// Whether a member goes by the clock, and when it last saw it.
    ticking: bool,
    last_tick: Instant,
    /// Without event time: which inputs have sent the end of time.
    ended_time: Vec<bool>,
}

impl Instance {
    /// Runs until the input ends, the job is cancelled or a member fails.
    pub fn run(self) -> Result<Finish, Failure> {
        let Instance {
            inputs,
            sides,
            output,
            cancel,
            batch_size,
            checkpoint,
            time,
            activity,
            mut members,
        } = self;
        let timed = time.is_some();
        let times = |n| {
            if timed {
                Vec::with_capacity(n)
            } else {
                Vec::new()
            }
        };
        let mut io = Io {
            inputs,
            sides,
            side: 0,
            output,
            cancel,
            batch_size,
            checkpoint,
            time,
            activity,
            batch: Vec::with_capacity(batch_size),
            scratch: Vec::with_capacity(batch_size),
            times: times(batch_size),
            scratch_times: times(batch_size),
            unstamped: Vec::new(),
            late: Vec::new(),
            late_times: Vec::new(),
            ticking: members
                .iter()
                .any(|m| matches!(&m.role, Role::Transform(op) if op.wants_ticks())),
            last_tick: Instant::now(),
            ended_time: Vec::new(),
        };
        io.ended_time = vec![false; io.inputs.len()];
        let result = if matches!(members.first().map(|m| &m.role), Some(Role::Source(_))) {
            io.run_source(&mut members)
        } else {
            io.run_inputs(&mut members)
        };
        match result {
            Ok(()) => Ok(Finish::Done),
            Err(Stop::Cancelled) => Ok(Finish::Cancelled),
            Err(Stop::OutputClosed) => Ok(Finish::OutputClosed),
            Err(Stop::Failed(member, cause)) => Err(Failure {
                member,
                cause: *cause,
            }),
        }
    }
}

impl Io {
    fn run_source(&mut self, members: &mut [Member]) -> Result<(), Stop> {
        // Restored: the chain is where the checkpoint was in event time
        // before any record comes.
        if let Some(ChainTime::Source(stamper)) = &mut self.time {
            if let Some(watermark) = stamper.after_poll(0, Instant::now()) {
                self.watermark(members, 1, watermark)?;
            }
        }
        loop {
            if self.cancel.is_cancelled() {
                return Err(Stop::Cancelled);
            }
            let Role::Source(source) = &mut members[0].role else {
                return Err(Stop::failed(0, InstanceError::Bug("no source")));
            };
            // A poll that could not fill a batch spent its time waiting for
            // input (a socket's or stdin's read, a rate limit): idle.
            let polled = Instant::now();
            let poll = source.poll(&mut self.batch, self.batch_size);
            if matches!(poll, Ok(Poll::Idle)) || self.batch.len() < self.batch_size {
                self.activity.add_idle(polled);
            }
            members[0].metrics.add_out(self.batch.len());
            members[0].tap.offer(&self.batch);
            let read = self.batch.len();
            if let Some(ChainTime::Source(stamper)) = &mut self.time {
                let splits = match &members[0].role {
                    Role::Source(source) => source.splits().map(|s| (s, Instant::now())),
                    _ => None,
                };
                stamper.stamp(
                    &mut self.batch,
                    &mut self.times,
                    now_millis(),
                    &mut self.unstamped,
                    splits,
                );
                let m = &members[0];
                for e in self.unstamped.drain(..) {
                    bad_record(m.on_error, &m.metrics, &m.name, 0, e)?;
                }
            }
            self.process(members, 1)?;
            if let Some(ChainTime::Source(stamper)) = &mut self.time {
                let declared = match &mut members[0].role {
                    Role::Source(source) => source.declared_watermark(),
                    _ => None,
                };
                let made = stamper.after_poll(read, Instant::now());
                let declared = declared.and_then(|at| stamper.declared(at));
                for watermark in made.into_iter().chain(declared) {
                    self.watermark(members, 1, watermark)?;
                }
            }
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
                    // A finished input closes every window, as in Flink,
                    // before the final checkpoint commits what they made:
                    // windows of processing time too, after a source
                    // without event time.
                    self.watermark(members, 1, Watermark::At(END))?;
                    self.await_finish(members)?;
                    return self.finish(members);
                }
                Ok(Poll::Ready) => {}
                Ok(Poll::Idle) => self.output.flush_if_idle()?,
                Err(OpError::Record(e)) => {
                    let m = &members[0];
                    bad_record(m.on_error, &m.metrics, &m.name, 0, e)?
                }
                Err(e) => return Err(Stop::failed(0, e)),
            }
            if stopped {
                // `dataflow stop`: nothing is read after the savepoint's barrier.
                self.await_finish(members)?;
                return self.finish(members);
            }
            self.commit(members)?;
            self.tick(members)?;
            self.output.flush_if_due()?;
        }
    }

    fn run_inputs(&mut self, members: &mut [Member]) -> Result<(), Stop> {
        if let Some(ChainTime::Inputs(inputs)) = &self.time {
            if inputs.current() > START {
                self.watermark(members, 0, Watermark::At(inputs.current()))?;
            }
        }
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
                Next::Message(i, Message::Watermark(watermark)) => match &mut self.time {
                    Some(ChainTime::Inputs(inputs)) => {
                        if let Some(watermark) = inputs.update(i, watermark) {
                            self.watermark(members, 0, watermark)?;
                        }
                    }
                    // Without event time, only the end of every input's
                    // time matters: it closes windows of processing time.
                    _ if self.ticking && watermark == Watermark::At(END) => {
                        self.ended_time[i] = true;
                        if self.ended_time.iter().all(|&e| e) {
                            self.watermark(members, 0, watermark)?;
                        }
                    }
                    _ => {}
                },
                // The end of a stream is no end of event time: an input
                // that ended sent `END` before, and one stopped by
                // `dataflow stop` leaves its windows open in the savepoint.
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
                Next::Message(i, Message::Batch(records, times)) => {
                    if !times.is_empty() && times.len() != records.len() {
                        return Err(Stop::failed(
                            0,
                            InstanceError::Bug(
                                "a batch's event times are out of step with its records",
                            ),
                        ));
                    }
                    // The received batch becomes the spare one: its
                    // allocation is reused, not freed on this thread.
                    let spent = std::mem::replace(&mut self.batch, records);
                    if self.scratch.capacity() < spent.capacity() {
                        self.scratch = spent;
                    }
                    // A chain without event time (a union of a source with
                    // it and one without) passes no times on: some of its
                    // records would have none.
                    if self.time.is_some() {
                        let spent = std::mem::replace(&mut self.times, times);
                        if self.scratch_times.capacity() < spent.capacity() {
                            self.scratch_times = spent;
                        }
                    }
                    self.side = self.sides.get(i).copied().unwrap_or(0);
                    self.process(members, 0)?;
                    self.side = 0;
                }
                Next::Idle => {}
            }
            self.commit(members)?;
            self.tick(members)?;
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
                tap,
                ..
            } = member;
            match role {
                Role::Transform(op) => {
                    let timed = !self.times.is_empty();
                    let mut times = self.times.drain(..);
                    for record in self.batch.drain(..) {
                        let result = match times.next() {
                            Some(time) if k == 0 && self.side > 0 => op.process_input(
                                self.side,
                                record,
                                time,
                                &mut self.scratch,
                                &mut self.scratch_times,
                            ),
                            Some(time) => op.process_at(
                                record,
                                time,
                                &mut self.scratch,
                                &mut self.scratch_times,
                            ),
                            None => op.process(record, &mut self.scratch),
                        };
                        match result {
                            Ok(()) => {}
                            Err(OpError::Record(e)) => bad_record(*on_error, metrics, name, k, e)?,
                            Err(e) => return Err(Stop::failed(k, e)),
                        }
                    }
                    drop(times);
                    debug_assert!(!timed || self.scratch_times.len() == self.scratch.len());
                    metrics.add_out(self.scratch.len());
                    let late = op.late_records();
                    if late > 0 {
                        metrics.add_late(late);
                        op.take_late_output(&mut self.late, &mut self.late_times);
                        if !self.late.is_empty() {
                            self.output
                                .push_late(self.late.drain(..), &self.late_times)?;
                            self.late_times.clear();
                        }
                    }
                    std::mem::swap(&mut self.batch, &mut self.scratch);
                    std::mem::swap(&mut self.times, &mut self.scratch_times);
                    tap.offer(&self.batch);
                    if member_fail_after.is_some_and(|n| metrics.snapshot().0 >= n)
                        && !INJECTED.swap(true, std::sync::atomic::Ordering::Relaxed)
                    {
                        return Err(Stop::failed(k, InstanceError::Injected));
                    }
                }
                Role::Sink(sink) => {
                    tap.offer(&self.batch);
                    let written = self.batch.len();
                    let result = sink.write(&self.batch);
                    self.batch.clear();
                    self.times.clear();
                    return match result {
                        Ok(()) => {
                            metrics.add_out(written);
                            Ok(())
                        }
                        Err(SinkError::Closed) => Err(Stop::OutputClosed),
                        Err(e) => Err(Stop::failed(k, OpError::from(e))),
                    };
                }
                Role::Source(_) => {
                    return Err(Stop::failed(k, InstanceError::Bug("a chained source")))
                }
            }
        }
        self.output.push_all(self.batch.drain(..), &self.times)?;
        self.times.clear();
        Ok(())
    }

    /// The chain's watermark has reached `watermark`: each operator from
    /// `members[from]` on passes on what it held for it (through the rest
    /// of the chain), then the watermark goes downstream.
    fn watermark(
        &mut self,
        members: &mut [Member],
        from: usize,
        watermark: Watermark,
    ) -> Result<(), Stop> {
        if let Watermark::At(at) = watermark {
            for member in members.iter() {
                member.metrics.watermark.store(at, Ordering::Relaxed);
            }
            for k in from..members.len() {
                let member = &mut members[k];
                match &mut member.role {
                    Role::Transform(op) => {
                        let result = op.on_watermark(at, &mut self.batch, &mut self.times);
                        let late = op.late_records();
                        if late > 0 {
                            member.metrics.add_late(late);
                        }
                        self.pass_on(members, k, result)?;
                    }
                    // Sinks have no use for it.
                    Role::Sink(_) => return Ok(()),
                    Role::Source(_) => {}
                }
            }
        }
        self.output.watermark(watermark)?;
        Ok(())
    }

    /// What member `k` put out apart from a record (at a watermark or a
    /// tick), in `self.batch`: its failure handled by its `on_error`, the
    /// rest through the chain after it.
    fn pass_on(
        &mut self,
        members: &mut [Member],
        k: usize,
        result: Result<(), OpError>,
    ) -> Result<(), Stop> {
        let member = &members[k];
        match result {
            Ok(()) => {}
            Err(OpError::Record(e)) => {
                bad_record(member.on_error, &member.metrics, &member.name, k, e)?
            }
            Err(e) => return Err(Stop::failed(k, e)),
        }
        if self.time.is_none() {
            self.times.clear();
        }
        member.metrics.add_out(self.batch.len());
        member.tap.offer(&self.batch);
        if !self.batch.is_empty() {
            self.process(members, k + 1)?;
        }
        Ok(())
    }

    /// Every [`TICK`], the members that go by the clock (windows of
    /// processing time) see it, and what they pass on goes through the
    /// rest of the chain.
    fn tick(&mut self, members: &mut [Member]) -> Result<(), Stop> {
        if !self.ticking || self.last_tick.elapsed() < TICK {
            return Ok(());
        }
        self.last_tick = Instant::now();
        let now = now_millis();
        for k in 0..members.len() {
            let member = &mut members[k];
            let Role::Transform(op) = &mut member.role else {
                continue;
            };
            if !op.wants_ticks() {
                continue;
            }
            let result = op.on_tick(now, &mut self.batch, &mut self.times);
            self.pass_on(members, k, result)?;
        }
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
                    Err(e) => return Err(Stop::failed(k, OpError::from(e))),
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
            let waited = Instant::now();
            let deadline = self.output.flush_deadline().min(waited + RECV_POLL);
            let received = self.inputs[0].recv_timeout(deadline.saturating_duration_since(waited));
            self.activity.add_idle(waited);
            return match received {
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
                let waited = Instant::now();
                let deadline = self.output.flush_deadline().min(waited + RECV_POLL);
                let ready = select.select_timeout(deadline.saturating_duration_since(waited));
                self.activity.add_idle(waited);
                ready
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
        OnError::Fail => Err(Stop::failed(k, InstanceError::BadRecord(e))),
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
