//! Durations as users write them in a spec: `500ms`, `10s`, `1m`, `2h`.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written as a whole number followed by a unit (`ms`, `s`, `m`, `h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }

    pub const fn from_secs(s: u64) -> Self {
        Duration(std::time::Duration::from_secs(s))
    }

    /// Parses `text`; the error says what was expected.
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let text = text.trim();
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let (number, unit) = text.split_at(digits);
        let invalid = |why: DurationProblem| DurationError {
            text: text.to_owned(),
            why,
        };
        if let Some(fraction) = unit.strip_prefix('.') {
            return Err(invalid(match fractional_millis(number, fraction) {
                Some(ms) => DurationProblem::Fraction { ms },
                None => DurationProblem::Shape,
            }));
        }
        if number.is_empty() {
            return Err(invalid(DurationProblem::Shape));
        }
        let n: u64 = number
            .parse()
            .map_err(|_| invalid(DurationProblem::NumberTooLarge))?;
        let ms_per_unit = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "" => return Err(invalid(DurationProblem::NoUnit { n })),
            _ => return Err(invalid(DurationProblem::Shape)),
        };
        n.checked_mul(ms_per_unit)
            .map(Duration::from_millis)
            .ok_or_else(|| invalid(DurationProblem::TooLarge))
    }
}

/// A duration in a spec that is not one: always the user's mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration `{text}`: {why}")]
pub struct DurationError {
    pub text: String,
    pub why: DurationProblem,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationProblem {
    #[error("expected a whole number followed by ms, s, m or h (e.g. 500ms, 10s, 1m)")]
    Shape,
    #[error("the number must be whole; write {ms}ms")]
    Fraction { ms: u64 },
    #[error("a duration needs a unit, e.g. {n}ms or {n}s")]
    NoUnit { n: u64 },
    #[error("the number is too large")]
    NumberTooLarge,
    #[error("it is too large")]
    TooLarge,
}

/// `whole.fraction<unit>` in whole milliseconds (`1` `5s` is 1500), when
/// it is one: the value to suggest for a duration written with a fraction.
fn fractional_millis(whole: &str, fraction_and_unit: &str) -> Option<u64> {
    let digits = fraction_and_unit
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    let (fraction, unit) = fraction_and_unit.split_at(digits);
    let ms_per_unit: u64 = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    let scale = 10u64.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let fraction: u64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().ok()?
    };
    let total = whole
        .checked_mul(scale)?
        .checked_add(fraction)?
        .checked_mul(ms_per_unit)?;
    (total % scale == 0).then_some(total / scale)
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        match ms {
            0 => f.write_str("0ms"),
            ms if ms % 3_600_000 == 0 => write!(f, "{}h", ms / 3_600_000),
            ms if ms % 60_000 == 0 => write!(f, "{}m", ms / 60_000),
            ms if ms % 1_000 == 0 => write!(f, "{}s", ms / 1_000),
            ms => write!(f, "{ms}ms"),
        }
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 500ms, 10s, 1m or 2h")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Duration, E> {
                Duration::parse(s).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Duration, E> {
                Duration::parse(&n.to_string()).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Duration, E> {
                Duration::parse(&n.to_string()).map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, x: f64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "invalid duration `{x}`: expected a whole number followed by ms, s, m or h (e.g. 500ms, 10s, 1m)"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9]+(ms|s|m|h)$",
            "description": "A whole number followed by a unit: ms, s, m or h (e.g. 500ms, 10s, 1m).",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(Duration::parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(Duration::parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(Duration::parse("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(Duration::parse("2h"), Ok(Duration::from_secs(7200)));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for bad in [
            "",
            "10",
            "s",
            "10x",
            "1.5s",
            "-1s",
            "10 s s",
            "99999999999999999999h",
        ] {
            assert!(Duration::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn errors_say_what_to_write() {
        let err = |text| Duration::parse(text).unwrap_err().to_string();
        assert!(
            err("10").contains("needs a unit, e.g. 10ms or 10s"),
            "{}",
            err("10")
        );
        assert!(err("1.5s").contains("write 1500ms"), "{}", err("1.5s"));
        assert!(err("0.25m").contains("write 15000ms"), "{}", err("0.25m"));
        assert!(err("10x").starts_with("invalid duration `10x`: expected"));
        assert!(err("99999999999999999999h").contains("too large"));
    }

    proptest! {
        #[test]
        fn display_parses_back(ms in 0u64..10_000_000_000) {
            let d = Duration::from_millis(ms);
            prop_assert_eq!(Duration::parse(&d.to_string()), Ok(d));
        }

        #[test]
        fn never_panics(text in ".{0,12}") {
            let _ = Duration::parse(&text);
        }
    }
}
