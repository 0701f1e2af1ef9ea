//! Stateless transforms: map, filter, flat_map and the pass-through of key_by.

use std::sync::Arc;

use super::{OpError, Operator, RecordError};
use crate::expr::Expr;
use crate::value::Value;

pub struct Map(pub Expr);

impl Operator for Map {
    fn process(&mut self, record: Value, out: &mut Vec<Value>) -> Result<(), OpError> {
        out.push(self.0.eval(&record, None)?);
        Ok(())
    }
}

pub struct Filter(pub Expr);

impl Operator for Filter {
    fn process(&mut self, record: Value, out: &mut Vec<Value>) -> Result<(), OpError> {
        if self.0.test(&record)? {
            out.push(record);
        }
        Ok(())
    }
}

/// Splits a string on a separator; the pieces share the string's buffer.
pub struct Split(pub Arc<str>);

impl Operator for Split {
    fn process(&mut self, record: Value, out: &mut Vec<Value>) -> Result<(), OpError> {
        let Value::Str(s) = &record else {
            return Err(RecordError(format!(
                "`split` needs a string record, got {} `{record}`",
                record.type_name()
            ))
            .into());
        };
        let text = s.as_str();
        let sep = &*self.0;
        let mut start = 0;
        if let &[byte] = sep.as_bytes() {
            // An ASCII byte never occurs inside a multi-byte character, so
            // every match is a character boundary.
            for at in memchr::memchr_iter(byte, text.as_bytes()) {
                out.push(Value::Str(s.slice(start..at)));
                start = at + 1;
            }
        } else {
            for (at, _) in text.match_indices(sep) {
                out.push(Value::Str(s.slice(start..at)));
                start = at + sep.len();
            }
        }
        out.push(Value::Str(s.slice(start..text.len())));
        Ok(())
    }
}

/// Emits each element of the list an expression returns.
pub struct Explode(pub Expr);

impl Operator for Explode {
    fn process(&mut self, record: Value, out: &mut Vec<Value>) -> Result<(), OpError> {
        match self.0.eval(&record, None)? {
            Value::List(items) => out.extend(items),
            other => {
                return Err(RecordError(format!(
                    "flat_map's `expr` must return a list, got {} `{other}`",
                    other.type_name()
                ))
                .into())
            }
        }
        Ok(())
    }
}

/// `key_by` only repartitions: records reach it by key and pass unchanged.
pub struct PassThrough;

impl Operator for PassThrough {
    fn process(&mut self, record: Value, out: &mut Vec<Value>) -> Result<(), OpError> {
        out.push(record);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_empty_pieces_like_java() {
        let mut out = Vec::new();
        Split(Arc::from(","))
            .process(Value::from("a,,b"), &mut out)
            .unwrap();
        let words: Vec<_> = out.iter().map(|v| v.as_str().unwrap().to_owned()).collect();
        assert_eq!(words, ["a", "", "b"]);
    }
}
