//! Where each key and value of a YAML document was written.
//!
//! serde_yaml turns YAML into typed values but forgets positions once it
//! succeeds; a diagnostic about a node's inputs or an expression must still
//! point at the line the user wrote. This index, built from yaml-rust2's
//! marked event stream, maps a path in the document (`transforms.words.inputs[0]`)
//! to the byte ranges of its key and its value.

use std::collections::HashMap;
use std::ops::Range;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// One step of a path into a YAML document.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path into a YAML document, from its root.
pub type Path = Vec<Seg>;

/// Builds a path from string keys: `path(&["sources", "lines"])`.
pub fn path(keys: &[&str]) -> Path {
    keys.iter().map(|k| Seg::Key((*k).to_owned())).collect()
}

/// Renders a path the way users write it: `transforms.words.inputs[0]`.
pub fn display(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

#[derive(Clone, Debug, Default)]
struct Entry {
    key: Option<Range<usize>>,
    value: Range<usize>,
}

/// A key written twice in one mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate {
    /// The path of the mapping that holds the key.
    pub parent: Path,
    pub key: String,
    /// Where the key was written the first time.
    pub first: Range<usize>,
    /// Where it was written again.
    pub again: Range<usize>,
}

/// The positions of every key and value in one YAML document.
///
/// When a key is written twice, the positions are those of its first
/// occurrence, the one that is read; the later ones are listed in
/// [`Spans::duplicates`].
#[derive(Debug, Default)]
pub struct Spans {
    entries: HashMap<Path, Entry>,
    duplicates: Vec<Duplicate>,
}

impl Spans {
    /// Indexes `text`. A document yaml-rust2 cannot parse yields an empty
    /// index: diagnostics then fall back to the start of the file.
    pub fn build(text: &str) -> Spans {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let mut builder = Builder {
            text,
            line_starts,
            cursor: std::cell::Cell::new((0, 0)),
            stack: Vec::new(),
            spans: Spans::default(),
            documents: 0,
        };
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, false).is_err() {
            return Spans::default();
        }
        builder.spans
    }

    /// The range of the value at `path`, or of its nearest ancestor that was written.
    pub fn value(&self, path: &[Seg]) -> Option<Range<usize>> {
        self.nearest(path).map(|e| e.value.clone())
    }

    /// The range of the key at `path` (of the value if it is a list item),
    /// or of its nearest ancestor that was written.
    pub fn key(&self, path: &[Seg]) -> Option<Range<usize>> {
        self.nearest(path)
            .map(|e| e.key.clone().unwrap_or_else(|| e.value.clone()))
    }

    /// Whether something was written at exactly `path`.
    pub fn contains(&self, path: &[Seg]) -> bool {
        self.entries.contains_key(path)
    }

    /// The keys written more than once in a mapping, in the order of the text.
    pub fn duplicates(&self) -> &[Duplicate] {
        &self.duplicates
    }

    fn nearest(&self, path: &[Seg]) -> Option<&Entry> {
        (0..=path.len())
            .rev()
            .find_map(|n| self.entries.get(&path[..n]))
    }
}

/// The key under which the contents of a duplicate key are indexed, so
/// that they do not overwrite those of the first occurrence.
const SHADOWED: &str = "?duplicate";

enum Frame {
    Map {
        path: Path,
        /// The key whose value comes next; its path segment, which is
        /// [`SHADOWED`] for a duplicate key.
        key: Option<(String, Range<usize>)>,
        /// The keys seen so far and where.
        seen: HashMap<String, Range<usize>>,
    },
    Seq {
        path: Path,
        next: usize,
    },
}

struct Builder<'a> {
    text: &'a str,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
    /// The last marker converted: its line's start and its column, in
    /// characters and bytes, so that the next one on that line is found
    /// from there (markers come in order; a long line is then read once).
    cursor: std::cell::Cell<(usize, usize)>,
    stack: Vec<Frame>,
    spans: Spans,
    documents: usize,
}

impl Builder<'_> {
    /// Byte offset of a marker. yaml-rust2 counts its index in characters,
    /// with 1-based lines and 0-based columns; the line and column are
    /// what converts to bytes cheaply.
    fn offset(&self, mark: Marker) -> usize {
        let line_start = self
            .line_starts
            .get(mark.line().saturating_sub(1))
            .copied()
            .unwrap_or(self.text.len());
        let line = &self.text[line_start..self.line_end(line_start)];
        // Resume from the cursor when it is on this line and not past the mark.
        let (mut col, mut at) = match self.cursor.get() {
            (c, b) if b >= line_start && b <= line_start + line.len() && c <= mark.col() => {
                (c, b - line_start)
            }
            _ => (0, 0),
        };
        for ch in line[at..].chars() {
            if col == mark.col() {
                break;
            }
            col += 1;
            at += ch.len_utf8();
        }
        self.cursor.set((col, line_start + at));
        line_start + at
    }

    /// The end of the line holding byte `at` (its `\n`, or the text's end).
    fn line_end(&self, at: usize) -> usize {
        let next = self.line_starts.partition_point(|&s| s <= at);
        self.line_starts
            .get(next)
            .map_or(self.text.len(), |s| s - 1)
    }

    /// The end of the token starting at `start`: the scalar's own text when
    /// it is written as is, a quoted string up to its closing quote, or else
    /// the rest of the line without a trailing comment, and at least one
    /// whole character when there is one.
    fn token_end(&self, start: usize, scalar: Option<&str>) -> usize {
        let rest = &self.text[start..];
        let line = &self.text[start..self.line_end(start).max(start)];
        if let Some(s) = scalar {
            if !s.is_empty() && line.starts_with(s) {
                return start + s.len();
            }
            if let Some(quote @ ('"' | '\'')) = line.chars().next() {
                if let Some(close) = line[1..].find(quote) {
                    return start + close + 2;
                }
            }
        }
        // A container's or an alias's range is what its line shows, within
        // bounds: a line may hold many of them.
        let mut cut = line.len().min(256);
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        let line = &line[..cut];
        let line = line.find(" #").map_or(line, |i| &line[..i]);
        match line.trim_end().len() {
            // Only whitespace, which may be a multibyte character such as U+3000.
            0 => start + rest.chars().next().map_or(0, char::len_utf8),
            len => start + len,
        }
    }

    /// Records a value (scalar or container) at the current position and
    /// returns its path.
    fn value(&mut self, range: Range<usize>) -> Option<Path> {
        let (path, key) = match self.stack.last_mut() {
            None => (Vec::new(), None),
            Some(Frame::Seq { path, next }) => {
                let mut p = path.clone();
                p.push(Seg::Index(*next));
                *next += 1;
                (p, None)
            }
            Some(Frame::Map { path, key, .. }) => {
                let (name, key_range) = key.take()?;
                let mut p = path.clone();
                p.push(Seg::Key(name));
                (p, Some(key_range))
            }
        };
        self.spans
            .entries
            .insert(path.clone(), Entry { key, value: range });
        Some(path)
    }

    /// Whether the next node in the current mapping is a key.
    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None, .. }))
    }

    /// Records `name`, written at `range`, as the next key of the current
    /// mapping, noting it if the mapping has it already. An alias used as a
    /// key has no name to compare (`comparable` is false).
    fn key(&mut self, name: String, range: Range<usize>, comparable: bool) {
        let Some(Frame::Map { path, key, seen }) = self.stack.last_mut() else {
            return;
        };
        // yaml-rust2 marks the start of a block mapping at the `:` after
        // its first key; the mapping really starts at that key.
        if seen.is_empty() {
            if let Some(entry) = self.spans.entries.get_mut(path.as_slice()) {
                if range.start < entry.value.start {
                    entry.value = range.clone();
                }
            }
        }
        let shadowed = path.iter().any(|s| *s == Seg::Key(SHADOWED.to_owned()));
        match seen.get(&name).filter(|_| comparable) {
            Some(first) => {
                if !shadowed {
                    self.spans.duplicates.push(Duplicate {
                        parent: path.clone(),
                        key: name,
                        first: first.clone(),
                        again: range.clone(),
                    });
                }
                *key = Some((SHADOWED.to_owned(), range));
            }
            None => {
                seen.insert(name.clone(), range.clone());
                *key = Some((name, range));
            }
        }
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.documents > 1 {
            return;
        }
        let start = self.offset(mark);
        match ev {
            Event::DocumentStart => self.documents += 1,
            Event::Scalar(text, ..) => {
                let range = start..self.token_end(start, Some(&text));
                if self.expecting_key() {
                    self.key(text, range, true);
                } else {
                    self.value(range);
                }
            }
            Event::Alias(_) => {
                let range = start..self.token_end(start, None);
                if self.expecting_key() {
                    self.key("*alias".to_owned(), range, false);
                } else {
                    self.value(range);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let range = start..self.token_end(start, None);
                // A container used as a mapping key has no path users can
                // name; index its contents under a placeholder key.
                let path = if self.expecting_key() {
                    if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                        *key = Some(("?".to_owned(), range.clone()));
                    }
                    vec![Seg::Key("?".to_owned())]
                } else {
                    self.value(range).unwrap_or_default()
                };
                self.stack.push(match ev {
                    Event::MappingStart(..) => Frame::Map {
                        path,
                        key: None,
                        seen: HashMap::new(),
                    },
                    _ => Frame::Seq { path, next: 0 },
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "name: wc\nsources:\n  lines: {type: file, path: \"a b.txt\"}\ntransforms:\n  words:\n    inputs: [lines, other]   # comment\n    split: \",\"\n";

    fn text(range: Range<usize>) -> &'static str {
        &DOC[range]
    }

    #[test]
    fn finds_keys_and_values() {
        let spans = Spans::build(DOC);
        assert_eq!(text(spans.key(&path(&["name"])).unwrap()), "name");
        assert_eq!(text(spans.value(&path(&["name"])).unwrap()), "wc");
        assert_eq!(
            text(spans.value(&path(&["sources", "lines", "path"])).unwrap()),
            "\"a b.txt\""
        );
        let mut second = path(&["transforms", "words", "inputs"]);
        second.push(Seg::Index(1));
        assert_eq!(text(spans.value(&second).unwrap()), "other");
        assert_eq!(
            text(
                spans
                    .value(&path(&["transforms", "words", "split"]))
                    .unwrap()
            ),
            "\",\""
        );
    }

    #[test]
    fn falls_back_to_the_nearest_ancestor() {
        let spans = Spans::build(DOC);
        let missing = path(&["transforms", "words", "expr"]);
        assert!(!spans.contains(&missing));
        assert_eq!(text(spans.key(&missing).unwrap()), "words");
    }

    #[test]
    fn spans_of_multibyte_whitespace_end_on_a_character_boundary() {
        // Found by the loader's property test: a plain scalar folded over
        // two lines whose first line is an ideographic space.
        let doc = "\u{3000}\nname";
        let spans = Spans::build(doc);
        let r = spans.value(&[]).unwrap();
        assert_eq!(&doc[r], "\u{3000}");
    }

    #[test]
    fn a_block_mapping_starts_at_its_first_key() {
        let doc = "# header\nname: wc\nstate:\n  backend: memory\n";
        let spans = Spans::build(doc);
        let root = spans.value(&[]).unwrap();
        assert_eq!(&doc[root.start..root.start + 4], "name");
        let state = spans.value(&path(&["state"])).unwrap();
        assert_eq!(&doc[state.start..state.start + 7], "backend");
    }

    #[test]
    fn duplicate_keys_are_listed_and_the_first_is_kept() {
        let doc = "a:\n  b: 1\n  c: 2\n  b: {d: 3}\na: x\n";
        let spans = Spans::build(doc);
        let dups = spans.duplicates();
        assert_eq!(dups.len(), 2, "{dups:?}");
        assert_eq!(
            (dups[0].parent.clone(), dups[0].key.as_str()),
            (path(&["a"]), "b")
        );
        assert_eq!(&doc[dups[0].first.clone()], "b");
        assert_eq!(dups[0].first.start, 5);
        assert_eq!(dups[0].again.start, 19);
        assert_eq!(
            (dups[1].parent.is_empty(), dups[1].key.as_str()),
            (true, "a")
        );
        // The value read is the first one, and so are its positions.
        assert_eq!(&doc[spans.value(&path(&["a", "b"])).unwrap()], "1");
        assert!(!spans.contains(&path(&["a", "b", "d"])));
    }

    #[test]
    fn counts_bytes_after_multibyte_text() {
        let doc = "name: \"héllo wörld\"\nparallelism: x\n";
        let spans = Spans::build(doc);
        let r = spans.value(&path(&["parallelism"])).unwrap();
        assert_eq!(&doc[r], "x");
    }
}
