//! Latency at a sink: a sink's `latency_field` names an integer field
//! holding each record's source time (microseconds since the Unix epoch, as
//! a `generate` source's `time_field` writes), and every record written is
//! recorded as now − that time in an HDR histogram.
//!
//! [`Timed`] wraps any sink, so print, file and blackhole measure alike; it
//! records into a [`Latency`] the run shares with the summary, which
//! reports its percentiles when the job ends. Records without the field,
//! or with a value that is not an integer, are counted, never failed.

use std::sync::{Arc, Mutex, PoisonError};

use hdrhistogram::Histogram;

use crate::operators::{epoch_micros, Sink, SinkError};
use crate::value::{intern, Name, Value};

/// The longest latency told apart from longer ones: an hour, in µs.
const MAX_MICROS: u64 = 3_600_000_000;

/// What one sink instance measured. Empty until a sink that measures
/// latency is built around it.
#[derive(Default, Debug)]
pub struct Latency {
    measured: Mutex<Option<Measured>>,
}

/// A sink instance's latencies, in microseconds.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The field the source time is read from.
    pub field: Name,
    pub histogram: Histogram<u64>,
    /// Records that had no integer in `field`.
    pub untimed: u64,
}

impl Measured {
    fn new(field: Name) -> Measured {
        Measured {
            field,
            // Three significant digits: 0.1 % of the value at most.
            histogram: Histogram::new_with_bounds(1, MAX_MICROS, 3)
                .expect("constant, valid histogram bounds"),
            untimed: 0,
        }
    }

    /// Adds another instance's figures (of the same sink) to these.
    pub fn merge(&mut self, other: &Measured) {
        // Equal bounds, so adding cannot fail.
        let _ = self.histogram.add(&other.histogram);
        self.untimed += other.untimed;
    }

    /// `p50 1.20 ms, p99 3.10 ms, max 9.80 ms over 20000 records`, and
    /// how many records were not timed.
    pub fn describe(&self) -> String {
        let ms = |us: u64| us as f64 / 1e3;
        let h = &self.histogram;
        if h.is_empty() && self.untimed == 0 {
            return "no records".to_owned();
        }
        if h.is_empty() {
            return format!(
                "none of {} records had an integer `{}`",
                self.untimed, self.field
            );
        }
        let mut s = format!(
            "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} records",
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.99)),
            ms(h.max()),
            h.len()
        );
        if self.untimed > 0 {
            s.push_str(&format!(
                ", {} without an integer `{}`",
                self.untimed, self.field
            ));
        }
        s
    }
}

impl Latency {
    /// A copy of what was measured so far, if this sink measures latency.
    pub fn measured(&self) -> Option<Measured> {
        self.measured
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A sink that records each record's latency, then hands the batch on.
pub struct Timed {
    inner: Box<dyn Sink>,
    field: Name,
    latency: Arc<Latency>,
}

impl Timed {
    pub fn new(inner: Box<dyn Sink>, field: &str, latency: Arc<Latency>) -> Timed {
        let field = intern(field);
        *latency
            .measured
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Measured::new(field.clone()));
        Timed {
            inner,
            field,
            latency,
        }
    }
}

impl Sink for Timed {
    fn write(&mut self, batch: &[Value]) -> Result<(), SinkError> {
        self.inner.write(batch)?;
        // Once per batch: its records reached the sink together.
        let now = epoch_micros();
        let mut guard = self
            .latency
            .measured
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(m) = guard.as_mut() else {
            return Ok(());
        };
        for record in batch {
            match record.get(&self.field) {
                // A clock stepped back counts as no time at all.
                Some(Value::Int(ts)) => m
                    .histogram
                    .saturating_record(now.saturating_sub(*ts).max(0) as u64),
                _ => m.untimed += 1,
            }
        }
        Ok(())
    }

    fn on_barrier(&mut self, id: u64) -> Result<(), SinkError> {
        self.inner.on_barrier(id)
    }

    fn pending(&self) -> Option<serde_json::Value> {
        self.inner.pending()
    }

    fn on_complete(&mut self, id: u64) -> Result<(), SinkError> {
        self.inner.on_complete(id)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.inner.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::sinks::blackhole::BlackholeSink;

    fn record(ts: Option<Value>) -> Value {
        let mut fields = vec![(crate::value::Name::from("seq"), Value::Int(1))];
        if let Some(ts) = ts {
            fields.push((crate::value::Name::from("ts"), ts));
        }
        Value::Map(fields)
    }

    #[test]
    fn records_latencies_and_counts_records_without_a_time() {
        let latency = Arc::new(Latency::default());
        let mut sink = Timed::new(Box::new(BlackholeSink), "ts", Arc::clone(&latency));
        let ten_ms_ago = epoch_micros() - 10_000;
        sink.write(&[
            record(Some(Value::Int(ten_ms_ago))),
            record(Some(Value::Int(ten_ms_ago))),
            record(None),
            record(Some(Value::from("soon"))),
            Value::from("a string"),
        ])
        .unwrap();
        let m = latency.measured().unwrap();
        assert_eq!(m.histogram.len(), 2);
        assert!(m.histogram.min() >= 10_000);
        assert_eq!(m.untimed, 3);
        let text = m.describe();
        assert!(text.starts_with("p50 "), "{text}");
        assert!(
            text.ends_with("over 2 records, 3 without an integer `ts`"),
            "{text}"
        );
    }

    #[test]
    fn a_sink_that_never_saw_a_time_says_so() {
        let latency = Arc::new(Latency::default());
        assert!(latency.measured().is_none());
        let mut sink = Timed::new(Box::new(BlackholeSink), "ts", Arc::clone(&latency));
        assert_eq!(latency.measured().unwrap().describe(), "no records");
        sink.write(&[record(None)]).unwrap();
        assert_eq!(
            latency.measured().unwrap().describe(),
            "none of 1 records had an integer `ts`"
        );
    }

    #[test]
    fn instances_merge() {
        let (a, b) = (Arc::new(Latency::default()), Arc::new(Latency::default()));
        let now = epoch_micros();
        Timed::new(Box::new(BlackholeSink), "ts", Arc::clone(&a))
            .write(&[record(Some(Value::Int(now)))])
            .unwrap();
        Timed::new(Box::new(BlackholeSink), "ts", Arc::clone(&b))
            .write(&[record(None), record(Some(Value::Int(now)))])
            .unwrap();
        let mut all = a.measured().unwrap();
        all.merge(&b.measured().unwrap());
        assert_eq!((all.histogram.len(), all.untimed), (2, 1));
    }
}
