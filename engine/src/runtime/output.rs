//! An instance's output: batching and partitioning onto its out-edges.
//!
//! Records are appended to one buffer per downstream channel and sent when
//! the buffer is full or when `buffer_timeout` has passed since the last
//! flush: one channel send per batch, never per record.

use std::time::{Duration, Instant};

use std::sync::Arc;

use crossbeam_channel::{SendTimeoutError, Sender, TrySendError};

use super::message::Message;
use super::metrics::Activity;
use crate::expr::Expr;
use crate::plan::EdgeKind;
use crate::runtime::cancel::Cancel;
use crate::state::{encode_key, key_group};
use crate::time::Watermark;
use crate::value::Value;

/// The job was cancelled while this instance was waiting to send.
#[derive(Debug)]
pub struct Cancelled;

/// What a send that has to wait needs: when to give up, and where the
/// time it waited is counted (backpressure).
pub struct Waits {
    pub cancel: Cancel,
    pub activity: Arc<Activity>,
}

/// The least time between two flushes of an idle instance: bounds the
/// channel sends of a trickle of records to a thousand per second.
const IDLE_FLUSH: Duration = Duration::from_millis(1);

/// How often a blocked send looks at the cancellation flag.
const SEND_POLL: Duration = Duration::from_millis(100);

/// The channels of one edge, from this instance to the downstream instances.
pub struct OutEdge {
    pub kind: EdgeKind,
    /// Forward: one channel; rebalance and hash: one per downstream instance.
    pub senders: Vec<Sender<Message>>,
    /// The downstream node's key, for hash edges.
    pub key: Option<Expr>,
    pub max_parallelism: u32,
    buffers: Vec<Vec<Value>>,
    /// The records' event times, beside `buffers` (empty when untimed).
    times: Vec<Vec<i64>>,
    next: usize,
    key_buf: Vec<u8>,
}

impl OutEdge {
    pub fn new(
        kind: EdgeKind,
        senders: Vec<Sender<Message>>,
        key: Option<Expr>,
        max_parallelism: u32,
    ) -> OutEdge {
        let buffers = senders.iter().map(|_| Vec::new()).collect();
        let times = senders.iter().map(|_| Vec::new()).collect();
        OutEdge {
            kind,
            senders,
            key,
            max_parallelism,
            buffers,
            times,
            next: 0,
            key_buf: Vec::new(),
        }
    }

    fn push(
        &mut self,
        record: Value,
        time: Option<i64>,
        batch_size: usize,
        waits: &Waits,
    ) -> Result<(), Cancelled> {
        let t = self.target(&record);
        let buffer = &mut self.buffers[t];
        buffer.push(record);
        if let Some(time) = time {
            self.times[t].push(time);
        }
        if buffer.len() >= batch_size {
            let batch = std::mem::replace(buffer, Vec::with_capacity(batch_size));
            let times = take_times(&mut self.times[t], batch_size);
            send(&self.senders[t], Message::Batch(batch, times), waits)?;
        }
        Ok(())
    }

    /// The downstream channel a record goes to.
    fn target(&mut self, record: &Value) -> usize {
        let n = self.senders.len();
        match self.kind {
            EdgeKind::Forward => 0,
            EdgeKind::Rebalance => {
                self.next = (self.next + 1) % n;
                self.next
            }
            EdgeKind::Hash => {
                // A record whose key cannot be computed goes to the first
                // instance, whose operator reports it under its `on_error`.
                let Some(Ok(key)) = self.key.as_ref().map(|k| k.eval_ref(record)) else {
                    return 0;
                };
                self.key_buf.clear();
                encode_key(&key, &mut self.key_buf);
                let kg = key_group(&self.key_buf, self.max_parallelism);
                crate::state::owner(kg, n as u32, self.max_parallelism) as usize
            }
        }
    }
}

pub struct Output {
    edges: Vec<OutEdge>,
    /// The edges of the last member's late records, apart from its output.
    late_edges: Vec<OutEdge>,
    batch_size: usize,
    buffer_timeout: Duration,
    last_flush: Instant,
    waits: Waits,
}

impl Output {
    pub fn new(
        edges: Vec<OutEdge>,
        late_edges: Vec<OutEdge>,
        batch_size: usize,
        buffer_timeout: Duration,
        waits: Waits,
    ) -> Output {
        Output {
            edges,
            late_edges,
            batch_size,
            buffer_timeout,
            last_flush: Instant::now(),
            waits,
        }
    }

    /// Routes records to their downstream buffers, sending full batches.
    /// `times` is empty, or holds each record's event time.
    pub fn push_all(
        &mut self,
        records: impl Iterator<Item = Value>,
        times: &[i64],
    ) -> Result<(), Cancelled> {
        push_to(
            &mut self.edges,
            records,
            times,
            self.batch_size,
            &self.waits,
        )
    }

    /// [`push_all`](Output::push_all) of late records, onto the edges
    /// that read them (`inputs: [w.late]`).
    pub fn push_late(
        &mut self,
        records: impl Iterator<Item = Value>,
        times: &[i64],
    ) -> Result<(), Cancelled> {
        push_to(
            &mut self.late_edges,
            records,
            times,
            self.batch_size,
            &self.waits,
        )
    }

    /// When the next timed flush is due.
    pub fn flush_deadline(&self) -> Instant {
        self.last_flush + self.buffer_timeout
    }

    /// Sends partial batches if `buffer_timeout` has passed since the last flush.
    pub fn flush_if_due(&mut self) -> Result<(), Cancelled> {
        if Instant::now() >= self.flush_deadline() {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends partial batches when this instance has nothing more to add
    /// right now (its input is empty, its source is waiting), at most once
    /// per [`IDLE_FLUSH`]. Under load inputs are never empty and batches
    /// fill; at low rates records do not wait for `buffer_timeout`.
    pub fn flush_if_idle(&mut self) -> Result<(), Cancelled> {
        if self.last_flush.elapsed() >= IDLE_FLUSH {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends every partial batch now.
    pub fn flush(&mut self) -> Result<(), Cancelled> {
        for edge in self.edges.iter_mut().chain(&mut self.late_edges) {
            for ((buffer, times), sender) in edge
                .buffers
                .iter_mut()
                .zip(&mut edge.times)
                .zip(&edge.senders)
            {
                if !buffer.is_empty() {
                    let batch = std::mem::replace(buffer, Vec::with_capacity(self.batch_size));
                    let times = take_times(times, self.batch_size);
                    send(sender, Message::Batch(batch, times), &self.waits)?;
                }
            }
        }
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Flushes, then sends barrier `id` on every channel, after the records before it.
    pub fn barrier(&mut self, id: u64) -> Result<(), Cancelled> {
        self.broadcast(|| Message::Barrier(id))
    }

    /// Flushes, then sends `watermark` on every channel, after the records before it.
    pub fn watermark(&mut self, watermark: Watermark) -> Result<(), Cancelled> {
        self.broadcast(|| Message::Watermark(watermark))
    }

    /// Flushes, then tells every downstream instance this one has ended.
    pub fn end(&mut self) -> Result<(), Cancelled> {
        self.broadcast(|| Message::End)
    }

    fn broadcast(&mut self, message: impl Fn() -> Message) -> Result<(), Cancelled> {
        self.flush()?;
        for edge in self.edges.iter().chain(&self.late_edges) {
            for sender in &edge.senders {
                send(sender, message(), &self.waits)?;
            }
        }
        Ok(())
    }
}

/// Routes records to the buffers of `edges`: each to every edge, cloned
/// for all but the last.
fn push_to(
    edges: &mut [OutEdge],
    records: impl Iterator<Item = Value>,
    times: &[i64],
    batch_size: usize,
    waits: &Waits,
) -> Result<(), Cancelled> {
    let Some((last, others)) = edges.split_last_mut() else {
        return Ok(());
    };
    for (i, record) in records.enumerate() {
        let time = times.get(i).copied();
        for edge in others.iter_mut() {
            edge.push(record.clone(), time, batch_size, waits)?;
        }
        last.push(record, time, batch_size, waits)?;
    }
    Ok(())
}

/// A buffer's times to send, leaving room for the next batch's: none for
/// records without event times.
fn take_times(times: &mut Vec<i64>, batch_size: usize) -> Vec<i64> {
    if times.is_empty() {
        return Vec::new();
    }
    std::mem::replace(times, Vec::with_capacity(batch_size))
}

/// Sends, blocking while the channel is full (backpressure, counted) but
/// giving up when the job is cancelled.
fn send(sender: &Sender<Message>, msg: Message, waits: &Waits) -> Result<(), Cancelled> {
    let mut msg = match sender.try_send(msg) {
        Ok(()) => return Ok(()),
        Err(TrySendError::Full(m)) => m,
        Err(TrySendError::Disconnected(_)) => return Err(Cancelled),
    };
    // Counted after each poll, not only once the send goes through: a
    // reader stuck for good shows as backpressure while it lasts.
    let mut since = Instant::now();
    let sent = loop {
        match sender.send_timeout(msg, SEND_POLL) {
            Ok(()) => break Ok(()),
            Err(SendTimeoutError::Timeout(m)) => {
                since = waits.activity.add_blocked(since);
                if waits.cancel.is_cancelled() {
                    break Err(Cancelled);
                }
                msg = m;
            }
            Err(SendTimeoutError::Disconnected(_)) => break Err(Cancelled),
        }
    };
    waits.activity.add_blocked(since);
    sent
}
