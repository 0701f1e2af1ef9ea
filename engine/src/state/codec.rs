//! The encoding of state values, in snapshots and in sled: one writer and
//! one reader, so the two can never disagree.

use crate::value::Value;

/// A value's encoding.
pub fn encode_value(value: &Value) -> Box<[u8]> {
    let mut out = Vec::new();
    write_value(value, &mut out);
    out.into_boxed_slice()
}

/// Appends [`encode_value`]'s encoding of `value` to `out`.
pub fn write_value(value: &Value, out: &mut Vec<u8>) {
    let start = out.len();
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.truncate(start);
        out.extend_from_slice(b"null");
    }
}

/// The value [`encode_value`] encoded as `bytes`.
pub fn decode_value(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_as_written() {
        for text in [
            r#"{"word":"a","count":3}"#,
            "1.5",
            "-7",
            r#""x""#,
            "[1,[2]]",
            "null",
        ] {
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                decode_value(&encode_value(&value)).unwrap(),
                value,
                "{text}"
            );
        }
    }
}
