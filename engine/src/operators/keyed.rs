//! Keyed rolling aggregates: sum, min, max, count and reduce.
//!
//! Each keeps one value per key in a [`KeyedState`] and emits the updated
//! result for every input record, as Flink's keyed `sum` does.

use std::cmp::Ordering;

use super::{OpError, Operator, RecordError, Snapshot};
use crate::expr::Expr;
use crate::plan::AggregateKind;
use crate::state::{encode_key, key_group, Changes, KeyedState};
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
    /// The field names of `count`'s output, interned once.
    count_fields: [Name; 2],
}

impl Keyed {
    pub fn new(key: Expr, fold: Fold, state: Box<dyn KeyedState>, max_parallelism: u32) -> Keyed {
        Keyed {
            key,
            fold,
            state,
            max_parallelism,
            key_buf: Vec::new(),
            count_fields: [intern("key"), intern("count")],
        }
    }
}

impl Operator for Keyed {
    fn process(&mut self, mut record: Value, out: &mut Vec<Value>) -> Result<(), OpError> {
        let key = self.key.eval_ref(&record)?;
        self.key_buf.clear();
        encode_key(&key, &mut self.key_buf);
        // Only `count` emits the key; the others read it from the record.
        let key = matches!(self.fold, Fold::Count).then(|| key.into_owned());
        let kg = key_group(&self.key_buf, self.max_parallelism);
        let emitted = match &self.fold {
            Fold::Aggregate { kind, field } => {
                // A bad record is refused before it can touch the state.
                let Some(slot) = record.get_mut(&field[..]) else {
                    return Err(RecordError(format!(
                        "the record has no field `{field}` to aggregate: {record}"
                    ))
                    .into());
                };
                check_number(slot, &field[..])?;
                match self.state.value_mut(kg, &self.key_buf)? {
                    Some(acc) => {
                        combine(*kind, acc, slot);
                        acc.clone_into(slot);
                    }
                    stored @ None => *stored = Some(slot.clone()),
                }
                record
            }
            Fold::Count => {
                let stored = self.state.value_mut(kg, &self.key_buf)?;
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
                let [key_field, count_field] = self.count_fields.clone();
                Value::Map(vec![
                    (key_field, key.unwrap_or_default()),
                    (count_field, Value::Int(n)),
                ])
            }
            Fold::Reduce(expr) => {
                let stored = self.state.value_mut(kg, &self.key_buf)?;
                let next = match stored {
                    None => record,
                    Some(acc) => expr.eval(&record, Some(acc))?,
                };
                *stored = Some(next.clone());
                next
            }
        };
        out.push(emitted);
        Ok(())
    }

    fn snapshot(&mut self) -> Result<Snapshot, OpError> {
        Ok(match self.state.begin_snapshot()? {
            Some(changes) => Snapshot::Taken(changes),
            None => Snapshot::Deferred,
        })
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

/// Folds `next` (a number) into the accumulator `acc`.
fn combine(kind: AggregateKind, acc: &mut Value, next: &Value) {
    match kind {
        AggregateKind::Sum => {
            *acc = match (&*acc, next) {
                (Value::Int(a), Value::Int(b)) => match a.checked_add(*b) {
                    Some(n) => Value::Int(n),
                    None => Value::Float(*a as f64 + *b as f64),
                },
                (a, b) => Value::Float(as_f64(a) + as_f64(b)),
            }
        }
        AggregateKind::Min | AggregateKind::Max => {
            let ord = match (&*acc, next) {
                (Value::Int(a), Value::Int(b)) => a.cmp(b),
                (a, b) => as_f64(a).total_cmp(&as_f64(b)),
            };
            let keep_acc = if kind == AggregateKind::Min {
                ord != Ordering::Greater
            } else {
                ord != Ordering::Less
            };
            if !keep_acc {
                next.clone_into(acc);
            }
        }
    }
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
            Box::new(MemoryState::new(false)),
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
