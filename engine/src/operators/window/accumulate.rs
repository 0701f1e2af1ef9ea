//! What a window computes of its records: named aggregates (`count`,
//! `sum(bytes)`, ...) or a CEL reduce, each kept as an accumulator that
//! adds one record at a time, merges with another (when sessions merge),
//! and gives the window's result.
//!
//! Accumulators are plain values, so they go into keyed state and
//! checkpoints as they are. `sum`, `avg`, `min` and `max` skip a missing
//! or null input, as SQL's aggregates do; `first`, `last` and `collect`
//! go by event time, so their results do not depend on the order records
//! arrive in.

use std::cmp::Ordering;

use crate::expr::{EvalError, Expr};
use crate::operators::RecordError;
use crate::value::{Name, Value};

/// An aggregate function, as written before its parentheses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    /// `count`: the window's records; `count(x)`: those where `x` is not null.
    Count,
    Sum,
    Min,
    Max,
    Avg,
    First,
    Last,
    Collect,
}

impl Function {
    /// Every function, by the name written in a spec.
    pub const NAMES: &'static [(&'static str, Function)] = &[
        ("count", Function::Count),
        ("sum", Function::Sum),
        ("min", Function::Min),
        ("max", Function::Max),
        ("avg", Function::Avg),
        ("first", Function::First),
        ("last", Function::Last),
        ("collect", Function::Collect),
    ];
}

/// One named aggregate of a window's output record.
#[derive(Clone, Debug)]
pub struct Aggregate {
    pub name: Name,
    pub function: Function,
    /// What it aggregates; `None` only for a bare `count`.
    pub arg: Option<Expr>,
}

/// What a window's accumulator is.
#[derive(Clone, Debug)]
pub enum Body {
    /// One accumulator per aggregate, in a list.
    Aggregates(Vec<Aggregate>),
    /// The first record, then `expr` of each next one (`this`) and the
    /// accumulator (`acc`).
    Reduce(Expr),
    /// A window join: each input's records, as lists of `[time, record]`;
    /// the window's results are the pairs of a left and a right record,
    /// under the inputs' `names`, and with `outer` each left record that
    /// has none to pair with, alone.
    Join { names: [Name; 2], outer: bool },
}

impl Aggregate {
    /// The aggregate's input from `record`: its argument's value, null
    /// when a field it reads is missing.
    pub fn input(&self, record: &Value) -> Result<Value, RecordError> {
        let Some(arg) = &self.arg else {
            return Ok(Value::Null);
        };
        let value = match arg.eval_ref(record) {
            Ok(v) => v.into_owned(),
            Err(EvalError::MissingField { .. }) => Value::Null,
            Err(e) => return Err(RecordError(e.to_string())),
        };
        let fits = match self.function {
            Function::Sum | Function::Avg => {
                matches!(value, Value::Null | Value::Int(_) | Value::Float(_))
            }
            Function::Min | Function::Max => matches!(
                value,
                Value::Null | Value::Int(_) | Value::Float(_) | Value::Str(_)
            ),
            _ => true,
        };
        if fits {
            return Ok(value);
        }
        Err(RecordError(format!(
            "`{}` of a window takes numbers{}, not {} `{value}`",
            self.name,
            if matches!(self.function, Function::Min | Function::Max) {
                " or text"
            } else {
                ""
            },
            value.type_name()
        )))
    }

    /// The accumulator of a window without records.
    pub fn empty(&self) -> Value {
        match self.function {
            Function::Count => Value::Int(0),
            Function::Avg => Value::List(vec![Value::Int(0), Value::Int(0)]),
            Function::Collect => Value::List(Vec::new()),
            _ => Value::Null,
        }
    }

    /// Why adding `input` to `acc` would fail (a sum past the 64-bit
    /// range, a `min` of text after numbers): checked for every aggregate
    /// before any adds, so that a bad record leaves the window unchanged.
    pub fn check(&self, acc: &Value, input: &Value) -> Result<(), RecordError> {
        match self.function {
            Function::Sum => sum(acc, input).map(drop),
            Function::Avg => match acc {
                Value::List(pair) if pair.len() == 2 => sum(&pair[0], input).map(drop),
                _ => Ok(()),
            },
            Function::Min | Function::Max => match (acc, input) {
                (Value::Null, _) | (_, Value::Null) => Ok(()),
                (a, b) if compare(a, b).is_some() => Ok(()),
                (a, b) => Err(RecordError(format!(
                    "`{}` cannot compare {} `{b}` with the {} `{a}` before it",
                    self.name,
                    b.type_name(),
                    a.type_name()
                ))),
            },
            _ => Ok(()),
        }
    }

    /// Adds one record's `input` (checked), which happened at `time`.
    pub fn add(&self, acc: &mut Value, input: Value, time: i64) {
        match self.function {
            Function::Count => {
                if self.arg.is_none() || input != Value::Null {
                    if let Value::Int(n) = acc {
                        *n = n.saturating_add(1);
                    }
                }
            }
            Function::Sum => {
                if let Ok(Some(total)) = sum(acc, &input) {
                    *acc = total;
                }
            }
            Function::Avg => {
                if let (Value::List(pair), false) = (&mut *acc, input == Value::Null) {
                    if let Ok(Some(total)) = sum(&pair[0], &input) {
                        pair[0] = total;
                        if let Value::Int(n) = &mut pair[1] {
                            *n = n.saturating_add(1);
                        }
                    }
                }
            }
            Function::Min | Function::Max => {
                if self.replaces(acc, &input) {
                    *acc = input;
                }
            }
            Function::First | Function::Last | Function::Collect => {
                let entry = Value::List(vec![Value::Int(time), input]);
                self.merge(
                    acc,
                    if self.function == Function::Collect {
                        Value::List(vec![entry])
                    } else {
                        entry
                    },
                );
            }
        }
    }

    /// Merges `other` (a later session's accumulator, or one record's)
    /// into `acc`.
    pub fn merge(&self, acc: &mut Value, other: Value) {
        match self.function {
            Function::Count => {
                if let (Value::Int(a), Value::Int(b)) = (&mut *acc, other) {
                    *a = a.saturating_add(b);
                }
            }
            Function::Sum => {
                if let Ok(Some(total)) = sum(acc, &other) {
                    *acc = total;
                }
            }
            Function::Avg => {
                if let (Value::List(a), Value::List(b)) = (&mut *acc, other) {
                    if let (2, [bs, bn]) = (a.len(), &b[..]) {
                        if let Ok(Some(total)) = sum(&a[0], bs) {
                            a[0] = total;
                        }
                        if let (Value::Int(n), Value::Int(m)) = (&mut a[1], bn) {
                            *n = n.saturating_add(*m);
                        }
                    }
                }
            }
            Function::Min | Function::Max => {
                if self.replaces(acc, &other) {
                    *acc = other;
                }
            }
            // `[time, value]`: the earlier (on a tie, the one held), or
            // the later (on a tie, the new one).
            Function::First | Function::Last => {
                let later = |a: &Value, b: &Value| match (timed(a), timed(b)) {
                    (Some(a), Some(b)) => b.cmp(&a),
                    (None, _) => Ordering::Greater,
                    (_, None) => Ordering::Less,
                };
                let replace = match later(acc, &other) {
                    Ordering::Greater => self.function == Function::Last,
                    Ordering::Equal => self.function == Function::Last,
                    Ordering::Less => self.function == Function::First,
                };
                if replace || *acc == Value::Null {
                    *acc = other;
                }
            }
            Function::Collect => {
                if let (Value::List(a), Value::List(b)) = (&mut *acc, other) {
                    a.extend(b);
                }
            }
        }
    }

    /// Whether `candidate` is a new extreme for `min` or `max`.
    fn replaces(&self, acc: &Value, candidate: &Value) -> bool {
        if *candidate == Value::Null {
            return false;
        }
        if *acc == Value::Null {
            return true;
        }
        let wanted = if self.function == Function::Min {
            Ordering::Less
        } else {
            Ordering::Greater
        };
        compare(candidate, acc) == Some(wanted)
    }

    /// The aggregate's value in the window's output.
    pub fn result(&self, acc: &Value) -> Value {
        match (self.function, acc) {
            (Function::Avg, Value::List(pair)) => match &pair[..] {
                [_, Value::Int(0)] => Value::Null,
                [total, Value::Int(n)] => Value::Float(total.as_f64() / *n as f64),
                _ => Value::Null,
            },
            (Function::First | Function::Last, Value::List(pair)) => {
                pair.get(1).cloned().unwrap_or_default()
            }
            (Function::Collect, Value::List(items)) => {
                let mut items: Vec<&Value> = items.iter().collect();
                // Stable: records at one time keep the order they came in.
                items.sort_by_key(|item| timed(item));
                Value::List(
                    items
                        .into_iter()
                        .map(|item| match item {
                            Value::List(pair) => pair.get(1).cloned().unwrap_or_default(),
                            _ => Value::Null,
                        })
                        .collect(),
                )
            }
            _ => acc.clone(),
        }
    }

    /// Whether a restored accumulator is one this aggregate can have made.
    pub fn fits(&self, acc: &Value) -> bool {
        let number = |v: &Value| matches!(v, Value::Int(_) | Value::Float(_));
        let pair = |v: &Value| matches!(v, Value::List(p) if p.len() == 2 && matches!(p[0], Value::Int(_)));
        match self.function {
            Function::Count => matches!(acc, Value::Int(n) if *n >= 0),
            Function::Sum => number(acc) || *acc == Value::Null,
            Function::Avg => {
                matches!(acc, Value::List(p) if p.len() == 2 && number(&p[0]) && matches!(p[1], Value::Int(n) if n >= 0))
            }
            Function::Min | Function::Max => {
                number(acc) || matches!(acc, Value::Str(_) | Value::Null)
            }
            Function::First | Function::Last => pair(acc) || *acc == Value::Null,
            Function::Collect => matches!(acc, Value::List(items) if items.iter().all(pair)),
        }
    }
}

/// The time of a `[time, value]` entry.
fn timed(entry: &Value) -> Option<i64> {
    match entry {
        Value::List(pair) => match pair.first() {
            Some(Value::Int(t)) => Some(*t),
            _ => None,
        },
        _ => None,
    }
}

/// `acc + input` for `sum`: `None` when there is nothing to add (a null
/// input). Integers stay exact; past the 64-bit range is the record's
/// error, as the `sum` transform's is.
fn sum(acc: &Value, input: &Value) -> Result<Option<Value>, RecordError> {
    Ok(Some(match (acc, input) {
        (_, Value::Null) => return Ok(None),
        (Value::Null, n) => n.clone(),
        (Value::Int(a), Value::Int(b)) => Value::Int(a.checked_add(*b).ok_or_else(|| {
            RecordError(format!(
                "a window's sum overflows a 64-bit integer: {a} + {b}"
            ))
        })?),
        (a, b) => match a.as_f64() + b.as_f64() {
            total if total.is_finite() => Value::Float(total),
            _ => {
                return Err(RecordError(format!(
                    "a window's sum overflows a 64-bit float: {a} + {b}"
                )))
            }
        },
    }))
}

/// The order of two numbers, or of two texts; `None` across kinds.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            Some(a.as_f64().total_cmp(&b.as_f64()))
        }
        (Value::Str(x), Value::Str(y)) => Some(x.as_str().cmp(y.as_str())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::intern;

    fn agg(function: Function, arg: Option<&str>) -> Aggregate {
        Aggregate {
            name: intern("a"),
            function,
            arg: arg.map(|a| Expr::compile_key(a).unwrap()),
        }
    }

    fn rec(json: &str) -> Value {
        serde_json::from_str(json).unwrap()
    }

    /// Adds the records `(time, json)` in order and gives the result.
    fn run(a: &Aggregate, records: &[(i64, &str)]) -> Value {
        let mut acc = a.empty();
        for (time, json) in records {
            let input = a.input(&rec(json)).unwrap();
            a.check(&acc, &input).unwrap();
            a.add(&mut acc, input, *time);
        }
        assert!(a.fits(&acc), "{acc}");
        a.result(&acc)
    }

    const RECORDS: &[(i64, &str)] = &[
        (30, r#"{"n": 3, "s": "b"}"#),
        (10, r#"{"n": 5, "s": "c"}"#),
        (20, r#"{"s": "a"}"#),
        (20, r#"{"n": 1.5, "s": "d"}"#),
    ];

    #[test]
    fn each_function_over_out_of_order_records_with_a_missing_field() {
        let n = Some("n");
        assert_eq!(run(&agg(Function::Count, None), RECORDS), Value::Int(4));
        assert_eq!(run(&agg(Function::Count, n), RECORDS), Value::Int(3));
        assert_eq!(run(&agg(Function::Sum, n), RECORDS), Value::Float(9.5));
        assert_eq!(run(&agg(Function::Min, n), RECORDS), Value::Float(1.5));
        assert_eq!(run(&agg(Function::Max, Some("s")), RECORDS), rec(r#""d""#));
        assert_eq!(
            run(&agg(Function::Avg, n), RECORDS),
            Value::Float(9.5 / 3.0)
        );
        assert_eq!(
            run(&agg(Function::First, Some("s")), RECORDS),
            rec(r#""c""#)
        );
        // Two records at 20: the later in arrival is the last of them, but
        // the record at 30 is last.
        assert_eq!(run(&agg(Function::Last, Some("s")), RECORDS), rec(r#""b""#));
        assert_eq!(
            run(&agg(Function::Collect, Some("s")), RECORDS),
            rec(r#"["c", "a", "d", "b"]"#)
        );
        assert_eq!(run(&agg(Function::Avg, n), &[(1, "{}")]), Value::Null);
    }

    /// Sessions merge their accumulators: the result is the one of all
    /// the records, however they were split.
    #[test]
    fn merging_two_halves_gives_the_result_of_the_whole() {
        for (_, f) in Function::NAMES {
            let a = agg(*f, Some(if *f == Function::Max { "s" } else { "n" }));
            let whole = run(&a, RECORDS);
            let mut left = a.empty();
            let mut right = a.empty();
            for (i, (time, json)) in RECORDS.iter().enumerate() {
                let side = if i % 2 == 0 { &mut left } else { &mut right };
                a.add(side, a.input(&rec(json)).unwrap(), *time);
            }
            a.merge(&mut left, right);
            assert_eq!(a.result(&left), whole, "{f:?}");
        }
    }

    #[test]
    fn bad_inputs_are_the_records_errors_before_anything_changes() {
        let sum = agg(Function::Sum, Some("n"));
        assert!(sum.input(&rec(r#"{"n": "7"}"#)).is_err());
        assert!(sum
            .check(&Value::Int(i64::MAX), &Value::Int(1))
            .unwrap_err()
            .0
            .contains("overflows"));
        let min = agg(Function::Min, Some("n"));
        assert!(min.check(&Value::Int(1), &rec(r#""a""#)).is_err());
        assert!(min.input(&rec(r#"{"n": [1]}"#)).is_err());
        assert!(!agg(Function::Count, None).fits(&rec(r#""x""#)));
    }
}
