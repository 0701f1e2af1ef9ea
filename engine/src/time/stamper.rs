//! A source instance's part in event time: each record's timestamp from
//! the source's `event_time`, and the watermarks that follow from them,
//! bounded out-of-orderness as in Flink: the highest time read, less
//! `max_out_of_orderness`, less one millisecond (a record exactly that
//! much behind the highest is still on time).

use std::time::{Duration, Instant};

use super::{millis, TimeError, Watermark, START};
use crate::expr::Expr;
use crate::operators::RecordError;
use crate::value::Value;

/// A source's `event_time`, compiled.
#[derive(Clone, Debug)]
pub struct EventTime {
    /// A field path or an expression over `this`.
    pub timestamp: Expr,
    /// `timestamp` as written, for what `check` prints.
    pub written: String,
    pub max_out_of_orderness_ms: i64,
    pub idle_timeout: Option<Duration>,
    /// Records stamped further ahead of the clock than this are bad records.
    pub max_future_ms: Option<i64>,
}

pub struct Stamper {
    settings: EventTime,
    /// The highest time read: what a checkpoint records.
    max_seen: i64,
    /// The watermark sent last.
    sent: i64,
    last_record: Instant,
    idle: bool,
}

impl Stamper {
    /// `restored`: the highest time a checkpoint recorded for this instance.
    pub fn new(settings: EventTime, restored: Option<i64>) -> Stamper {
        Stamper {
            settings,
            max_seen: restored.unwrap_or(START),
            sent: START,
            last_record: Instant::now(),
            idle: false,
        }
    }

    /// The highest time read so far (`START` if none).
    pub fn max_seen(&self) -> i64 {
        self.max_seen
    }

    /// The watermark sent last (`START` if none): where the operators
    /// chained after the source are in event time.
    pub fn sent(&self) -> i64 {
        self.sent
    }

    /// Stamps `records` (`times` gets one time each), taking out those
    /// without a usable timestamp: their errors go to `rejected`, for the
    /// source's `on_error`. `now_ms` is the clock `max_future` looks at.
    pub fn stamp(
        &mut self,
        records: &mut Vec<Value>,
        times: &mut Vec<i64>,
        now_ms: i64,
        rejected: &mut Vec<RecordError>,
    ) {
        times.clear();
        let settings = &self.settings;
        let mut max_seen = self.max_seen;
        records.retain(|record| {
            let time = settings
                .timestamp
                .eval_ref(record)
                .map_err(|e| RecordError(format!("no event time: {e}")))
                .and_then(|v| millis(&v).map_err(|e| RecordError(e.to_string())))
                .and_then(|ms| match settings.max_future_ms {
                    Some(limit) if ms.saturating_sub(now_ms) > limit => Err(RecordError(
                        TimeError::Future {
                            millis: ms,
                            ahead_ms: ms - now_ms,
                        }
                        .to_string(),
                    )),
                    _ => Ok(ms),
                });
            match time {
                Ok(ms) => {
                    times.push(ms);
                    max_seen = max_seen.max(ms);
                    true
                }
                Err(e) => {
                    rejected.push(e);
                    false
                }
            }
        });
        self.max_seen = max_seen;
    }

    /// What to send after a poll that read `read` records: a watermark
    /// when it moved on, `Idle` once after `idle_timeout` without
    /// records, and the watermark again when records come back.
    pub fn after_poll(&mut self, read: usize, now: Instant) -> Option<Watermark> {
        if read > 0 {
            self.last_record = now;
        }
        let watermark = self.watermark();
        if read > 0 && self.idle {
            self.idle = false;
            self.sent = self.sent.max(watermark);
            return (self.sent > START).then_some(Watermark::At(self.sent));
        }
        if watermark > self.sent {
            self.sent = watermark;
            return Some(Watermark::At(watermark));
        }
        let quiet = self
            .settings
            .idle_timeout
            .is_some_and(|t| now.duration_since(self.last_record) >= t);
        if read == 0 && quiet && !self.idle {
            self.idle = true;
            return Some(Watermark::Idle);
        }
        None
    }

    /// The watermark moved to `at` by its source's word (a test's step),
    /// if that is beyond the one sent.
    pub fn declared(&mut self, at: i64) -> Option<Watermark> {
        (at > self.sent).then(|| {
            self.sent = at;
            self.idle = false;
            Watermark::At(at)
        })
    }

    fn watermark(&self) -> i64 {
        if self.max_seen == START {
            return START;
        }
        self.max_seen
            .saturating_sub(self.settings.max_out_of_orderness_ms)
            .saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Var;

    fn stamper(ooo_ms: i64, idle: Option<u64>, max_future_ms: Option<i64>) -> Stamper {
        Stamper::new(
            EventTime {
                timestamp: Expr::compile_key("ts").unwrap(),
                written: "ts".into(),
                max_out_of_orderness_ms: ooo_ms,
                idle_timeout: idle.map(Duration::from_millis),
                max_future_ms,
            },
            None,
        )
    }

    fn records(json: &[&str]) -> Vec<Value> {
        json.iter()
            .map(|j| serde_json::from_str(j).unwrap())
            .collect()
    }

    #[test]
    fn times_come_from_the_field_and_bad_ones_are_taken_out() {
        let mut s = stamper(0, None, None);
        let mut batch = records(&[
            r#"{"ts": 5}"#,
            r#"{"ts": "1970-01-01T00:00:00.007Z"}"#,
            r#"{"other": 1}"#,
            r#"{"ts": true}"#,
            r#"{"ts": 3}"#,
        ]);
        let (mut times, mut rejected) = (Vec::new(), Vec::new());
        s.stamp(&mut batch, &mut times, 0, &mut rejected);
        assert_eq!(times, [5, 7, 3]);
        assert_eq!(batch.len(), 3);
        assert_eq!(rejected.len(), 2);
        assert!(rejected[0].0.contains("no event time"), "{}", rejected[0]);
        assert!(
            rejected[1].0.contains("neither epoch milliseconds"),
            "{}",
            rejected[1]
        );
        assert_eq!(s.max_seen(), 7);
    }

    #[test]
    fn an_expression_can_make_the_time() {
        let mut s = Stamper::new(
            EventTime {
                timestamp: Expr::compile("this.secs * 1000", &[Var::This]).unwrap(),
                written: "this.secs * 1000".into(),
                max_out_of_orderness_ms: 0,
                idle_timeout: None,
                max_future_ms: None,
            },
            None,
        );
        let mut batch = records(&[r#"{"secs": 2}"#]);
        let (mut times, mut rejected) = (Vec::new(), Vec::new());
        s.stamp(&mut batch, &mut times, 0, &mut rejected);
        assert_eq!(times, [2000]);
    }

    #[test]
    fn a_time_too_far_ahead_of_the_clock_is_a_bad_record() {
        let mut s = stamper(0, None, Some(1000));
        let mut batch = records(&[r#"{"ts": 10500}"#, r#"{"ts": 11001}"#, r#"{"ts": 9000}"#]);
        let (mut times, mut rejected) = (Vec::new(), Vec::new());
        s.stamp(&mut batch, &mut times, 10_000, &mut rejected);
        assert_eq!(times, [10500, 9000]);
        assert!(rejected[0].0.contains("1001 ms ahead"), "{}", rejected[0]);
        // The rejected time did not move the watermark.
        assert_eq!(s.max_seen(), 10500);
    }

    #[test]
    fn the_watermark_trails_the_highest_time_by_the_bound() {
        let mut s = stamper(100, None, None);
        let now = Instant::now();
        assert_eq!(s.after_poll(0, now), None);
        let (mut times, mut rejected) = (Vec::new(), Vec::new());
        let mut batch = records(&[r#"{"ts": 1000}"#, r#"{"ts": 950}"#]);
        s.stamp(&mut batch, &mut times, 0, &mut rejected);
        assert_eq!(s.after_poll(2, now), Some(Watermark::At(899)));
        assert_eq!(s.after_poll(0, now), None);
        let mut batch = records(&[r#"{"ts": 990}"#]);
        s.stamp(&mut batch, &mut times, 0, &mut rejected);
        assert_eq!(s.after_poll(1, now), None);
    }

    #[test]
    fn a_quiet_source_goes_idle_once_and_comes_back_with_its_watermark() {
        let mut s = stamper(0, Some(50), None);
        let start = Instant::now();
        let (mut times, mut rejected) = (Vec::new(), Vec::new());
        let mut batch = records(&[r#"{"ts": 10}"#]);
        s.stamp(&mut batch, &mut times, 0, &mut rejected);
        assert_eq!(s.after_poll(1, start), Some(Watermark::At(9)));
        assert_eq!(s.after_poll(0, start + Duration::from_millis(49)), None);
        assert_eq!(
            s.after_poll(0, start + Duration::from_millis(50)),
            Some(Watermark::Idle)
        );
        assert_eq!(s.after_poll(0, start + Duration::from_millis(90)), None);
        let mut batch = records(&[r#"{"ts": 8}"#]);
        s.stamp(&mut batch, &mut times, 0, &mut rejected);
        assert_eq!(
            s.after_poll(1, start + Duration::from_millis(95)),
            Some(Watermark::At(9))
        );
    }

    #[test]
    fn a_restored_source_goes_on_from_the_time_it_had_read() {
        let mut s = Stamper::new(
            EventTime {
                timestamp: Expr::compile_key("ts").unwrap(),
                written: "ts".into(),
                max_out_of_orderness_ms: 0,
                idle_timeout: None,
                max_future_ms: None,
            },
            Some(500),
        );
        let (mut times, mut rejected) = (Vec::new(), Vec::new());
        let mut batch = records(&[r#"{"ts": 100}"#]);
        s.stamp(&mut batch, &mut times, 0, &mut rejected);
        assert_eq!(s.after_poll(1, Instant::now()), Some(Watermark::At(499)));
    }
}
