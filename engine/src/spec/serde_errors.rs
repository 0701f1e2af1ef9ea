//! serde's errors, said in a spec author's words and placed in the text.
//!
//! serde reports "invalid type: string \"two\", expected u32" with a path
//! such as `transforms.counts.key`; a spec author wants "expected a whole
//! number, found the string \"two\"" under the value they wrote, and a
//! suggestion when a name is misspelled.

use super::spans::{self, Path, Seg, Spans};
use crate::diag::Diagnostic;

/// A serde_path_to_error path as a path into the YAML document.
pub(super) fn error_path(path: &serde_path_to_error::Path) -> Path {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|seg| match seg {
            Segment::Seq { index } => Some(Seg::Index(*index)),
            Segment::Map { key } => Some(Seg::Key(key.clone())),
            Segment::Enum { variant } => Some(Seg::Key(variant.clone())),
            Segment::Unknown => None,
        })
        .collect()
}

/// The names between backticks in a serde message, after its first one:
/// the expected fields or variants.
fn expected_names(message: &str) -> Vec<&str> {
    message.split('`').skip(1).step_by(2).skip(1).collect()
}

/// The text between `prefix` and the next backtick, if `message` starts with `prefix`.
pub(super) fn quoted_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    message.strip_prefix(prefix)?.split('`').next()
}

/// serde's name for an expected type, in a spec author's words.
fn expected_in_words(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" => "a whole number (0 to 4294967295)".to_owned(),
        "u64" | "usize" => "a whole number (0 or more)".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a sequence" => "a list".to_owned(),
        "a map" => "a mapping".to_owned(),
        "field identifier" => "a field name".to_owned(),
        e if e.starts_with("struct ") => "a mapping of fields".to_owned(),
        e => e.to_owned(),
    }
}

/// serde's description of a value it did not expect, in a spec author's words.
fn found_in_words(found: &str) -> String {
    let literal = |prefix: &str| {
        found
            .strip_prefix(prefix)
            .map(|rest| rest.trim_matches('`').to_owned())
    };
    if let Some(n) = literal("integer ").or_else(|| literal("floating point ")) {
        return format!("the number {n}");
    }
    if let Some(b) = literal("boolean ") {
        return format!("`{b}`");
    }
    match found {
        "sequence" => "a list".to_owned(),
        "map" => "a mapping".to_owned(),
        "unit value" => "nothing (null)".to_owned(),
        f if f.starts_with("string ") => format!("the {f}"),
        f => f.to_owned(),
    }
}

/// A diagnostic for a serde error at `path`, of which the first `base`
/// segments lead to the piece described as `what`.
pub(super) fn serde_diagnostic(
    spans: &Spans,
    path: &Path,
    base: usize,
    what: &str,
    message: &str,
    extra: &[&str],
) -> Diagnostic {
    let first_name = message.split('`').nth(1).unwrap_or_default();
    let expected = expected_names(message);
    if let Some(field) = quoted_after(message, "unknown field `") {
        let mut at = path.clone();
        at.push(Seg::Key(field.to_owned()));
        let mut known: Vec<&str> = expected;
        for f in extra {
            if !known.contains(f) {
                known.push(f);
            }
        }
        known.retain(|f| *f != "type");
        let mut d = Diagnostic::error(
            "unknown-field",
            format!("unknown field `{field}` in {what}"),
        )
        .at(spans.key(&at), "unknown field")
        .suggest(field, known.iter().copied());
        if d.help.is_empty() && !known.is_empty() {
            d = d.help(format!("known fields: {}", known.join(", ")));
        }
        return d;
    }
    if let Some(field) = quoted_after(message, "missing field `") {
        return Diagnostic::error(
            "missing-field",
            format!("{what} is missing the required field `{field}`"),
        )
        .at(spans.key(path), format!("add `{field}` here"));
    }
    let field = spans::display(&path[base.min(path.len())..]);
    let place = if field.is_empty() {
        what.to_owned()
    } else {
        format!("`{field}` in {what}")
    };
    if message.starts_with("unknown variant `") {
        let mut d = Diagnostic::error(
            "invalid-value",
            format!("invalid value `{first_name}` for {place}"),
        )
        .at(spans.value(path), "unknown value")
        .suggest(first_name, expected.iter().copied());
        if !expected.is_empty() {
            d = d.help(format!("expected one of: {}", expected.join(", ")));
        }
        return d;
    }
    // "invalid type: string \"two\", expected u32"
    let mismatch = |prefix: &str| {
        let (found, expected) = message.strip_prefix(prefix)?.split_once(", expected ")?;
        Some((found_in_words(found), expected_in_words(expected)))
    };
    if let Some((found, expected)) = mismatch("invalid type: ") {
        let mut d = Diagnostic::error(
            "invalid-type",
            format!("wrong type for {place}: expected {expected}, found {found}"),
        )
        .at(spans.value(path), format!("expected {expected}"));
        if let (Some(s), "a list") = (found.strip_prefix("the string "), expected.as_str()) {
            d = d.help(format!(
                "write a list, even of one item: `[{}]`",
                s.trim_matches('"')
            ));
        }
        return d;
    }
    if let Some((found, expected)) = mismatch("invalid value: ") {
        return Diagnostic::error(
            "invalid-value",
            format!("invalid value for {place}: expected {expected}, found {found}"),
        )
        .at(spans.value(path), "out of range");
    }
    // Durations explain themselves: "invalid duration `10x`: expected ...".
    if let Some(written) = quoted_after(message, "invalid duration `") {
        let why = message.split_once("`: ").map_or(message, |(_, why)| why);
        return Diagnostic::error(
            "invalid-duration",
            format!("invalid duration `{written}` for {place}: {why}"),
        )
        .at(spans.value(path), "not a duration");
    }
    Diagnostic::error(
        "invalid-value",
        format!("invalid value for {place}: {message}"),
    )
    .at(spans.value(path), "invalid value")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diagnostic(text: &str, path: &[&str], message: &str) -> (Diagnostic, String) {
        let spans = Spans::build(text);
        let d = serde_diagnostic(&spans, &spans::path(path), 0, "the spec", message, &[]);
        let at = text[d.span.clone().expect("a span")].to_owned();
        (d, at)
    }

    #[test]
    fn types_are_named_as_spec_authors_know_them() {
        let (d, at) = diagnostic(
            "parallelism: two\n",
            &["parallelism"],
            "invalid type: string \"two\", expected u32",
        );
        assert_eq!(
            d.message,
            "wrong type for `parallelism` in the spec: expected a whole number (0 to 4294967295), found the string \"two\""
        );
        assert_eq!(at, "two");
        let (d, _) = diagnostic(
            "checkpoint: [a]\n",
            &["checkpoint"],
            "invalid type: sequence, expected struct CheckpointSpec",
        );
        assert!(
            d.message
                .ends_with("expected a mapping of fields, found a list"),
            "{d:?}"
        );
    }

    #[test]
    fn a_string_for_a_list_suggests_the_list() {
        let (d, _) = diagnostic(
            "inputs: words\n",
            &["inputs"],
            "invalid type: string \"words\", expected a sequence",
        );
        assert_eq!(d.help, ["write a list, even of one item: `[words]`"]);
    }

    #[test]
    fn unknown_fields_are_placed_on_their_key_with_a_suggestion() {
        let (d, at) = diagnostic(
            "name: x\nparalellism: 2\n",
            &[],
            "unknown field `paralellism`, expected one of `name`, `parallelism`",
        );
        assert_eq!(at, "paralellism");
        assert_eq!(d.help, ["did you mean `parallelism`?"]);
    }
}
