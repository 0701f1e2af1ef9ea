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
        cel::Value::Bytes(_) => return Err(EvalError::Unrepresentable("bytes")),
        cel::Value::Function(..) => return Err(EvalError::Unrepresentable("a function")),
        _ => return Err(EvalError::Unrepresentable("a value of an unsupported type")),
    })
}
