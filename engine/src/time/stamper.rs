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
    /// For a source whose input is several streams each in its own order
    /// (a Kafka partition), each stream's own progress, as Flink's
    /// per-split watermarks: the watermark is the lowest of theirs, and a
    /// stream quiet for `idle_timeout` stops holding it back.
    splits: Vec<Split>,
    /// The restored point, as a highest time read: the watermark of a
    /// source with splits does not go below its watermark.
    floor: i64,
}

/// One stream of a source's input.
struct Split {
    max: i64,
    last_record: Instant,
}

/// Each record's stream, for a source that reads several: how many it
/// reads now, and the stream of each record of the batch, in order.
#[derive(Clone, Copy)]
pub struct Splits<'a> {
    pub count: usize,
    pub of_records: &'a [u32],
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
            splits: Vec::new(),
            floor: restored.unwrap_or(START),
        }
    }

    /// What a checkpoint records, for a restore to go on from the same
    /// watermark: the highest time read or, for a source with splits, the
    /// highest time that gives the watermark sent.
    pub fn resumable(&self) -> i64 {
        if self.splits.is_empty() {
            return self.max_seen;
        }
        if self.sent == START {
            return self.floor;
        }
        self.sent
            .saturating_add(self.settings.max_out_of_orderness_ms)
            .saturating_add(1)
            .max(self.floor)
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
    ///
    /// With `splits` (one per record) read at the instant given, each
    /// stream's progress is kept too.
    pub fn stamp(
        &mut self,
        records: &mut Vec<Value>,
        times: &mut Vec<i64>,
        now_ms: i64,
        rejected: &mut Vec<RecordError>,
        splits: Option<(Splits<'_>, Instant)>,
    ) {
        times.clear();
        let of_records = match splits {
            Some((splits, now)) if splits.of_records.len() == records.len() => {
                self.splits.resize_with(splits.count, || Split {
                    max: START,
                    last_record: now,
                });
                for &s in splits.of_records {
                    if let Some(split) = self.splits.get_mut(s as usize) {
                        split.last_record = now;
                    }
                }
                splits.of_records
            }
            _ => &[],
        };
        let settings = &self.settings;
        let streams = &mut self.splits;
        let mut max_seen = self.max_seen;
        let mut i = 0;
        records.retain(|record| {
            let split = of_records.get(i).and_then(|s| streams.get_mut(*s as usize));
            i += 1;
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
                    if let Some(split) = split {
                        split.max = split.max.max(ms);
                    }
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
        let watermark = self.watermark(now);
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

    fn watermark(&self, now: Instant) -> i64 {
        if self.splits.is_empty() {
            return self.behind(self.max_seen);
        }
        let quiet = |split: &Split| {
            self.settings
                .idle_timeout
                .is_some_and(|t| now.duration_since(split.last_record) >= t)
        };
        let lowest = self
            .splits
            .iter()
            .filter(|split| !quiet(split))
            .map(|split| self.behind(split.max))
            .min();
        match lowest {
            Some(lowest) => lowest.max(self.behind(self.floor)),
            // Every stream is quiet: the source goes idle (`after_poll`).
            None => self.behind(self.floor).max(self.sent),
        }
    }

    /// The watermark that follows from `max`, the highest time read.
    fn behind(&self, max: i64) -> i64 {
        if max == START {
            return START;
        }
        max.saturating_sub(self.settings.max_out_of_orderness_ms)
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

    /// Times from `ts`, no bound, restored at the highest time `restored`.
    fn restored(restored: i64) -> Stamper {
        Stamper::new(stamper(0, None, None).settings, Some(restored))
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
        s.stamp(&mut batch, &mut times, 0, &mut rejected, None);
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
        s.stamp(&mut batch, &mut times, 0, &mut rejected, None);
        assert_eq!(times, [2000]);
    }

    #[test]
    fn a_time_too_far_ahead_of_the_clock_is_a_bad_record() {
        let mut s = stamper(0, None, Some(1000));
        let mut batch = records(&[r#"{"ts": 10500}"#, r#"{"ts": 11001}"#, r#"{"ts": 9000}"#]);
        let (mut times, mut rejected) = (Vec::new(), Vec::new());
        s.stamp(&mut batch, &mut times, 10_000, &mut rejected, None);
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
        s.stamp(&mut batch, &mut times, 0, &mut rejected, None);
        assert_eq!(s.after_poll(2, now), Some(Watermark::At(899)));
        assert_eq!(s.after_poll(0, now), None);
        let mut batch = records(&[r#"{"ts": 990}"#]);
        s.stamp(&mut batch, &mut times, 0, &mut rejected, None);
        assert_eq!(s.after_poll(1, now), None);
    }

    #[test]
    fn a_quiet_source_goes_idle_once_and_comes_back_with_its_watermark() {
        let mut s = stamper(0, Some(50), None);
        let start = Instant::now();
        let (mut times, mut rejected) = (Vec::new(), Vec::new());
        let mut batch = records(&[r#"{"ts": 10}"#]);
        s.stamp(&mut batch, &mut times, 0, &mut rejected, None);
        assert_eq!(s.after_poll(1, start), Some(Watermark::At(9)));
        assert_eq!(s.after_poll(0, start + Duration::from_millis(49)), None);
        assert_eq!(
            s.after_poll(0, start + Duration::from_millis(50)),
            Some(Watermark::Idle)
        );
        assert_eq!(s.after_poll(0, start + Duration::from_millis(90)), None);
        let mut batch = records(&[r#"{"ts": 8}"#]);
        s.stamp(&mut batch, &mut times, 0, &mut rejected, None);
        assert_eq!(
            s.after_poll(1, start + Duration::from_millis(95)),
            Some(Watermark::At(9))
        );
    }

    #[test]
    fn a_restored_source_goes_on_from_the_time_it_had_read() {
        let mut s = restored(500);
        let (mut times, mut rejected) = (Vec::new(), Vec::new());
        let mut batch = records(&[r#"{"ts": 100}"#]);
        s.stamp(&mut batch, &mut times, 0, &mut rejected, None);
        assert_eq!(s.after_poll(1, Instant::now()), Some(Watermark::At(499)));
    }

    fn split_batch(json: &[(u32, i64)]) -> (Vec<Value>, Vec<u32>) {
        let records = json
            .iter()
            .map(|(_, ts)| serde_json::from_str(&format!(r#"{{"ts": {ts}}}"#)).unwrap())
            .collect();
        (records, json.iter().map(|(s, _)| *s).collect())
    }

    #[test]
    fn with_splits_the_slowest_stream_holds_the_watermark() {
        let mut s = stamper(0, None, None);
        let (mut times, mut rejected) = (Vec::new(), Vec::new());
        let (mut batch, of) = split_batch(&[(0, 100), (1, 40), (0, 120)]);
        let splits = Splits {
            count: 2,
            of_records: &of,
        };
        s.stamp(
            &mut batch,
            &mut times,
            0,
            &mut rejected,
            Some((splits, Instant::now())),
        );
        assert_eq!(s.after_poll(3, Instant::now()), Some(Watermark::At(39)));
        let (mut batch, of) = split_batch(&[(1, 200)]);
        let splits = Splits {
            count: 2,
            of_records: &of,
        };
        s.stamp(
            &mut batch,
            &mut times,
            0,
            &mut rejected,
            Some((splits, Instant::now())),
        );
        assert_eq!(s.after_poll(1, Instant::now()), Some(Watermark::At(119)));
        // A restore goes on from the watermark sent, not the highest time.
        assert_eq!(s.resumable(), 120);
    }

    #[test]
    fn with_splits_a_stream_with_nothing_yet_holds_it_until_it_is_quiet() {
        let mut s = stamper(0, Some(50), None);
        let start = Instant::now();
        let (mut times, mut rejected) = (Vec::new(), Vec::new());
        let (mut batch, of) = split_batch(&[(0, 100)]);
        let splits = Splits {
            count: 3,
            of_records: &of,
        };
        s.stamp(
            &mut batch,
            &mut times,
            0,
            &mut rejected,
            Some((splits, start)),
        );
        assert_eq!(s.after_poll(1, start), None);
        let (mut batch, of) = split_batch(&[(0, 120)]);
        let splits = Splits {
            count: 3,
            of_records: &of,
        };
        let later = start + Duration::from_millis(40);
        s.stamp(
            &mut batch,
            &mut times,
            0,
            &mut rejected,
            Some((splits, later)),
        );
        assert_eq!(s.after_poll(1, later), None);
        // Streams 1 and 2 had nothing for `idle_timeout`: stream 0 leads.
        assert_eq!(
            s.after_poll(0, start + Duration::from_millis(60)),
            Some(Watermark::At(119))
        );
    }

    #[test]
    fn with_splits_a_restored_watermark_is_a_floor() {
        let mut s = restored(500);
        let (mut times, mut rejected) = (Vec::new(), Vec::new());
        let (mut batch, of) = split_batch(&[(0, 100), (1, 900)]);
        let splits = Splits {
            count: 2,
            of_records: &of,
        };
        s.stamp(
            &mut batch,
            &mut times,
            0,
            &mut rejected,
            Some((splits, Instant::now())),
        );
        assert_eq!(s.after_poll(2, Instant::now()), Some(Watermark::At(499)));
        assert_eq!(s.resumable(), 500);
    }
}
