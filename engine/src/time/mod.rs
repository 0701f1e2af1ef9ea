//! Event time: when each record happened, as opposed to when it is read.
//!
//! A source that declares `event_time` gives every record a timestamp
//! (milliseconds since the Unix epoch) that travels with it through the
//! job beside the record, as Flink's `StreamRecord` timestamp does, and
//! emits watermarks: "no record older than this is still to come". An
//! instance's watermark is the lowest of its inputs' ([`inputs`]); the
//! sources make theirs from the records they read ([`stamper`]).
//!
//! See docs/time.md for how they behave.

pub mod inputs;
pub mod stamper;
pub mod windows;

use crate::value::Value;

/// What travels on a channel besides records and barriers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watermark {
    /// No record with a time before this one is still to come from the
    /// sender (milliseconds since the epoch). [`END`] once its input ended.
    At(i64),
    /// The sender has had no records for its `idle_timeout`: until it
    /// sends a time again, it holds no one's watermark back.
    Idle,
}

/// The watermark of an input that has ended: every window can close.
pub const END: i64 = i64::MAX;

/// The time of an instance that has seen no watermark yet.
pub const START: i64 = i64::MIN;

/// Why a record's timestamp cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TimeError {
    #[error("the timestamp {found} is neither epoch milliseconds nor RFC 3339 text such as \"2024-05-01T10:15:30Z\"")]
    Shape { found: String },
    #[error("the timestamp `{text}` is not RFC 3339 text such as \"2024-05-01T10:15:30Z\": {why}")]
    Text { text: String, why: String },
    #[error("the timestamp {millis} ms is {ahead_ms} ms ahead of the clock, more than `max_future` allows")]
    Future { millis: i64, ahead_ms: i64 },
}

/// A record's timestamp in milliseconds since the epoch: an integer is
/// one already, text is read as RFC 3339 (`2024-05-01T10:15:30.250Z`,
/// any offset).
pub fn millis(value: &Value) -> Result<i64, TimeError> {
    match value {
        // Both ends are kept for `START` and `END`.
        Value::Int(ms) if *ms > START && *ms < END => Ok(*ms),
        Value::Str(text) => chrono::DateTime::parse_from_rfc3339(text.as_str())
            .map(|t| t.timestamp_millis())
            .map_err(|e| TimeError::Text {
                text: text.as_str().to_owned(),
                why: e.to_string(),
            }),
        other => Err(TimeError::Shape {
            found: format!("{} `{other}`", other.type_name()),
        }),
    }
}

/// Now, in milliseconds since the epoch: processing time.
pub fn now_millis() -> i64 {
    crate::operators::epoch_micros() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_is_a_time_or_an_error(text in ".{0,40}") {
            let _ = millis(&Value::from(text.as_str()));
        }

        #[test]
        fn rfc_3339_text_reads_back_as_the_instant_written(
            ms in -62_135_510_400_000i64..253_402_214_399_999,
            offset_min in -1439i32..1439,
        ) {
            let offset = chrono::FixedOffset::east_opt(offset_min * 60).unwrap();
            let t = chrono::DateTime::from_timestamp_millis(ms).unwrap().with_timezone(&offset);
            for format in [chrono::SecondsFormat::Millis, chrono::SecondsFormat::AutoSi] {
                let text = t.to_rfc3339_opts(format, offset_min == 0);
                prop_assert_eq!(millis(&Value::from(text.as_str())), Ok(ms), "{}", text);
            }
        }
    }

    #[test]
    fn timestamps_are_millis_or_rfc_3339_text() {
        assert_eq!(
            millis(&Value::Int(1_714_558_530_250)),
            Ok(1_714_558_530_250)
        );
        assert_eq!(
            millis(&Value::from("2024-05-01T10:15:30.250Z")),
            Ok(1_714_558_530_250)
        );
        assert_eq!(
            millis(&Value::from("2024-05-01T12:15:30.250+02:00")),
            Ok(1_714_558_530_250)
        );
        assert_eq!(millis(&Value::from("1970-01-01T00:00:00Z")), Ok(0));
        assert!(matches!(
            millis(&Value::from("yesterday")),
            Err(TimeError::Text { .. })
        ));
        assert!(matches!(
            millis(&Value::Float(1.5)),
            Err(TimeError::Shape { .. })
        ));
        assert!(matches!(millis(&Value::Null), Err(TimeError::Shape { .. })));
        assert!(millis(&Value::Int(i64::MAX)).is_err());
        assert!(millis(&Value::Int(i64::MIN)).is_err());
    }
}
