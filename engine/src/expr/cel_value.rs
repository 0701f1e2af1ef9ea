//! Conversions between records and CEL values, for the expressions that
//! run in the `cel` interpreter.
//!
//! Apart from `mod.rs` because the native fast paths never convert: only
//! an expression compiled to a CEL program pays for them, once per record
//! on the way in and once on the way out.

use std::sync::Arc;

use super::EvalError;
use crate::value::{Name, Str, Value};

pub(super) fn to_cel(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Int(n) => cel::Value::Int(*n),
        Value::Float(x) => cel::Value::Float(*x),
        Value::Str(s) => cel::Value::String(Arc::new(s.as_str().to_owned())),
        Value::List(items) => cel::Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Map(fields) => cel::Value::Map(cel::objects::Map {
            map: Arc::new(
                fields
                    .iter()
                    .map(|(k, v)| {
                        (
                            cel::objects::Key::String(Arc::new(k.to_string())),
                            to_cel(v),
                        )
                    })
                    .collect(),
            ),
        }),
    }
}

pub(super) fn from_cel(v: &cel::Value) -> Result<Value, EvalError> {
    Ok(match v {
        cel::Value::Null => Value::Null,
        cel::Value::Bool(b) => Value::Bool(*b),
        cel::Value::Int(n) => Value::Int(*n),
        cel::Value::UInt(n) => i64::try_from(*n).map_or(Value::Float(*n as f64), Value::Int),
        cel::Value::Float(x) if x.is_finite() => Value::Float(*x),
        cel::Value::Float(x) => return Err(EvalError::NotFinite(*x)),
        cel::Value::String(s) => Value::Str(Str::from(s.as_str())),
        cel::Value::List(items) => {
            Value::List(items.iter().map(from_cel).collect::<Result<_, _>>()?)
        }
        cel::Value::Map(map) => {
            let mut fields: Vec<(Name, Value)> = map
                .map
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        cel::objects::Key::String(s) => Name::from(s.as_str()),
                        cel::objects::Key::Int(n) => Name::from(n.to_string()),
                        cel::objects::Key::Uint(n) => Name::from(n.to_string()),
                        cel::objects::Key::Bool(b) => Name::from(b.to_string()),
                    };
                    Ok((key, from_cel(v)?))
                })
                .collect::<Result<_, EvalError>>()?;
            // CEL maps are unordered; sort so that output is deterministic.
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Map(fields)
        }
        // Records hold times as text: RFC 3339 in UTC, and durations as
        // CEL writes them (`90s`, `0.5s`), which `timestamp()` and
        // `duration()` read back.
        cel::Value::Timestamp(t) => Value::Str(Str::from(
            t.to_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                .as_str(),
        )),
        cel::Value::Duration(d) => Value::Str(Str::from(duration_text(d).as_str())),
        cel::Value::Bytes(_) => return Err(EvalError::Unrepresentable("bytes")),
        cel::Value::Function(..) => return Err(EvalError::Unrepresentable("a function")),
        _ => return Err(EvalError::Unrepresentable("a value of an unsupported type")),
    })
}

/// `d` as CEL's `string(duration)` writes it: seconds, with the fraction
/// only when there is one.
fn duration_text(d: &chrono::Duration) -> String {
    let nanos = d
        .num_nanoseconds()
        .map_or(d.num_seconds() as i128 * 1_000_000_000, i128::from);
    let sign = if nanos < 0 { "-" } else { "" };
    let nanos = nanos.unsigned_abs();
    let (secs, frac) = (nanos / 1_000_000_000, nanos % 1_000_000_000);
    if frac == 0 {
        format!("{sign}{secs}s")
    } else {
        let frac = format!("{frac:09}");
        format!("{sign}{secs}.{}s", frac.trim_end_matches('0'))
    }
}
