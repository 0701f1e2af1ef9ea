//! Keyed rolling aggregates: sum, min, max, count and reduce.
//!
//! Each keeps one value per key in a [`KeyedState`] and emits the updated
//! result for every input record, as Flink's keyed `sum` does.

use std::cmp::Ordering;

use super::{OpError, Operator, RecordError};
use crate::expr::Expr;
use crate::plan::AggregateKind;
use crate::state::{encode_key, key_group, KeyedState};
use crate::value::{intern, Name, Value};

/// What a keyed operator does with the state of one key.
pub enum Fold {
    Aggregate { kind: AggregateKind, field: Name },
    Count,
    Reduce(Expr),
}

pub struct Keyed {
    key: Expr,
    fold: Fold,
    state: Box<dyn KeyedState>,
    max_parallelism: u32,
    key_buf: Vec<u8>,
}

impl Keyed {
    pub fn new(key: Expr, fold: Fold, state: Box<dyn KeyedState>, max_parallelism: u32) -> Keyed {
        Keyed {
            key,
            fold,
            state,
            max_parallelism,
            key_buf: Vec::new(),
        }
    }
}

impl Operator for Keyed {
    fn process(&mut self, mut record: Value, out: &mut Vec<Value>) -> Result<(), OpError> {
        let key = self.key.eval(&record, None)?;
        self.key_buf.clear();
        encode_key(&key, &mut self.key_buf);
        let kg = key_group(&self.key_buf, self.max_parallelism);
        let previous = self.state.get(kg, &self.key_buf)?;
        let (stored, emitted) = match &self.fold {
            Fold::Aggregate { kind, field } => {
                let Some(slot) = record.get_mut(field) else {
                    return Err(RecordError(format!(
                        "the record has no field `{field}` to aggregate: {record}"
                    ))
                    .into());
                };
                let next = match previous {
                    None => number(slot, field)?,
                    Some(prev) => combine(*kind, &prev, slot, field)?,
                };
                *slot = next.clone();
                (next, record)
            }
            Fold::Count => {
                let n = match previous {
                    Some(Value::Int(n)) => n + 1,
                    _ => 1,
                };
                (
                    Value::Int(n),
                    Value::Map(vec![(intern("key"), key), (intern("count"), Value::Int(n))]),
                )
            }
            Fold::Reduce(expr) => {
                let next = match previous {
                    None => record,
                    Some(acc) => expr.eval(&record, Some(&acc))?,
                };
                (next.clone(), next)
            }
        };
        self.state.put(kg, &self.key_buf, stored)?;
        out.push(emitted);
        Ok(())
    }

    fn snapshot(&mut self) -> Result<Option<crate::state::Changes>, OpError> {
        Ok(Some(self.state.take_changes()?))
    }
}

fn number(v: &Value, field: &str) -> Result<Value, RecordError> {
    match v {
        Value::Int(_) | Value::Float(_) => Ok(v.clone()),
        other => Err(RecordError(format!(
            "field `{field}` must be a number, got {} `{other}`",
            other.type_name()
        ))),
    }
}

fn combine(
    kind: AggregateKind,
    prev: &Value,
    next: &Value,
    field: &str,
) -> Result<Value, RecordError> {
    let next = number(next, field)?;
    Ok(match kind {
        AggregateKind::Sum => match (prev, &next) {
            (Value::Int(a), Value::Int(b)) => match a.checked_add(*b) {
                Some(n) => Value::Int(n),
                None => Value::Float(*a as f64 + *b as f64),
            },
            (a, b) => Value::Float(as_f64(a) + as_f64(b)),
        },
        AggregateKind::Min | AggregateKind::Max => {
            let ord = match (prev, &next) {
                (Value::Int(a), Value::Int(b)) => a.cmp(b),
                (a, b) => as_f64(a).total_cmp(&as_f64(b)),
            };
            let keep_prev = if kind == AggregateKind::Min {
                ord != Ordering::Greater
            } else {
                ord != Ordering::Less
            };
            if keep_prev {
                prev.clone()
            } else {
                next
            }
        }
    })
}

fn as_f64(v: &Value) -> f64 {
    match v {
        Value::Int(n) => *n as f64,
        Value::Float(x) => *x,
        _ => f64::NAN,
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
        let mut op = Keyed::new(
            Expr::compile_key(key).unwrap(),
            fold,
            Box::<MemoryState>::default(),
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
        assert_eq!(run(Fold::Count, "k", &ins)[2], r#"{"key":1,"count":3}"#);
        let reduce = Expr::compile(
            r#"{"k": this.k, "n": acc.n + this.n}"#,
            &[crate::expr::Var::Acc, crate::expr::Var::This],
        )
        .unwrap();
        assert_eq!(run(Fold::Reduce(reduce), "k", &ins)[2], r#"{"k":1,"n":12}"#);
    }
}
