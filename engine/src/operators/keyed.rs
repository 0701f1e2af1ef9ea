//! Keyed rolling aggregates: sum, min, max, count and reduce.
//!
//! Each keeps one value per key in a [`KeyedState`] and emits the updated
//! result for every input record, as Flink's keyed `sum` does: `sum` the
//! record with `field` replaced by the running total, `min` and `max` the
//! whole record holding the extreme of `field` (Flink's `minBy`/`maxBy`),
//! `count` the key (named by [`key_field`]) and its count.
//!
//! With a time to live (`ttl: 1h`, Flink's `StateTtlConfig` on processing
//! time), a key not updated for that long is forgotten: its next record
//! starts from nothing, and the clock removes it from state (a tombstone in
//! the next checkpoint) so that unbounded keys do not grow state forever.
//! Its value is then kept as `[value, last update in ms]`, so the time
//! survives a restore.
//!
//! [`key_field`]: crate::nodes::transforms::count::key_field

use std::cmp::Ordering;

use super::timers::Timers;
use super::{OpError, Operator, RecordError, Snapshot};
use crate::expr::Expr;
use crate::state::{encode_key, key_group, Changes, KeyedState, StateError};
use crate::value::{intern, Name, Value};

/// Which extreme or total an aggregate keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregateKind {
    Sum,
    Min,
    Max,
}

/// What a keyed operator does with the state of one key.
pub enum Fold {
    Aggregate {
        kind: AggregateKind,
        field: Name,
    },
    /// Emits `{<key_field>: <key>, "count": <n>}`.
    Count {
        key_field: Name,
    },
    Reduce(Expr),
}

impl Fold {
    /// Whether a restored state value is one this fold can have written:
    /// a checkpoint that passes its checksums but holds anything else is
    /// damaged, and restoring it would compute on a wrong value.
    pub fn check_state(&self, value: &Value) -> Result<(), UnfitState> {
        let number = |v: &Value| matches!(v, Value::Int(_) | Value::Float(_));
        let fits = match self {
            Fold::Aggregate {
                kind: AggregateKind::Sum,
                ..
            } => number(value),
            Fold::Aggregate { field, .. } => {
                number(value) || value.get(&field[..]).is_some_and(number)
            }
            Fold::Count { .. } => matches!(value, Value::Int(n) if *n >= 1),
            Fold::Reduce(_) => true,
        };
        if fits {
            return Ok(());
        }
        let expected = match self {
            Fold::Aggregate {
                kind: AggregateKind::Sum,
                ..
            }
            | Fold::Reduce(_) => Expected::Number,
            Fold::Aggregate { field, .. } => Expected::Extreme {
                field: field.to_string(),
            },
            Fold::Count { .. } => Expected::Count,
        };
        Err(UnfitState {
            expected,
            found_type: value.type_name(),
            found: value.to_string(),
        })
    }
}

/// A restored state value the fold could not have written.
#[derive(Debug, thiserror::Error)]
#[error("{expected}, not {found_type} `{found}`")]
pub struct UnfitState {
    pub expected: Expected,
    pub found_type: &'static str,
    pub found: String,
}

/// What a fold's state value must be.
#[derive(Debug, thiserror::Error)]
pub enum Expected {
    #[error("a running sum must be a number")]
    Number,
    #[error("an extreme must be a number or a record with a numeric `{field}`")]
    Extreme { field: String },
    #[error("a count must be a positive integer")]
    Count,
    #[error("a value with a time to live must be [value, last update in ms]")]
    Ttl,
}

/// A time to live and what it needs.
struct Ttl {
    ms: i64,
    /// The clock, as of the last tick.
    now: i64,
    /// Each key in state, by when it may have expired (at most its last
    /// update plus `ms`): one timer per key.
    expiry: Timers,
}

pub struct Keyed {
    key: Expr,
    fold: Fold,
    ttl: Option<Ttl>,
    state: Box<dyn KeyedState>,
    max_parallelism: u32,
    key_buf: Vec<u8>,
    /// The name of `count`'s count field, interned once.
    count_field: Name,
}

impl Keyed {
    /// `ttl_ms`: the time to live of a key's state, if any.
    pub fn new(
        key: Expr,
        fold: Fold,
        ttl_ms: Option<i64>,
        state: Box<dyn KeyedState>,
        max_parallelism: u32,
    ) -> Keyed {
        Keyed {
            key,
            fold,
            ttl: ttl_ms.map(|ms| Ttl {
                ms,
                now: crate::time::now_millis(),
                expiry: Timers::default(),
            }),
            state,
            max_parallelism,
            key_buf: Vec::new(),
            count_field: intern("count"),
        }
    }

    /// Whether a restored state value is one this operator can have
    /// written (see [`Fold::check_state`]).
    pub fn check_state(&self, value: &Value) -> Result<(), UnfitState> {
        if self.ttl.is_none() {
            return self.fold.check_state(value);
        }
        match value {
            Value::List(items) if items.len() == 2 && matches!(items[1], Value::Int(_)) => {
                self.fold.check_state(&items[0])
            }
            other => Err(UnfitState {
                expected: Expected::Ttl,
                found_type: other.type_name(),
                found: other.to_string(),
            }),
        }
    }

    /// Takes a restored entry, checked with [`Keyed::check_state`].
    pub fn restore(&mut self, key_group: u16, key: &[u8], value: Value) -> Result<(), StateError> {
        if let (Some(ttl), Value::List(items)) = (&mut self.ttl, &value) {
            if let Some(Value::Int(updated)) = items.get(1) {
                ttl.expiry
                    .insert(updated.saturating_add(ttl.ms), key_group, key);
            }
        }
        *self.state.value_mut(key_group, key)? = Some(value);
        Ok(())
    }

    /// Folds `record` into the state of its key, kept with the time of
    /// its last update: an expired value counts as none.
    fn fold_with_ttl(
        &mut self,
        kg: u16,
        record: Value,
        at: usize,
        key: Option<Value>,
    ) -> Result<Value, OpError> {
        let Some(ttl) = &mut self.ttl else {
            return Err(OpError::Bug("a time to live without its settings"));
        };
        let slot = self.state.value_mut(kg, &self.key_buf)?;
        let now = ttl.now;
        let mut inner = match slot {
            Some(Value::List(items)) if items.len() == 2 => {
                match items[1] {
                    Value::Int(updated) if now.saturating_sub(updated) < ttl.ms => {
                        Some(std::mem::take(&mut items[0]))
                    }
                    // Expired: the key starts again (its timer is still set).
                    _ => None,
                }
            }
            _ => None,
        };
        let was_stored = slot.is_some();
        let result = fold(&self.fold, &self.count_field, &mut inner, record, at, key);
        match (inner, slot.as_mut()) {
            (Some(value), Some(Value::List(items))) if result.is_ok() => {
                items[0] = value;
                items[1] = Value::Int(now);
            }
            // Failed: the value as it was (or none, if it had expired).
            (Some(value), Some(Value::List(items))) => items[0] = value,
            (Some(value), _) => {
                *slot = Some(Value::List(vec![value, Value::Int(now)]));
                if !was_stored {
                    ttl.expiry
                        .insert(now.saturating_add(ttl.ms), kg, &self.key_buf);
                }
            }
            (None, _) => *slot = None,
        }
        result
    }
}

/// Refuses a record without a number to aggregate, before it can touch
/// the state; gives the place of the field aggregated among the record's.
fn check_record(fold: &Fold, record: &Value) -> Result<usize, RecordError> {
    let Fold::Aggregate { field, .. } = fold else {
        return Ok(0);
    };
    let found = match record {
        Value::Map(fields) => fields
            .iter()
            .enumerate()
            .find(|(_, (name, _))| *name == *field),
        _ => None,
    };
    match found {
        Some((at, (_, value))) => {
            check_number(value, &field[..])?;
            Ok(at)
        }
        None => Err(RecordError(format!(
            "the record has no field `{field}` to aggregate: {record}"
        ))),
    }
}

/// Folds `record` (checked with [`check_record`], which found the field
/// aggregated at `at`) into `stored`, the state of its key (`key`, for
/// `count`), and gives what to emit. A bad record leaves `stored` as it
/// was.
#[inline]
fn fold(
    fold: &Fold,
    count_field: &Name,
    stored: &mut Option<Value>,
    mut record: Value,
    at: usize,
    key: Option<Value>,
) -> Result<Value, OpError> {
    Ok(match fold {
        Fold::Aggregate { kind, field } => {
            let Some((_, slot)) = (match &mut record {
                Value::Map(fields) => fields.get_mut(at),
                _ => None,
            }) else {
                return Err(OpError::Bug("an aggregated record without its field"));
            };
            match kind {
                AggregateKind::Sum => {
                    match stored {
                        Some(acc) => {
                            add(acc, slot, &field[..])?;
                            acc.clone_into(slot);
                        }
                        None => *stored = Some(slot.clone()),
                    }
                    record
                }
                AggregateKind::Min | AggregateKind::Max => extreme(*kind, field, stored, record),
            }
        }
        Fold::Count { key_field } => {
            let n = match stored {
                Some(Value::Int(n)) => {
                    *n = n.saturating_add(1);
                    *n
                }
                _ => {
                    *stored = Some(Value::Int(1));
                    1
                }
            };
            Value::Map(vec![
                (key_field.clone(), key.unwrap_or_default()),
                (count_field.clone(), Value::Int(n)),
            ])
        }
        Fold::Reduce(expr) => {
            let next = match stored {
                None => record,
                Some(acc) => expr.eval(&record, Some(acc))?,
            };
            *stored = Some(next.clone());
            next
        }
    })
}

impl Operator for Keyed {
    fn process(&mut self, record: Value, out: &mut Vec<Value>) -> Result<(), OpError> {
        let key = self.key.eval_ref(&record)?;
        self.key_buf.clear();
        encode_key(&key, &mut self.key_buf);
        // Only `count` emits the key; the others read it from the record.
        let key = matches!(self.fold, Fold::Count { .. }).then(|| key.into_owned());
        let kg = key_group(&self.key_buf, self.max_parallelism);
        let at = check_record(&self.fold, &record)?;
        if self.ttl.is_some() {
            out.push(self.fold_with_ttl(kg, record, at, key)?);
            return Ok(());
        }
        let stored = self.state.value_mut(kg, &self.key_buf)?;
        out.push(fold(
            &self.fold,
            &self.count_field,
            stored,
            record,
            at,
            key,
        )?);
        Ok(())
    }

    fn wants_ticks(&self) -> bool {
        self.ttl.is_some()
    }

    /// Keys whose time to live ran out leave the state.
    fn on_tick(
        &mut self,
        now_ms: i64,
        _out: &mut Vec<Value>,
        _times: &mut Vec<i64>,
    ) -> Result<(), OpError> {
        let Some(ttl) = &mut self.ttl else {
            return Ok(());
        };
        ttl.now = now_ms;
        while let Some(due) = ttl.expiry.take_due(now_ms) {
            for (kg, key) in due {
                let updated = match self.state.get(kg, key.as_bytes())? {
                    Some(Value::List(items)) => match items.get(1) {
                        Some(Value::Int(updated)) => *updated,
                        _ => continue,
                    },
                    _ => continue,
                };
                let expires = updated.saturating_add(ttl.ms);
                if expires <= now_ms {
                    self.state.remove(kg, key.as_bytes())?;
                } else {
                    ttl.expiry.insert(expires, kg, key.as_bytes());
                }
            }
        }
        Ok(())
    }

    fn snapshot(&mut self) -> Result<Snapshot, OpError> {
        super::snapshot_of(&mut *self.state)
    }

    fn copy_snapshot(&mut self, budget: usize) -> Result<Option<Changes>, OpError> {
        Ok(self.state.copy_changes(budget)?)
    }
}

fn check_number(v: &Value, field: &str) -> Result<(), RecordError> {
    match v {
        Value::Int(_) | Value::Float(_) => Ok(()),
        other => Err(RecordError(format!(
            "field `{field}` must be a number, got {} `{other}`",
            other.type_name()
        ))),
    }
}

/// Adds `next` (a number) to the running total `acc`. Integers stay exact:
/// a sum past the 64-bit range is the record's error, as CEL's `+` is,
/// and the total stays as it was; so is a float sum past the finite range,
/// as no record holds an infinity.
fn add(acc: &mut Value, next: &Value, field: &str) -> Result<(), RecordError> {
    *acc = match (&*acc, next) {
        (Value::Int(a), Value::Int(b)) => match a.checked_add(*b) {
            Some(n) => Value::Int(n),
            None => {
                return Err(RecordError(format!(
                    "the sum of `{field}` overflows a 64-bit integer: {a} + {b}"
                )))
            }
        },
        (a, b) => match a.as_f64() + b.as_f64() {
            total if total.is_finite() => Value::Float(total),
            _ => {
                return Err(RecordError(format!(
                    "the sum of `{field}` overflows a 64-bit float: {a} + {b}"
                )))
            }
        },
    };
    Ok(())
}

/// `min` or `max` of `field` (a number in `record`): keeps in `stored` the
/// record holding the extreme so far, the earlier one on a tie, and emits it.
/// A bare number stored (a checkpoint from before records were kept) is the
/// extreme with the other fields unknown: until a new extreme replaces it,
/// the current record is emitted with `field` set to that number.
fn extreme(
    kind: AggregateKind,
    field: &str,
    stored: &mut Option<Value>,
    mut record: Value,
) -> Value {
    let best = match stored.as_ref() {
        Some(n @ (Value::Int(_) | Value::Float(_))) => Some(n),
        // A stored record without a numeric `field` holds no extreme of it.
        Some(kept) => kept
            .get(field)
            .filter(|v| matches!(v, Value::Int(_) | Value::Float(_))),
        None => None,
    };
    let replaces = best.is_none_or(|best| {
        let next = record.get(field).unwrap_or(&Value::Null);
        let ord = match (next, best) {
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (a, b) => a.as_f64().total_cmp(&b.as_f64()),
        };
        ord == if kind == AggregateKind::Min {
            Ordering::Less
        } else {
            Ordering::Greater
        }
    });
    match stored {
        _ if replaces => {
            *stored = Some(record.clone());
            record
        }
        Some(n @ (Value::Int(_) | Value::Float(_))) => {
            if let Some(slot) = record.get_mut(field) {
                n.clone_into(slot);
            }
            record
        }
        Some(kept) => kept.clone(),
        None => record,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::memory::MemoryState;

    fn rec(json: &str) -> Value {
        serde_json::from_str(json).unwrap()
    }

    fn run(fold: Fold, key: &str, inputs: &[&str]) -> Vec<String> {
        run_on(MemoryState::new(false), fold, key, inputs)
    }

    fn run_on(state: MemoryState, fold: Fold, key: &str, inputs: &[&str]) -> Vec<String> {
        let mut op = Keyed::new(
            Expr::compile_key(key).unwrap(),
            fold,
            None,
            Box::new(state),
            128,
        );
        let mut out = Vec::new();
        for i in inputs {
            op.process(rec(i), &mut out).unwrap();
        }
        out.iter().map(Value::to_json).collect()
    }

    #[test]
    fn sum_emits_the_running_total_per_key() {
        let fold = Fold::Aggregate {
            kind: AggregateKind::Sum,
            field: intern("n"),
        };
        let out = run(
            fold,
            "k",
            &[
                r#"{"k":"a","n":1}"#,
                r#"{"k":"b","n":5}"#,
                r#"{"k":"a","n":2}"#,
            ],
        );
        assert_eq!(
            out,
            [
                r#"{"k":"a","n":1}"#,
                r#"{"k":"b","n":5}"#,
                r#"{"k":"a","n":3}"#
            ]
        );
    }

    /// A keyed `sum` of field `n` by field `k`, in memory.
    fn sum_of_n_by_k() -> Keyed {
        let fold = Fold::Aggregate {
            kind: AggregateKind::Sum,
            field: intern("n"),
        };
        Keyed::new(
            Expr::compile_key("k").unwrap(),
            fold,
            None,
            Box::new(MemoryState::new(false)),
            128,
        )
    }

    /// Issue 14, item 11: an integer sum past i64 used to turn silently
    /// into a float; it is the record's error now, as CEL's `+` is, and
    /// the total stays exact.
    #[test]
    fn an_integer_sum_that_overflows_is_the_records_error() {
        let mut op = sum_of_n_by_k();
        let mut out = Vec::new();
        op.process(
            rec(&format!(r#"{{"k":"a","n":{}}}"#, i64::MAX - 1)),
            &mut out,
        )
        .unwrap();
        let err = op.process(rec(r#"{"k":"a","n":2}"#), &mut out).unwrap_err();
        assert!(matches!(err, OpError::Record(_)), "{err:?}");
        op.process(rec(r#"{"k":"a","n":1}"#), &mut out).unwrap();
        assert_eq!(
            out.last().unwrap().to_json(),
            format!(r#"{{"k":"a","n":{}}}"#, i64::MAX)
        );
    }

    /// Issue 14, item 11: a float sum past the finite range was an
    /// infinity, printed as `null` and stored in checkpoints as `null`.
    #[test]
    fn a_float_sum_that_overflows_is_the_records_error() {
        let mut op = sum_of_n_by_k();
        let mut out = Vec::new();
        op.process(rec(r#"{"k":"a","n":1.5e308}"#), &mut out)
            .unwrap();
        let err = op
            .process(rec(r#"{"k":"a","n":1.5e308}"#), &mut out)
            .unwrap_err();
        let OpError::Record(e) = err else {
            panic!("{err:?}")
        };
        assert!(e.0.contains("overflows a 64-bit float"), "{}", e.0);
        op.process(rec(r#"{"k":"a","n":-0.5e308}"#), &mut out)
            .unwrap();
        assert_eq!(out.last().unwrap().to_json(), r#"{"k":"a","n":1e+308}"#);
    }

    #[test]
    fn min_max_count_and_reduce() {
        let ins = [r#"{"k":1,"n":5}"#, r#"{"k":1,"n":3}"#, r#"{"k":1,"n":4}"#];
        let min = run(
            Fold::Aggregate {
                kind: AggregateKind::Min,
                field: intern("n"),
            },
            "k",
            &ins,
        );
        assert_eq!(min[2], r#"{"k":1,"n":3}"#);
        let max = run(
            Fold::Aggregate {
                kind: AggregateKind::Max,
                field: intern("n"),
            },
            "k",
            &ins,
        );
        assert_eq!(max[2], r#"{"k":1,"n":5}"#);
        assert_eq!(count("k", &ins)[2], r#"{"k":1,"count":3}"#);
        let reduce = Expr::compile(
            r#"{"k": this.k, "n": acc.n + this.n}"#,
            &[crate::expr::Var::Acc, crate::expr::Var::This],
        )
        .unwrap();
        assert_eq!(run(Fold::Reduce(reduce), "k", &ins)[2], r#"{"k":1,"n":12}"#);
    }

    /// `count` as the plan builds it: its key named after `key`.
    fn count(key: &str, inputs: &[&str]) -> Vec<String> {
        let key_field = crate::nodes::transforms::count::key_field(key);
        run(Fold::Count { key_field }, key, inputs)
    }

    fn by(kind: AggregateKind, inputs: &[&str]) -> Vec<String> {
        let field = intern("n");
        run(Fold::Aggregate { kind, field }, "k", inputs)
    }

    #[test]
    fn count_names_the_key_after_the_field_it_is_keyed_by() {
        let words = [r#"{"word":"a"}"#, r#"{"word":"a"}"#];
        assert_eq!(count("word", &words)[1], r#"{"word":"a","count":2}"#);
        // `this.word` is the same key as `word`, and named alike.
        assert_eq!(count("this.word", &words)[1], r#"{"word":"a","count":2}"#);
        let users = [r#"{"user":{"id":7}}"#, r#"{"user":{"id":7}}"#];
        assert_eq!(count("user.id", &users)[1], r#"{"id":7,"count":2}"#);
    }

    #[test]
    fn count_names_the_key_key_for_this_an_expression_or_a_field_named_count() {
        assert_eq!(count("this", &[r#""a""#])[0], r#"{"key":"a","count":1}"#);
        let seqs = [r#"{"seq":5}"#, r#"{"seq":9}"#];
        assert_eq!(count("this.seq % 4", &seqs)[1], r#"{"key":1,"count":2}"#);
        let counts = [r#"{"count":3,"stats":{"count":3}}"#];
        assert_eq!(count("count", &counts)[0], r#"{"key":3,"count":1}"#);
        assert_eq!(count("stats.count", &counts)[0], r#"{"key":3,"count":1}"#);
    }

    #[test]
    fn min_and_max_emit_the_record_holding_the_extreme_and_keep_the_earlier_on_a_tie() {
        let ins = [
            r#"{"k":"a","n":5,"id":1}"#,
            r#"{"k":"a","n":3,"id":2}"#,
            r#"{"k":"b","n":1,"id":3}"#,
            r#"{"k":"a","n":4,"id":4}"#,
            r#"{"k":"a","n":3.0,"id":5}"#,
            r#"{"k":"a","n":5,"id":6}"#,
            r#"{"k":"a","n":7,"id":7}"#,
        ];
        let ids = |out: Vec<String>| -> Vec<i64> {
            out.iter()
                .map(|r| {
                    rec(r)
                        .get("id")
                        .and_then(|v| match v {
                            Value::Int(n) => Some(*n),
                            _ => None,
                        })
                        .unwrap()
                })
                .collect()
        };
        let min = by(AggregateKind::Min, &ins);
        assert_eq!(ids(min.clone()), [1, 2, 3, 2, 2, 2, 2]);
        assert_eq!(min[4], r#"{"k":"a","n":3,"id":2}"#);
        let max = by(AggregateKind::Max, &ins);
        assert_eq!(ids(max.clone()), [1, 1, 3, 1, 1, 1, 7]);
        assert_eq!(max[5], r#"{"k":"a","n":5,"id":1}"#);
    }

    #[test]
    fn a_bare_number_from_an_older_checkpoint_is_the_extreme_with_unknown_fields() {
        let mut state = MemoryState::new(false);
        let mut key = Vec::new();
        encode_key(&Value::from("a"), &mut key);
        *state.value_mut(key_group(&key, 128), &key).unwrap() = Some(Value::Int(4));
        let fold = Fold::Aggregate {
            kind: AggregateKind::Max,
            field: intern("n"),
        };
        let out = run_on(
            state,
            fold,
            "k",
            &[
                r#"{"k":"a","n":2,"id":1}"#,
                r#"{"k":"a","n":4,"id":2}"#,
                r#"{"k":"a","n":6,"id":3}"#,
                r#"{"k":"a","n":5,"id":4}"#,
            ],
        );
        assert_eq!(
            out,
            [
                r#"{"k":"a","n":4,"id":1}"#,
                r#"{"k":"a","n":4,"id":2}"#,
                r#"{"k":"a","n":6,"id":3}"#,
                r#"{"k":"a","n":6,"id":3}"#,
            ]
        );
    }

    #[test]
    fn restored_state_must_be_what_the_fold_writes() {
        let sum = Fold::Aggregate {
            kind: AggregateKind::Sum,
            field: intern("n"),
        };
        let max = Fold::Aggregate {
            kind: AggregateKind::Max,
            field: intern("n"),
        };
        let count = Fold::Count {
            key_field: intern("word"),
        };
        assert!(sum.check_state(&Value::Int(3)).is_ok());
        assert!(sum
            .check_state(&rec(r#""3""#))
            .unwrap_err()
            .to_string()
            .contains("running sum must be a number"));
        assert!(max.check_state(&rec(r#"{"n": 2, "k": "a"}"#)).is_ok());
        assert!(max.check_state(&Value::Float(2.5)).is_ok());
        assert!(max.check_state(&rec(r#"{"k": "a"}"#)).is_err());
        assert!(count.check_state(&Value::Int(1)).is_ok());
        assert!(count.check_state(&Value::Int(0)).is_err());
        assert!(count.check_state(&Value::Float(1.0)).is_err());
    }

    /// A `count` with `ttl: 1s` on a clock the test moves.
    fn count_with_ttl(state: MemoryState) -> Keyed {
        let fold = Fold::Count {
            key_field: intern("k"),
        };
        let mut op = Keyed::new(
            Expr::compile_key("k").unwrap(),
            fold,
            Some(1_000),
            Box::new(state),
            128,
        );
        op.on_tick(0, &mut Vec::new(), &mut Vec::new()).unwrap();
        op
    }

    fn counted(op: &mut Keyed, at: i64, key: &str) -> i64 {
        op.on_tick(at, &mut Vec::new(), &mut Vec::new()).unwrap();
        let mut out = Vec::new();
        op.process(rec(&format!(r#"{{"k":"{key}"}}"#)), &mut out)
            .unwrap();
        match out[0].get("count") {
            Some(Value::Int(n)) => *n,
            other => panic!("{other:?}"),
        }
    }

    /// A key updated within its time to live goes on; one left alone for
    /// longer starts again, and the clock has removed it from state (a
    /// tombstone for the next checkpoint).
    #[test]
    fn a_key_left_alone_longer_than_its_ttl_starts_again() {
        let mut op = count_with_ttl(MemoryState::new(true));
        assert_eq!(counted(&mut op, 0, "a"), 1);
        assert_eq!(counted(&mut op, 900, "a"), 2);
        assert_eq!(counted(&mut op, 1_800, "a"), 3, "updated at 900: alive");
        assert_eq!(counted(&mut op, 1_850, "b"), 1);
        op.snapshot().unwrap();
        let taken = op.copy_snapshot(usize::MAX).unwrap().unwrap();
        assert_eq!(taken.len(), 2);
        // `a` expires at 2,800 and `b` at 2,850.
        op.on_tick(2_820, &mut Vec::new(), &mut Vec::new()).unwrap();
        op.snapshot().unwrap();
        let taken = op.copy_snapshot(usize::MAX).unwrap().unwrap();
        assert_eq!(
            taken,
            vec![((key_group(b"sa", 128), b"sa"[..].into()), None)]
        );
        assert_eq!(counted(&mut op, 2_830, "a"), 1);
        assert_eq!(counted(&mut op, 2_840, "b"), 2);
    }

    /// Restored values keep their last update: one that expired while the
    /// job was down counts as gone, even before the clock removes it.
    #[test]
    fn restored_values_expire_by_their_last_update() {
        let mut op = count_with_ttl(MemoryState::new(false));
        let entry = Value::List(vec![Value::Int(5), Value::Int(-2_000)]);
        assert!(op.check_state(&entry).is_ok());
        assert!(op.check_state(&Value::Int(5)).is_err(), "no update time");
        op.restore(key_group(b"sa", 128), b"sa", entry).unwrap();
        let fresh = Value::List(vec![Value::Int(7), Value::Int(-500)]);
        op.restore(key_group(b"sb", 128), b"sb", fresh).unwrap();
        let mut out = Vec::new();
        op.process(rec(r#"{"k":"a"}"#), &mut out).unwrap();
        op.process(rec(r#"{"k":"b"}"#), &mut out).unwrap();
        let counts: Vec<_> = out.iter().map(|r| r.get("count").cloned()).collect();
        assert_eq!(counts, [Some(Value::Int(1)), Some(Value::Int(8))]);
    }
}
