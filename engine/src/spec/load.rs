//! YAML text → [`Spec`], collecting every problem instead of stopping at the first.
//!
//! serde stops at its first error, so the document is cut into pieces that
//! fail independently (the job settings, `checkpoint`, `state`, and each
//! node) and each piece is deserialized on its own through
//! serde_path_to_error; a field it rejects is reported, set aside, and the
//! piece read again, so every wrong field is reported. The path of each
//! error, looked up in the [`Spans`] index, gives the line and column to show.

use std::collections::HashSet;

use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use serde_yaml::value::{Tag, TaggedValue};
use serde_yaml::{Mapping, Value};

use super::serde_errors::{error_path, quoted_after, serde_diagnostic};
use super::spans::{self, Path, Seg, Spans};
use super::syntax;
use super::{
    JobSettings, Node, SinkKind, SourceCommon, SourceKind, Spec, StateSpec, StepCommon,
    TransformKind,
};
use crate::diag::{did_you_mean, Diagnostic, SourceFile};

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

/// A section of node definitions and how its nodes are read.
trait Section: DeserializeOwned + Sized {
    /// The section's key in the spec (`sources`).
    const KEY: &'static str;
    /// What one node of the section is called in messages (`source`).
    const NOUN: &'static str;
    /// The `type`s the section accepts.
    const TYPES: &'static [&'static str];
}

impl Section for SourceKind {
    const KEY: &'static str = "sources";
    const NOUN: &'static str = "source";
    const TYPES: &'static [&'static str] = SourceKind::TYPES;
}

impl Section for TransformKind {
    const KEY: &'static str = "transforms";
    const NOUN: &'static str = "transform";
    const TYPES: &'static [&'static str] = TransformKind::TYPES;
}

impl Section for SinkKind {
    const KEY: &'static str = "sinks";
    const NOUN: &'static str = "sink";
    const TYPES: &'static [&'static str] = SinkKind::TYPES;
}

/// Which section a node `type` belongs to, for "this is a sink" hints.
fn section_of_type(ty: &str) -> Option<&'static str> {
    [
        (SourceKind::TYPES, SourceKind::NOUN),
        (TransformKind::TYPES, TransformKind::NOUN),
        (SinkKind::TYPES, SinkKind::NOUN),
    ]
    .into_iter()
    .find(|(types, _)| types.contains(&ty))
    .map(|(_, noun)| noun)
}

/// The sections of nodes, for suggestions when one is misspelled.
const SECTIONS: [&str; 3] = [SourceKind::KEY, TransformKind::KEY, SinkKind::KEY];

struct Loader<'a> {
    spans: &'a Spans,
    diagnostics: Vec<Diagnostic>,
    broken: HashSet<String>,
    readable: bool,
}

/// Values tried in turn in place of a required field whose own value was
/// wrong: the first that reads stands in for it. `"1s"` reads as a string
/// and as a duration.
static STAND_INS: std::sync::LazyLock<[Value; 5]> = std::sync::LazyLock::new(|| {
    [
        Value::from(1),
        Value::from("1s"),
        Value::from(false),
        Value::Sequence(Vec::new()),
        Value::Mapping(Mapping::new()),
    ]
});

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

/// The most errors reported in one mapping.
const MAX_ERRORS_PER_MAPPING: usize = 20;

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

    /// Deserializes the mapping `fields` (found at `path`, described as
    /// `what`) as a `T`, or as its variant `tag` if `T` is an enum. Every
    /// field serde rejects is reported, set aside, and the rest read again,
    /// until it reads or a required field is missing. `extra` are other
    /// names valid at this place, for suggestions.
    fn fields<T: DeserializeOwned>(
        &mut self,
        path: &[Seg],
        what: &str,
        mut fields: Mapping,
        tag: Option<&str>,
        extra: &[&str],
    ) -> Option<T> {
        let mut set_aside: Vec<String> = Vec::new();
        let mut stood_in: Vec<String> = Vec::new();
        let read = |fields: &Mapping| {
            let value = match tag {
                Some(tag) => Value::Tagged(Box::new(TaggedValue {
                    tag: Tag::new(tag),
                    value: Value::Mapping(fields.clone()),
                })),
                None => Value::Mapping(fields.clone()),
            };
            serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
                // The path of an error inside a variant starts with the variant.
                let inner: Path = error_path(e.path())
                    .into_iter()
                    .skip(usize::from(tag.is_some()))
                    .collect();
                (inner, e.into_inner().to_string())
            })
        };
        // Each round reads the whole mapping again: bounded, so that a
        // mapping of thousands of wrong keys is checked in linear time.
        for _ in 0..MAX_ERRORS_PER_MAPPING {
            let (inner, message) = match read(&fields) {
                Ok(v) => return Some(v),
                Err(e) => e,
            };
            if let Some(field) = quoted_after(&message, "missing field `") {
                if set_aside.iter().any(|f| f == field) && !stood_in.iter().any(|f| f == field) {
                    // A required field whose value was wrong (reported
                    // already): a stand-in takes its place, so that the
                    // other fields can still be checked. The spec has an
                    // error there, so the stand-in never runs.
                    if let Some(v) = STAND_INS.iter().find(|v| {
                        let mut with = fields.clone();
                        with.insert(Value::from(field), (*v).clone());
                        match read(&with) {
                            Ok(_) => true,
                            Err((at, _)) => at.first() != Some(&Seg::Key(field.to_owned())),
                        }
                    }) {
                        fields.insert(Value::from(field), v.clone());
                        stood_in.push(field.to_owned());
                        continue;
                    }
                    return None;
                }
                // Its name was misspelled (`feild`): reported already.
                if set_aside.iter().any(|f| did_you_mean(f, [field]).is_some()) {
                    return None;
                }
            }
            let mut full = path.to_vec();
            full.extend(inner.iter().cloned());
            self.diagnostics.push(serde_diagnostic(
                self.spans,
                &full,
                path.len(),
                what,
                &message,
                extra,
            ));
            let culprit = quoted_after(&message, "unknown field `")
                .map(str::to_owned)
                .or_else(|| match inner.first() {
                    Some(Seg::Key(k)) => Some(k.clone()),
                    _ => None,
                });
            match culprit {
                // In order: the errors shown are the first ones written.
                Some(field) if fields.shift_remove(field.as_str()).is_some() => {
                    set_aside.push(field)
                }
                _ => return None,
            }
        }
        if read(&fields).is_err() {
            self.diagnostics.push(
                Diagnostic::error(
                    TOO_MANY_ERRORS,
                    format!("{what} has more than {MAX_ERRORS_PER_MAPPING} errors; the rest are not shown"),
                )
                .at(self.spans.value(path), "")
                .help("fix these first"),
            );
        }
        None
    }

    fn section<K: Section>(&mut self, value: Value, has_inputs: bool) -> IndexMap<String, Node<K>> {
        let section_path = spans::path(&[K::KEY]);
        let mut nodes = IndexMap::new();
        let entries = match value {
            Value::Null => return nodes,
            Value::Mapping(m) => m,
            other => {
                self.diagnostics.push(
                    Diagnostic::error(
                        "invalid-type",
                        format!(
                            "`{}` must be a mapping from node names to nodes, not {}",
                            K::KEY,
                            yaml_type(&other)
                        ),
                    )
                    .at(self.spans.value(&section_path), "expected a mapping"),
                );
                return nodes;
            }
        };
        for (key, value) in entries {
            let Some(name) = key.as_str().map(str::to_owned) else {
                self.diagnostics.push(
                    Diagnostic::error("invalid-type", format!("{} names must be strings", K::NOUN))
                        .at(self.spans.value(&section_path), ""),
                );
                continue;
            };
            match self.node::<K>(&name, value, has_inputs) {
                Some(node) => {
                    nodes.insert(name, node);
                }
                None => {
                    self.broken.insert(name);
                }
            }
        }
        nodes
    }

    fn node<K: Section>(&mut self, name: &str, value: Value, has_inputs: bool) -> Option<Node<K>> {
        let path = spans::path(&[K::KEY, name]);
        let what = format!("{} `{name}`", K::NOUN);
        let Value::Mapping(mut fields) = value else {
            self.diagnostics.push(
                Diagnostic::error(
                    "invalid-type",
                    format!(
                        "{what} must be a mapping with a `type`, not {}",
                        yaml_type(&value)
                    ),
                )
                .at(self.spans.value(&path), "expected a mapping"),
            );
            return None;
        };

        let ty = match fields.remove("type") {
            None => {
                self.diagnostics.push(
                    Diagnostic::error("missing-type", format!("{what} has no `type`"))
                        .at(self.spans.key(&path), "add a `type` here")
                        .help(format!("a {} is one of: {}", K::NOUN, K::TYPES.join(", "))),
                );
                return None;
            }
            Some(Value::String(ty)) => ty,
            Some(other) => {
                let mut p = path.clone();
                p.push(Seg::Key("type".into()));
                self.diagnostics.push(
                    Diagnostic::error(
                        "invalid-type",
                        format!(
                            "the `type` of {what} must be a string, not {}",
                            yaml_type(&other)
                        ),
                    )
                    .at(self.spans.value(&p), "expected a string"),
                );
                return None;
            }
        };
        let type_path = {
            let mut p = path.clone();
            p.push(Seg::Key("type".into()));
            p
        };
        if !K::TYPES.contains(&ty.as_str()) {
            let mut d =
                Diagnostic::error("unknown-type", format!("{what} has an unknown type `{ty}`"))
                    .at(self.spans.value(&type_path), format!("not a {}", K::NOUN));
            d = match section_of_type(&ty) {
                Some(noun) => d.help(format!(
                    "`{ty}` is a {noun}: move `{name}` under `{noun}s:`"
                )),
                None => d.suggest(&ty, K::TYPES.iter().copied()),
            };
            self.diagnostics.push(d.help(format!(
                "a {} is one of: {}",
                K::NOUN,
                K::TYPES.join(", ")
            )));
            return None;
        }

        // The settings every node has are read apart from its kind, so that
        // the kind's own fields can be checked strictly.
        let common_keys: &[&str] = if has_inputs {
            &["inputs", "parallelism", "on_error"]
        } else {
            &["parallelism", "on_error"]
        };
        let mut common = Mapping::new();
        for key in common_keys {
            if let Some(v) = fields.remove(*key) {
                common.insert(Value::String((*key).to_owned()), v);
            }
        }
        let mut ok = true;
        if !has_inputs && fields.remove("inputs").is_some() {
            let mut p = path.clone();
            p.push(Seg::Key("inputs".into()));
            self.diagnostics.push(
                Diagnostic::error(
                    "source-with-inputs",
                    format!("{what} has `inputs`, but a source reads no inputs"),
                )
                .at(self.spans.key(&p), "remove this field")
                .help("to read from another node, make this node a transform"),
            );
            ok = false;
        }
        if has_inputs {
            let empty = match common.get("inputs") {
                None | Some(Value::Null) => true,
                Some(Value::Sequence(s)) => s.is_empty(),
                _ => false,
            };
            // `input: [lines]` is reported as an unknown field with its
            // suggestion; saying `inputs` is missing would be the same mistake twice.
            let misspelled = common.get("inputs").is_none()
                && fields
                    .keys()
                    .filter_map(Value::as_str)
                    .any(|k| did_you_mean(k, ["inputs"]).is_some());
            if empty && !misspelled {
                let mut p = path.clone();
                p.push(Seg::Key("inputs".into()));
                let at = if self.spans.contains(&p) {
                    self.spans.value(&p)
                } else {
                    self.spans.key(&path)
                };
                self.diagnostics.push(
                    Diagnostic::error("no-inputs", format!("{what} has no `inputs`"))
                        .at(at, "name the nodes it reads from")
                        .help("e.g. `inputs: [lines]`"),
                );
            }
            if empty {
                common.remove("inputs");
                common.insert(Value::String("inputs".into()), Value::Sequence(Vec::new()));
                ok = false;
            }
        }

        let reported = self.diagnostics.len();
        let common = if has_inputs {
            self.fields::<StepCommon>(&path, &what, common, None, &[])
                .map(|c| (c.inputs, c.parallelism, c.on_error))
        } else {
            self.fields::<SourceCommon>(&path, &what, common, None, &[])
                .map(|c| (Vec::new(), c.parallelism, c.on_error))
        };
        // The kind is read as a YAML-tagged enum (`!file {...}`),
        // whose error paths, unlike an internally tagged one's, reach inside.
        let extra = if has_inputs {
            common_keys
        } else {
            &["type", "parallelism", "on_error"][..]
        };
        let kind = self.fields::<K>(&path, &format!("{what} ({ty})"), fields, Some(&ty), extra);
        // A node whose wrong values were set aside (or stood in for) is
        // read all the same, so that the planner checks the rest of it;
        // the spec has errors, so it never runs. One with an unknown field
        // (`splt`) is not: read without it, it would be blamed for lacking it.
        let ((inputs, parallelism, on_error), kind) = (common?, kind?);
        let unknown_field = self.diagnostics[reported..]
            .iter()
            .any(|d| d.code == "unknown-field");
        (ok && !unknown_field).then_some(Node {
            inputs,
            parallelism,
            on_error,
            kind,
        })
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

    /// Node names are one namespace across sources, transforms and sinks.
    fn duplicate_names(&mut self, spec: &Spec) {
        let mut seen: IndexMap<&str, &str> = IndexMap::new();
        let all = spec
            .sources
            .keys()
            .map(|n| (n, SourceKind::KEY))
            .chain(spec.transforms.keys().map(|n| (n, TransformKind::KEY)))
            .chain(spec.sinks.keys().map(|n| (n, SinkKind::KEY)));
        for (name, section) in all {
            if let Some(first) = seen.insert(name, section) {
                seen.insert(name, first);
                self.diagnostics.push(
                    Diagnostic::error(
                        "duplicate-node",
                        format!("`{name}` is defined twice: under `{first}` and under `{section}`"),
                    )
                    .at(self.spans.key(&spans::path(&[section, name])), "second definition")
                    .help("node names are shared by sources, transforms and sinks; rename one of them"),
                );
            }
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
