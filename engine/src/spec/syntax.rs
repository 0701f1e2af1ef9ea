//! YAML text → an untyped YAML value, and why it is not YAML.
//!
//! libyaml (through serde_yaml) finds where the text stops making sense,
//! but its messages name the parser's state ("did not find expected key")
//! and its position is often past the mistake: an unclosed quote or
//! bracket is noticed lines later. The common mistakes (an unclosed quote
//! or bracket, a tab, a line indented wrongly) are recognised here and
//! reported where they were made, in the user's terms.
//!
//! A key written twice in one mapping is not a syntax error here: the
//! first value is kept and the loader reports the duplicate from the
//! [`Spans`](super::spans::Spans) index, so that the rest of the spec is
//! still checked.

use std::fmt;
use std::ops::Range;

use serde::de::{Deserialize, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess};
use serde_yaml::value::{Tag, TaggedValue};
use serde_yaml::{Mapping, Value};

use crate::diag::Diagnostic;

/// Parses `text` as one YAML document.
pub fn parse(text: &str) -> Result<Value, Diagnostic> {
    serde_yaml::from_str::<FirstKeyWins>(text)
        .map(|v| v.0)
        .map_err(|e| syntax_error(&e, text))
}

/// A YAML value read like [`Value`], except that a key written twice in a
/// mapping keeps its first value instead of failing the whole document.
struct FirstKeyWins(Value);

impl<'de> Deserialize<'de> for FirstKeyWins {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FirstKeyWinsVisitor).map(FirstKeyWins)
    }
}

struct FirstKeyWinsVisitor;

impl<'de> serde::de::Visitor<'de> for FirstKeyWinsVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E>(self, x: f64) -> Result<Value, E> {
        Ok(Value::Number(x.into()))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        FirstKeyWins::deserialize(d).map(|v| v.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(FirstKeyWins(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Sequence(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut mapping = Mapping::new();
        while let Some(FirstKeyWins(key)) = map.next_key()? {
            let FirstKeyWins(value) = map.next_value()?;
            if !mapping.contains_key(&key) {
                mapping.insert(key, value);
            }
        }
        Ok(Value::Mapping(mapping))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (tag, contents): (String, _) = data.variant()?;
        let FirstKeyWins(value) = contents.newtype_variant()?;
        Ok(Value::Tagged(Box::new(TaggedValue {
            tag: Tag::new(tag),
            value,
        })))
    }
}

/// serde_yaml's message, taken apart: "<problem> at line L column C,
/// <context> at line L column C".
struct Parts<'a> {
    problem: &'a str,
    context: Option<&'a str>,
    /// Where the context started (an opening quote or bracket).
    context_at: Option<usize>,
}

fn parts<'a>(message: &'a str, text: &str) -> Parts<'a> {
    let (head, context) = match message.split_once(", ") {
        Some((head, context)) if context.starts_with("while ") => (head, Some(context)),
        _ => (message, None),
    };
    let problem = head.split(" at line ").next().unwrap_or(head);
    let (context, context_at) = match context.map(|c| c.split_once(" at line ")) {
        Some(Some((what, mark))) => (Some(what), line_column(mark, text)),
        Some(None) => (context, None),
        None => (None, None),
    };
    Parts {
        problem,
        context,
        context_at,
    }
}

/// The byte offset of "L column C" (1-based, C in characters).
fn line_column(mark: &str, text: &str) -> Option<usize> {
    let (line, column) = mark.split_once(" column ")?;
    let line: usize = line.trim().parse().ok()?;
    let column: usize = column.trim().parse().ok()?;
    let start = text
        .split_inclusive('\n')
        .take(line.checked_sub(1)?)
        .map(str::len)
        .sum::<usize>();
    let rest = text.get(start..)?;
    Some(
        start
            + rest
                .char_indices()
                .nth(column.saturating_sub(1))
                .map_or(rest.len(), |(i, _)| i),
    )
}

/// A span of the character at `at` (empty at the end of the text).
pub(crate) fn char_at(text: &str, at: usize) -> Range<usize> {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at..text[at..].chars().next().map_or(at, |c| at + c.len_utf8())
}

fn syntax_error(e: &serde_yaml::Error, text: &str) -> Diagnostic {
    let message = e.to_string();
    let parts = parts(&message, text);
    let here = e.location().map(|l| char_at(text, l.index()));
    let at = here.as_ref().map(|h| h.start);

    // An unclosed quote runs on to the next quote, and the text after that
    // makes no sense: whatever the problem found, that is its cause.
    if let Some(quote) = at.and_then(|at| unclosed_quote(text, at)) {
        return unclosed_quote_error(text, quote);
    }
    if parts.context == Some("while scanning a quoted scalar") {
        if let Some(start) = parts.context_at {
            return unclosed_quote_error(text, start);
        }
    }
    let bracket = match parts.problem {
        "did not find expected ',' or ']'" => Some(('[', ']', "list")),
        "did not find expected ',' or '}'" => Some(('{', '}', "mapping")),
        _ => None,
    };
    if let (Some((open, close, what)), Some(start)) = (bracket, parts.context_at) {
        return Diagnostic::error("yaml-syntax", format!("this `{open}` is never closed"))
            .at(
                Some(char_at(text, start)),
                format!("the {what} starts here"),
            )
            .help(format!(
                "close the {what} with `{close}`, and separate its items with `,`"
            ));
    }
    if parts.problem.contains("more than one document") {
        return Diagnostic::error(
            "yaml-syntax",
            "the file holds several YAML documents, but a spec is one",
        )
        .at(second_document(text), "a second document starts here")
        .help("remove the `---` line, or put each pipeline in a file of its own");
    }
    let tab = at.is_some_and(|at| text[at..].starts_with('\t'))
        || parts.problem.contains("tab character");
    if tab {
        return Diagnostic::error("yaml-syntax", "a tab is used for indentation")
            .at(here, "tab")
            .help("YAML indents with spaces only; replace the tab with spaces");
    }
    let indentation = matches!(
        parts.problem,
        "did not find expected key"
            | "mapping values are not allowed in this context"
            | "did not find expected '-' indicator"
            | "block sequence entries are not allowed in this context"
    );
    if indentation {
        let line = here.clone().map(|h| {
            let start = text[..h.start].rfind('\n').map_or(0, |i| i + 1);
            let indent = text[start..].find(|c: char| c != ' ').unwrap_or(0);
            start + indent
        });
        return Diagnostic::error(
            "yaml-syntax",
            "this line does not fit the indentation of the lines above it",
        )
        .at(line.map(|start| char_at(text, start)), "unexpected here")
        .help("the keys of one mapping must start in the same column, and a value that contains `: ` must be quoted")
        .help(format!("the YAML parser says: {}", parts.problem));
    }
    Diagnostic::error("yaml-syntax", parts.problem.to_owned()).at(here, "here")
}

/// The `---` line that starts a second document, after some content.
fn second_document(text: &str) -> Option<Range<usize>> {
    let mut content = false;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_end();
        if trimmed.starts_with("---") && content {
            return Some(at..at + 3);
        }
        content |= !(trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---"));
        at += line.len();
    }
    None
}

fn unclosed_quote_error(text: &str, start: usize) -> Diagnostic {
    let quote = text[start..].chars().next().unwrap_or('"');
    Diagnostic::error(
        "yaml-syntax",
        format!("this quoted string is not closed on its line: a `{quote}` is missing"),
    )
    .at(Some(char_at(text, start)), "the string starts here")
    .help(format!(
        "end the string with `{quote}` on the same line; YAML otherwise reads on to the next `{quote}`"
    ))
}

/// The start of the quoted string that an error at `error` most likely
/// comes from: the last value before the error's line that opens a quote
/// and does not close it on its line, if the string it starts ends on the
/// error's line or never ends. Quoted strings written over several lines
/// on purpose are rare in specs; an unclosed quote is a common mistake.
fn unclosed_quote(text: &str, error: usize) -> Option<usize> {
    let error_line = text[..error].rfind('\n').map_or(0, |i| i + 1);
    let mut found = None;
    let mut line_start = 0;
    for line in text[..error_line].split_inclusive('\n') {
        if let Some(at) = quoted_value_start(line) {
            let start = line_start + at;
            let line_end = line_start + line.len();
            if quoted_end(text, start).is_none_or(|end| end > line_end) {
                found = Some(start);
            }
        }
        line_start += line.len();
    }
    let start = found?;
    let ends_on_error_line = quoted_end(text, start).is_none_or(|end| end > error_line);
    ends_on_error_line.then_some(start)
}

/// Where the value on a `key: value` or `- value` line starts, if it is quoted.
fn quoted_value_start(line: &str) -> Option<usize> {
    let content = line.trim_start();
    let mut at = line.len() - content.len();
    if content.starts_with('#') {
        return None;
    }
    let rest = if let Some(item) = content.strip_prefix("- ") {
        at += 2;
        item
    } else {
        let colon = content.find(": ")?;
        at += colon + 2;
        &content[colon + 2..]
    };
    let value = rest.trim_start();
    at += rest.len() - value.len();
    value.starts_with(['"', '\'']).then_some(at)
}

/// The offset just past the closing quote of the string quoted at `start`.
fn quoted_end(text: &str, start: usize) -> Option<usize> {
    let quote = text[start..].chars().next()?;
    let mut chars = text[start + 1..].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if quote == '"' => {
                chars.next();
            }
            '\'' if quote == '\'' && chars.peek().is_some_and(|(_, n)| *n == '\'') => {
                chars.next();
            }
            c if c == quote => return Some(start + 1 + i + 1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> Diagnostic {
        parse(text).expect_err("not YAML")
    }

    fn at(text: &str, d: &Diagnostic) -> String {
        text[d.span.clone().expect("a span")].to_owned()
    }

    #[test]
    fn a_duplicate_key_keeps_the_first_value() {
        let v = parse("a: 1\nb: {c: 2, c: 3}\na: 4\n").unwrap();
        assert_eq!(v["a"], Value::from(1));
        assert_eq!(v["b"]["c"], Value::from(2));
    }

    #[test]
    fn an_unclosed_quote_is_blamed_on_its_opening() {
        let text = "a:\n  b: \",\n  c: x\n  d: \"y\"\n";
        let d = error(text);
        assert!(d.message.contains("not closed"), "{d:?}");
        assert_eq!(d.span, Some(8..9));
        let text = "a: 'x\nb: y\n";
        assert_eq!(at(text, &error(text)), "'");
    }

    #[test]
    fn an_unclosed_bracket_is_blamed_on_its_opening() {
        let text = "a: [x, y\nb: z\n";
        let d = error(text);
        assert_eq!(d.span, Some(3..4), "{d:?}");
    }

    #[test]
    fn a_second_document_is_pointed_at() {
        let text = "# x\n---\na: 1\n---\nb: 2\n";
        let d = error(text);
        assert_eq!(d.span, Some(13..16), "{d:?}");
    }

    #[test]
    fn tabs_and_indentation() {
        let text = "a:\n  b: 1\n\tc: 2\n";
        assert!(error(text).message.contains("tab"));
        let text = "a:\n  b: x\n    c: y\n";
        let d = error(text);
        assert!(d.message.contains("indentation"), "{d:?}");
        assert!(
            d.help[1].contains("mapping values are not allowed"),
            "{d:?}"
        );
        assert_eq!(at(text, &d), "c");
    }
}
