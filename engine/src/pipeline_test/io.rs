//! The sources and sinks a test swaps in: records given in the tests file,
//! and a sink that keeps what it is given.

use std::sync::{Arc, Mutex};

use crate::nodes::{Delivery, Instance, PlannedSink, PlannedSource};
use crate::operators::{OpError, Poll, Sink, SinkError, Source};
use crate::runtime::cancel::Cancel;
use crate::value::Value;

/// A source that puts out the records a test gives it, then ends. Its
/// first instance puts out all of them, in order, and the others none
/// (an ended input holds no watermark back), so a test's outcome does not
/// depend on how threads run. One record a poll: with event time, the
/// watermark moves after each record, as when records arrive one by one,
/// so a test's order of records is the order lateness is judged in.
#[derive(Debug)]
pub struct Given {
    pub records: Arc<Vec<Value>>,
    /// Watermark steps: after this many records, the watermark is at
    /// (epoch milliseconds); by `after`.
    pub steps: Arc<Vec<(usize, i64)>>,
}

impl PlannedSource for Given {
    fn replayable(&self) -> bool {
        true
    }

    fn build(&self, at: Instance, _: &Cancel) -> Result<Box<dyn Source>, OpError> {
        let (records, steps) = if at.index == 0 {
            (Arc::clone(&self.records), Arc::clone(&self.steps))
        } else {
            Default::default()
        };
        Ok(Box::new(GivenSource {
            records,
            steps,
            next: 0,
            step: 0,
            declared: None,
        }))
    }
}

struct GivenSource {
    records: Arc<Vec<Value>>,
    steps: Arc<Vec<(usize, i64)>>,
    next: usize,
    /// The next watermark step to take.
    step: usize,
    declared: Option<i64>,
}

impl Source for GivenSource {
    /// A record a poll, or a watermark step when one is due before the
    /// next record.
    fn poll(&mut self, out: &mut Vec<Value>, _max: usize) -> Result<Poll, OpError> {
        if let Some(&(after, at)) = self.steps.get(self.step) {
            if after <= self.next {
                self.step += 1;
                self.declared = Some(at);
                return Ok(Poll::Ready);
            }
        }
        let Some(record) = self.records.get(self.next) else {
            return Ok(Poll::End);
        };
        out.push(record.clone());
        self.next += 1;
        Ok(Poll::Ready)
    }

    fn declared_watermark(&mut self) -> Option<i64> {
        self.declared.take()
    }

    fn position(&self) -> serde_json::Value {
        serde_json::Value::from(self.next)
    }
}

/// A sink that keeps every record it is given, from all its instances.
#[derive(Debug, Default)]
pub struct Kept(pub Arc<Mutex<Vec<Value>>>);

impl PlannedSink for Kept {
    fn delivery(&self) -> Delivery {
        Delivery::AtLeastOnce
    }

    fn latency_field(&self) -> Option<&str> {
        None
    }

    fn build(&self, _: Instance, _: bool) -> Result<Box<dyn Sink>, OpError> {
        Ok(Box::new(KeptSink(Arc::clone(&self.0))))
    }
}

struct KeptSink(Arc<Mutex<Vec<Value>>>);

impl Sink for KeptSink {
    fn write(&mut self, batch: &[Value]) -> Result<(), SinkError> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(batch);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}
