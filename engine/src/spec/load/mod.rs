//! YAML text → [`Spec`], collecting every problem instead of stopping at the first.
//!
//! serde stops at its first error, so the document is cut into pieces that
//! fail independently (the job settings, `checkpoint`, `state`, and each
//! node) and each piece is deserialized on its own through
//! serde_path_to_error; a field it rejects is reported, set aside, and the
//! piece read again, so every wrong field is reported. The path of each
//! error, looked up in the [`Spans`] index, gives the line and column to show.
//!
//! This module reads the document and its settings; reading a mapping
//! field by field is `fields`'s, and reading the node sections `nodes`'s.

mod fields;
mod nodes;

use std::collections::HashSet;

use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

use super::spans::{self, Seg, Spans};
use super::syntax;
use super::{JobSettings, SinkKind, SourceKind, Spec, StateSpec, TransformKind};
use crate::diag::{did_you_mean, Diagnostic, SourceFile};
use nodes::SECTIONS;

/// The result of loading a spec: as much of it as could be read, and what
/// was wrong. The spec is usable only when no diagnostic is an error.
pub struct Loaded {
    pub file: SourceFile,
    pub spans: Spans,
    /// Whether the text is a YAML mapping at all. When it is not (a syntax
    /// error, an empty file, a list), `spec` is empty and there is nothing
    /// more to check.
    pub readable: bool,
    pub spec: Spec,
    /// Nodes that are declared but could not be read, or that sit under a
    /// misspelled section; references to them are not reported again as
    /// unknown inputs.
    pub broken: HashSet<String>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Whether an error was already reported about the value at `path`:
    /// a value the loader could not read is not checked again.
    pub fn has_error_at(&self, path: &[Seg]) -> bool {
        let at = self.spans.value(path);
        let reported = at.is_some()
            && self
                .diagnostics
                .iter()
                .any(|d| d.is_error() && d.span == at);
        // A mapping with too many errors was not read at all.
        let unread = || {
            let parent = self.spans.value(&path[..path.len().saturating_sub(1)]);
            self.diagnostics
                .iter()
                .any(|d| d.code == TOO_MANY_ERRORS && d.span == parent)
        };
        reported || (!path.is_empty() && unread())
    }
}

const TOP_LEVEL: &[&str] = &[
    "name",
    "parallelism",
    "max_parallelism",
    "batch_size",
    "buffer_timeout",
    "chaining",
    "restart",
    "checkpoint",
    "state",
    "sources",
    "transforms",
    "sinks",
];

struct Loader<'a> {
    spans: &'a Spans,
    diagnostics: Vec<Diagnostic>,
    broken: HashSet<String>,
    readable: bool,
}

/// Loads a spec from its text.
pub fn load(file: SourceFile) -> Loaded {
    if let Some(deep) = super::limits::check(&file.text) {
        return Loaded {
            file,
            spans: Spans::build(""),
            readable: false,
            spec: empty_spec(),
            broken: HashSet::new(),
            diagnostics: vec![deep],
        };
    }
    let spans = Spans::build(&file.text);
    let mut loader = Loader {
        spans: &spans,
        diagnostics: Vec::new(),
        broken: HashSet::new(),
        readable: false,
    };
    let spec = loader.document(&file.text);
    let (diagnostics, broken, readable) = (loader.diagnostics, loader.broken, loader.readable);
    Loaded {
        file,
        spans,
        readable,
        spec,
        broken,
        diagnostics,
    }
}

/// Loads a spec from the bytes of a file named `name`. Bytes that are not
/// UTF-8 are an error at the first of them (shown as U+FFFD), and the rest
/// of the text is checked all the same.
pub fn load_bytes(name: String, bytes: Vec<u8>) -> Loaded {
    let (text, bad) = match String::from_utf8(bytes) {
        Ok(text) => (text, None),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let byte = e.as_bytes()[at];
            (
                String::from_utf8_lossy(e.as_bytes()).into_owned(),
                Some((at, byte)),
            )
        }
    };
    let mut loaded = load(SourceFile { name, text });
    if let Some((at, byte)) = bad {
        let (line, column) = loaded.file.line_col(at);
        let span = at..at + char::REPLACEMENT_CHARACTER.len_utf8();
        loaded.diagnostics.insert(
            0,
            Diagnostic::error(
                "not-utf8",
                format!(
                    "the spec is not UTF-8 text: byte 0x{byte:02x} at line {line}, column {column}"
                ),
            )
            .at(Some(span), "not UTF-8")
            .help("save the file as UTF-8"),
        );
    }
    loaded
}
/// The code of the error that says a mapping had more.
const TOO_MANY_ERRORS: &str = "too-many-errors";

/// The spec of a text that defines nothing.
fn empty_spec() -> Spec {
    Spec {
        job: JobSettings {
            name: String::new(),
            parallelism: 1,
            max_parallelism: super::default_max_parallelism(),
            batch_size: super::default_batch_size(),
            buffer_timeout: super::default_buffer_timeout(),
            chaining: true,
            restart: None,
        },
        checkpoint: None,
        state: StateSpec::default(),
        sources: IndexMap::new(),
        transforms: IndexMap::new(),
        sinks: IndexMap::new(),
    }
}

impl Loader<'_> {
    fn document(&mut self, text: &str) -> Spec {
        let mut spec = empty_spec();
        let root = match syntax::parse(text) {
            Ok(v) => v,
            Err(d) => {
                self.diagnostics.push(d);
                return spec;
            }
        };
        let root = match root {
            Value::Mapping(m) => m,
            Value::Null => {
                self.diagnostics.push(
                    Diagnostic::error("empty-spec", "the spec is empty")
                        .at(
                            Some(0..text.find('\n').unwrap_or(text.len())),
                            "nothing but comments",
                        )
                        .help("a spec needs at least `name`, `sources` and `sinks`"),
                );
                return spec;
            }
            other => {
                self.diagnostics.push(
                    Diagnostic::error(
                        "invalid-type",
                        format!(
                            "a spec must be a mapping of fields (name, sources, transforms, sinks, ...), not {}",
                            yaml_type(&other)
                        ),
                    )
                    .at(self.spans.value(&[]), "expected a mapping"),
                );
                return spec;
            }
        };

        self.readable = true;
        self.duplicate_keys(text);
        let mut settings = Mapping::new();
        for (key, value) in root {
            let Some(name) = key.as_str().map(str::to_owned) else {
                self.diagnostics.push(
                    Diagnostic::error("invalid-type", "field names must be strings")
                        .at(self.spans.value(&[]), ""),
                );
                continue;
            };
            match name.as_str() {
                "checkpoint" => {
                    // `checkpoint:` with nothing after it turns checkpointing on with defaults
                    // for everything but `interval`, which serde then reports as missing.
                    let value = if value.is_null() {
                        Value::Mapping(Mapping::new())
                    } else {
                        value
                    };
                    spec.checkpoint =
                        self.typed(&spans::path(&["checkpoint"]), "`checkpoint`", value);
                }
                "state" => {
                    let value = if value.is_null() {
                        Value::Mapping(Mapping::new())
                    } else {
                        value
                    };
                    if let Some(state) = self.typed(&spans::path(&["state"]), "`state`", value) {
                        spec.state = state;
                    }
                }
                "sources" => spec.sources = self.section::<SourceKind>(value, false),
                "transforms" => spec.transforms = self.section::<TransformKind>(value, true),
                "sinks" => spec.sinks = self.section::<SinkKind>(value, true),
                _ => {
                    // The nodes under a misspelled section are declared all
                    // the same: do not also report them as missing inputs.
                    if let (Value::Mapping(nodes), Some(_)) = (
                        &value,
                        did_you_mean(&name, SECTIONS)
                            .filter(|_| !TOP_LEVEL.contains(&name.as_str())),
                    ) {
                        self.broken
                            .extend(nodes.keys().filter_map(Value::as_str).map(str::to_owned));
                    }
                    settings.insert(Value::String(name), value);
                }
            }
        }
        if let Some(job) = self.fields::<JobSettings>(&[], "the spec", settings, None, TOP_LEVEL) {
            spec.job = job;
        }
        self.duplicate_names(&spec);
        spec
    }

    /// Deserializes `value` (found at `path`, described as `what`) as the
    /// struct `T`, reporting every problem.
    fn typed<T: DeserializeOwned>(&mut self, path: &[Seg], what: &str, value: Value) -> Option<T> {
        match value {
            Value::Mapping(fields) => self.fields(path, what, fields, None, &[]),
            other => {
                self.diagnostics.push(
                    Diagnostic::error(
                        "invalid-type",
                        format!(
                            "{what} must be a mapping of settings, not {}",
                            yaml_type(&other)
                        ),
                    )
                    .at(self.spans.value(path), "expected a mapping"),
                );
                None
            }
        }
    }

    /// Keys written twice in one mapping: the first is read, the others reported.
    fn duplicate_keys(&mut self, text: &str) {
        let line = |at: usize| text[..at.min(text.len())].matches('\n').count() + 1;
        for dup in self.spans.duplicates() {
            let first = line(dup.first.start);
            let key = &dup.key;
            let section = match dup.parent.as_slice() {
                [Seg::Key(section)] if SECTIONS.contains(&section.as_str()) => Some(section),
                _ => None,
            };
            let d = match section {
                Some(section) => Diagnostic::error(
                    "duplicate-node",
                    format!("node `{key}` is defined twice under `{section}`"),
                )
                .at(Some(dup.again.clone()), "defined again here")
                .help(format!(
                    "`{key}` is first defined on line {first}, and only that definition is read; rename one of them"
                )),
                None => {
                    let place = if dup.parent.is_empty() {
                        "the spec".to_owned()
                    } else {
                        format!("`{}`", spans::display(&dup.parent))
                    };
                    Diagnostic::error(
                        "duplicate-key",
                        format!("`{key}` is written twice in {place}"),
                    )
                    .at(Some(dup.again.clone()), "written again here")
                    .help(format!(
                        "the first `{key}` is on line {first}, and only it is read; remove one of them"
                    ))
                }
            };
            self.diagnostics.push(d);
        }
    }
}

fn yaml_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}
