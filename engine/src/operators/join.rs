//! The interval join: a record of the right input joins each record of the
//! left input with the same key whose time lies within `[lower, upper]`
//! of its own (`right.time - left.time`), as Flink's `intervalJoin`; with
//! `outer`, a left record that joined none is emitted alone once the
//! watermark shows none can come.
//!
//! Each key's records wait, per side, in one entry of keyed state (the
//! key's encoding and a side byte), as a list of `[time, record, joined]`:
//! so they are split by key group, restored at any parallelism and written
//! incrementally. A record waits until the watermark has passed the last
//! time a record of the other side could join it, then goes; its entry
//! goes with its last record (a tombstone in the next checkpoint). The
//! timers for that are rebuilt from the entries on a restore.
//!
//! A record at or before the watermark is late: the other side's records
//! it could join may be gone, so it is counted and dropped, as Flink does.

use std::collections::BTreeSet;

use super::late::LateCount;
use super::{OpError, Operator, Snapshot, TimedState};
use crate::expr::Expr;
use crate::state::{encode_key, key_group, Changes, KeyedState};
use crate::time::START;
use crate::value::{Name, Value};

/// A join node's settings, shared by its instances.
#[derive(Clone, Debug)]
pub struct JoinSpec {
    /// The key of each side, left first.
    pub keys: [Expr; 2],
    /// The field each side's record goes in, in results: its input's name.
    pub names: [Name; 2],
    /// The bounds of `right.time - left.time`, in milliseconds.
    pub lower: i64,
    pub upper: i64,
    /// Left outer: left records that joined nothing are emitted alone.
    pub outer: bool,
}

/// Why a restored join entry cannot be one this operator wrote.
#[derive(Debug, thiserror::Error)]
pub enum UnfitJoin {
    #[error("a join entry whose key has no side")]
    Side,
    #[error("a join entry that is not a list of [time, record, joined]: `{0}`")]
    Value(String),
    #[error(transparent)]
    LateCount(#[from] super::late::UnfitCount),
}

/// A timer: when a (key, side) entry has records to let go, and the entry.
type Timer = (i64, u16, Box<[u8]>);

pub struct JoinOp {
    spec: JoinSpec,
    state: Box<dyn KeyedState>,
    max_parallelism: u32,
    watermark: i64,
    timers: BTreeSet<Timer>,
    late: LateCount,
    entry_buf: Vec<u8>,
    other_buf: Vec<u8>,
}

impl JoinOp {
    pub fn new(
        spec: JoinSpec,
        state: Box<dyn KeyedState>,
        max_parallelism: u32,
        home_group: u16,
    ) -> JoinOp {
        JoinOp {
            spec,
            state,
            max_parallelism,
            watermark: START,
            timers: BTreeSet::new(),
            late: LateCount::new(home_group),
            entry_buf: Vec::new(),
            other_buf: Vec::new(),
        }
    }

    /// The last time a record of `side` at `time` can be joined: the
    /// watermark passing it lets the record go.
    fn expiry(&self, side: u8, time: i64) -> i64 {
        if side == 0 {
            time.saturating_add(self.spec.upper)
        } else {
            time.saturating_sub(self.spec.lower)
        }
    }

    fn joined(&self, left: Value, right: Value) -> Value {
        Value::Map(vec![
            (self.spec.names[0].clone(), left),
            (self.spec.names[1].clone(), right),
        ])
    }
}

/// The earliest time in a side's list, if it is one this operator wrote.
fn earliest(value: &Value) -> Option<i64> {
    let Value::List(items) = value else {
        return None;
    };
    let mut min = None;
    for item in items {
        match item {
            Value::List(t) if t.len() == 3 && matches!(t[2], Value::Bool(_)) => match t[0] {
                Value::Int(time) => min = Some(min.map_or(time, |m: i64| m.min(time))),
                _ => return None,
            },
            _ => return None,
        }
    }
    min
}

impl TimedState for JoinOp {
    /// Takes one entry of a restored checkpoint; `location` names it.
    fn restore(
        &mut self,
        key_group: u16,
        key: &[u8],
        value: Value,
        location: &str,
    ) -> Result<(), OpError> {
        let unfit = |why: UnfitJoin| OpError::Restore {
            location: location.to_owned(),
            why: Box::new(super::RestoreProblem::Join(why)),
        };
        if LateCount::is_count(key) {
            return self.late.restore(&value).map_err(|e| unfit(e.into()));
        }
        let side = match key.last() {
            Some(&side @ (0 | 1)) if key.len() > 1 => side,
            _ => return Err(unfit(UnfitJoin::Side)),
        };
        let Some(first) = earliest(&value) else {
            return Err(unfit(UnfitJoin::Value(value.to_string())));
        };
        self.timers
            .insert((self.expiry(side, first), key_group, key.into()));
        *self.state.value_mut(key_group, key)? = Some(value);
        Ok(())
    }

    /// Every entry is restored: the operator goes on from the watermark
    /// the checkpoint recorded for it.
    fn restored(&mut self, watermark: Option<i64>) {
        if let Some(watermark) = watermark {
            self.watermark = watermark;
        }
    }
}

impl Operator for JoinOp {
    fn process(&mut self, _record: Value, _out: &mut Vec<Value>) -> Result<(), OpError> {
        Err(OpError::Bug("a join's records have no event time"))
    }

    fn process_at(
        &mut self,
        record: Value,
        time: i64,
        out: &mut Vec<Value>,
        times: &mut Vec<i64>,
    ) -> Result<(), OpError> {
        self.process_input(0, record, time, out, times)
    }

    fn process_input(
        &mut self,
        input: usize,
        record: Value,
        time: i64,
        out: &mut Vec<Value>,
        times: &mut Vec<i64>,
    ) -> Result<(), OpError> {
        let side = u8::from(input > 0);
        let key = self.spec.keys[side as usize].eval_ref(&record)?;
        if time <= self.watermark {
            self.late.add(1);
            return Ok(());
        }
        self.entry_buf.clear();
        encode_key(&key, &mut self.entry_buf);
        drop(key);
        let kg = key_group(&self.entry_buf, self.max_parallelism);
        self.other_buf.clear();
        self.other_buf.extend_from_slice(&self.entry_buf);
        self.other_buf.push(1 - side);
        self.entry_buf.push(side);
        let (lower, upper) = (self.spec.lower, self.spec.upper);
        // The other side's waiting records this one joins, by place.
        let mut matches = Vec::new();
        if let Some(Value::List(waiting)) = self.state.get(kg, &self.other_buf)? {
            for (at, item) in waiting.iter().enumerate() {
                let Value::List(t) = item else { continue };
                let Value::Int(other_time) = t[0] else {
                    continue;
                };
                let gap = if side == 0 {
                    other_time - time
                } else {
                    time - other_time
                };
                if (lower..=upper).contains(&gap) {
                    matches.push((at, other_time, t[1].clone(), t[2] == Value::Bool(false)));
                }
            }
        }
        let joined_any = !matches.is_empty();
        // Left records joined for the first time, for a left outer join.
        if side == 1 && self.spec.outer && matches.iter().any(|m| m.3) {
            if let Some(Value::List(waiting)) = self.state.value_mut(kg, &self.other_buf)? {
                for (at, ..) in &matches {
                    if let Some(Value::List(t)) = waiting.get_mut(*at) {
                        t[2] = Value::Bool(true);
                    }
                }
            }
        }
        for (_, other_time, other, _) in matches {
            let (left, right) = if side == 0 {
                (record.clone(), other)
            } else {
                (other, record.clone())
            };
            out.push(self.joined(left, right));
            times.push(time.max(other_time));
        }
        let expiry = self.expiry(side, time);
        if expiry <= self.watermark {
            // Nothing that can still come would join it.
            if side == 0 && self.spec.outer && !joined_any {
                out.push(self.joined(record, Value::Null));
                times.push(time);
            }
            return Ok(());
        }
        let item = Value::List(vec![Value::Int(time), record, Value::Bool(joined_any)]);
        let slot = self.state.value_mut(kg, &self.entry_buf)?;
        match slot {
            Some(Value::List(items)) => items.push(item),
            _ => *slot = Some(Value::List(vec![item])),
        }
        self.timers.insert((expiry, kg, self.entry_buf[..].into()));
        Ok(())
    }

    fn on_watermark(
        &mut self,
        watermark: i64,
        out: &mut Vec<Value>,
        times: &mut Vec<i64>,
    ) -> Result<(), OpError> {
        if watermark <= self.watermark {
            return Ok(());
        }
        self.watermark = watermark;
        while self.timers.first().is_some_and(|t| t.0 <= watermark) {
            let Some((_, kg, entry)) = self.timers.pop_first() else {
                break;
            };
            let Some(&side) = entry.last() else { continue };
            let (lower, upper) = (self.spec.lower, self.spec.upper);
            let expiry = |time: i64| {
                if side == 0 {
                    time.saturating_add(upper)
                } else {
                    time.saturating_sub(lower)
                }
            };
            let Some(Value::List(items)) = self.state.value_mut(kg, &entry)?.as_mut() else {
                continue;
            };
            let mut next = None;
            let mut gone = Vec::new();
            items.retain_mut(|item| {
                let Value::List(t) = item else { return false };
                let Value::Int(time) = t[0] else { return false };
                if expiry(time) > watermark {
                    next = Some(next.map_or(expiry(time), |n: i64| n.min(expiry(time))));
                    return true;
                }
                if side == 0 && t[2] == Value::Bool(false) {
                    gone.push((time, std::mem::take(&mut t[1])));
                }
                false
            });
            let empty = items.is_empty();
            if self.spec.outer {
                for (time, left) in gone {
                    out.push(self.joined(left, Value::Null));
                    times.push(time);
                }
            }
            match next {
                Some(at) => {
                    self.timers.insert((at, kg, entry));
                }
                None if empty => {
                    self.state.remove(kg, &entry)?;
                }
                None => {}
            }
        }
        Ok(())
    }

    fn late_records(&mut self) -> u64 {
        self.late.take_unreported()
    }

    fn snapshot(&mut self) -> Result<Snapshot, OpError> {
        self.late.save(&mut *self.state)?;
        super::snapshot_of(&mut *self.state)
    }

    fn copy_snapshot(&mut self, budget: usize) -> Result<Option<Changes>, OpError> {
        Ok(self.state.copy_changes(budget)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::memory::MemoryState;
    use crate::value::intern;

    fn op(lower: i64, upper: i64, outer: bool) -> JoinOp {
        let spec = JoinSpec {
            keys: [
                Expr::compile_key("id").unwrap(),
                Expr::compile_key("order").unwrap(),
            ],
            names: [intern("orders"), intern("payments")],
            lower,
            upper,
            outer,
        };
        JoinOp::new(spec, Box::new(MemoryState::new(true)), 128, 0)
    }

    fn rec(json: &str) -> Value {
        serde_json::from_str(json).unwrap()
    }

    /// Feeds `(side, time, record)`s then a watermark; what came out.
    fn feed(j: &mut JoinOp, records: &[(usize, i64, &str)], watermark: i64) -> Vec<String> {
        let (mut out, mut times) = (Vec::new(), Vec::new());
        for (side, time, json) in records {
            j.process_input(*side, rec(json), *time, &mut out, &mut times)
                .unwrap();
        }
        j.on_watermark(watermark, &mut out, &mut times).unwrap();
        assert_eq!(out.len(), times.len());
        out.iter().map(Value::to_json).collect()
    }

    #[test]
    fn a_right_record_joins_the_left_ones_within_its_bounds_either_way_round() {
        let mut j = op(0, 10, false);
        let out = feed(
            &mut j,
            &[
                (0, 100, r#"{"id": 1}"#),
                (1, 105, r#"{"order": 1, "p": "a"}"#),
                (1, 111, r#"{"order": 1, "p": "too late"}"#),
                (1, 120, r#"{"order": 2, "p": "b"}"#),
                (0, 115, r#"{"id": 2}"#),
                (1, 99, r#"{"order": 1, "p": "before"}"#),
            ],
            50,
        );
        assert_eq!(
            out,
            [
                r#"{"orders":{"id":1},"payments":{"order":1,"p":"a"}}"#,
                r#"{"orders":{"id":2},"payments":{"order":2,"p":"b"}}"#,
            ]
        );
    }

    #[test]
    fn left_outer_emits_unjoined_left_records_when_the_watermark_passes_and_late_ones_are_counted()
    {
        let mut j = op(0, 10, true);
        let out = feed(
            &mut j,
            &[
                (0, 100, r#"{"id": 1}"#),
                (0, 101, r#"{"id": 2}"#),
                (1, 102, r#"{"order": 2}"#),
            ],
            109,
        );
        assert_eq!(out, [r#"{"orders":{"id":2},"payments":{"order":2}}"#]);
        let out = feed(&mut j, &[], 110);
        assert_eq!(out, [r#"{"orders":{"id":1},"payments":null}"#]);
        let out = feed(&mut j, &[(1, 105, r#"{"order": 1}"#)], 200);
        assert_eq!(out, Vec::<String>::new(), "late: its left record is gone");
        assert_eq!(j.late_records(), 1);
        assert_eq!(j.timers.len(), 0, "everything went");
    }
}
