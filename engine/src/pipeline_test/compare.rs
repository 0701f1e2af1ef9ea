//! What a sink wrote against what a test expects of it: as multisets, since
//! the order of records from parallel instances is not the job's to keep.
//! Numbers compare by value (`2` is `2.0`), objects by their fields in any
//! order.

use serde_json::Value;

/// How a sink's output differs from what was expected.
#[derive(Debug, Default, PartialEq)]
pub struct Difference {
    /// The places in the expected list of records never written.
    pub missing: Vec<usize>,
    /// Records written that nothing expected, in the order written.
    pub unexpected: Vec<Value>,
}

impl Difference {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty()
    }
}

/// Pairs each record written with an equal expected one not yet paired.
pub fn compare(expected: &[Value], written: &[Value]) -> Difference {
    let mut paired = vec![false; expected.len()];
    let mut unexpected = Vec::new();
    for record in written {
        match (0..expected.len()).find(|&k| !paired[k] && same(&expected[k], record)) {
            Some(k) => paired[k] = true,
            None => unexpected.push(record.clone()),
        }
    }
    Difference {
        missing: (0..expected.len()).filter(|&k| !paired[k]).collect(),
        unexpected,
    }
}

/// Equality of two JSON values, numbers by value.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn multisets_with_numbers_by_value_and_fields_in_any_order() {
        let expected = [
            json!({"word": "to", "count": 2}),
            json!({"word": "be", "count": 1}),
            json!({"word": "be", "count": 1}),
            json!("x"),
        ];
        let written = [
            json!({"count": 1.0, "word": "be"}),
            json!({"word": "to", "count": 2}),
            json!({"word": "or", "count": 1}),
            json!("x"),
        ];
        let d = compare(&expected, &written);
        assert_eq!(d.missing, [2], "one `be` of two was written");
        assert_eq!(d.unexpected, [json!({"word": "or", "count": 1})]);
        assert!(compare(&expected, &expected).is_empty());
        assert!(
            !same(&json!([1, 2]), &json!([2, 1])),
            "lists keep their order"
        );
        assert!(!same(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(same(&json!(0.5), &json!(0.5)) && !same(&json!(1), &json!("1")));
    }
}
