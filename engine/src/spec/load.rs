//! YAML text → [`Spec`], collecting every problem instead of stopping at the first.
//!
//! serde stops at its first error, so the document is cut into pieces that
//! fail independently (the job settings, `checkpoint`, `state`, and each
//! node) and each piece is deserialized on its own through
//! serde_path_to_error. The path of each error, looked up in the [`Spans`]
//! index, gives the line and column to show.

use std::collections::HashSet;

use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

use super::spans::{self, Path, Seg, Spans};
use super::{
    JobSettings, Node, SinkKind, SourceCommon, SourceKind, Spec, StateSpec, StepCommon,
    TransformKind,
};
use crate::diag::{Diagnostic, SourceFile};

/// The result of loading a spec: as much of it as could be read, and what
/// was wrong. The spec is usable only when no diagnostic is an error.
pub struct Loaded {
    pub file: SourceFile,
    pub spans: Spans,
    pub spec: Spec,
    /// Nodes that are declared but could not be read; references to them
    /// are not reported again as unknown inputs.
    pub broken: HashSet<String>,
    /// Parts of the spec that could not be read at all: [`JOB`] (the
    /// top-level settings) or a node section (`sources`, ...), because of
    /// a wrong type or a document that is not a mapping. What they hold is
    /// unknown, so the planner reports nothing more about them.
    pub unread: HashSet<&'static str>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

const TOP_LEVEL: &[&str] = &[
    "name",
    "parallelism",
    "max_parallelism",
    "batch_size",
    "buffer_timeout",
    "checkpoint",
    "state",
    "sources",
    "transforms",
    "sinks",
];

/// The part of the spec that is the job settings, in [`Loaded::unread`].
pub const JOB: &str = "job";

/// Every part of the spec [`Loaded::unread`] may name.
const PARTS: [&str; 4] = [JOB, SourceKind::KEY, TransformKind::KEY, SinkKind::KEY];

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
    const TYPES: &'static [&'static str] = &["socket", "file", "generate", "stdin"];
}

impl Section for TransformKind {
    const KEY: &'static str = "transforms";
    const NOUN: &'static str = "transform";
    const TYPES: &'static [&'static str] = &[
        "map", "filter", "flat_map", "key_by", "sum", "min", "max", "count", "reduce",
    ];
}

impl Section for SinkKind {
    const KEY: &'static str = "sinks";
    const NOUN: &'static str = "sink";
    const TYPES: &'static [&'static str] = &["print", "file", "blackhole"];
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

struct Loader<'a> {
    spans: &'a Spans,
    diagnostics: Vec<Diagnostic>,
    broken: HashSet<String>,
    unread: HashSet<&'static str>,
}

/// Loads a spec from its text.
pub fn load(file: SourceFile) -> Loaded {
    let spans = Spans::build(&file.text);
    let mut loader = Loader {
        spans: &spans,
        diagnostics: Vec::new(),
        broken: HashSet::new(),
        unread: HashSet::new(),
    };
    let spec = loader.document(&file.text);
    let Loader {
        diagnostics,
        broken,
        unread,
        ..
    } = loader;
    Loaded {
        file,
        spans,
        spec,
        broken,
        unread,
        diagnostics,
    }
}

impl Loader<'_> {
    fn document(&mut self, text: &str) -> Spec {
        let mut spec = Spec {
            job: JobSettings {
                name: String::new(),
                parallelism: 1,
                max_parallelism: super::default_max_parallelism(),
                batch_size: super::default_batch_size(),
                buffer_timeout: super::default_buffer_timeout(),
            },
            checkpoint: None,
            state: StateSpec::default(),
            sources: IndexMap::new(),
            transforms: IndexMap::new(),
            sinks: IndexMap::new(),
        };
        let root: Value = match serde_yaml::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                self.diagnostics.push(yaml_error(&e, text));
                self.unread.extend(PARTS);
                return spec;
            }
        };
        let root = match root {
            Value::Mapping(m) => m,
            Value::Null => {
                self.diagnostics.push(
                    Diagnostic::error("empty-spec", "the spec is empty")
                        .help("a spec needs at least `name`, `sources` and `sinks`"),
                );
                self.unread.extend(PARTS);
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
                self.unread.extend(PARTS);
                return spec;
            }
        };

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
                        self.typed(&spans::path(&["checkpoint"]), "`checkpoint`", value, &[]);
                }
                "state" => {
                    let value = if value.is_null() {
                        Value::Mapping(Mapping::new())
                    } else {
                        value
                    };
                    if let Some(state) = self.typed(&spans::path(&["state"]), "`state`", value, &[])
                    {
                        spec.state = state;
                    }
                }
                "sources" => spec.sources = self.section::<SourceKind>(value, false),
                "transforms" => spec.transforms = self.section::<TransformKind>(value, true),
                "sinks" => spec.sinks = self.section::<SinkKind>(value, true),
                _ => {
                    settings.insert(Value::String(name), value);
                }
            }
        }
        match self.typed::<JobSettings>(
            &Vec::new(),
            "the spec",
            Value::Mapping(settings),
            TOP_LEVEL,
        ) {
            Some(job) => spec.job = job,
            None => {
                self.unread.insert(JOB);
            }
        }
        self.duplicate_names(&spec);
        spec
    }

    /// Deserializes `value` (found at `path`) as a `T`, reporting failure.
    /// `extra_fields` are other names valid at this place, for suggestions.
    fn typed<T: DeserializeOwned>(
        &mut self,
        path: &[Seg],
        what: &str,
        value: Value,
        extra_fields: &[&str],
    ) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(v) => Some(v),
            Err(e) => {
                let mut full = path.to_vec();
                full.extend(error_path(e.path()));
                let d = serde_diagnostic(
                    self.spans,
                    &full,
                    path.len(),
                    what,
                    &e.into_inner().to_string(),
                    extra_fields,
                );
                self.diagnostics.push(d);
                None
            }
        }
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
                self.unread.insert(K::KEY);
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
            if empty {
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
                common.remove("inputs");
                common.insert(Value::String("inputs".into()), Value::Sequence(Vec::new()));
                ok = false;
            }
        }

        let (inputs, parallelism, on_error) = if has_inputs {
            let c: StepCommon = self.typed(&path, &what, Value::Mapping(common), &[])?;
            (c.inputs, c.parallelism, c.on_error)
        } else {
            let c: SourceCommon = self.typed(&path, &what, Value::Mapping(common), &[])?;
            (Vec::new(), c.parallelism, c.on_error)
        };

        // The kind is read as a YAML-tagged enum (`!file {...}`),
        // whose error paths, unlike an internally tagged one's, reach inside.
        let tagged = Value::Tagged(Box::new(serde_yaml::value::TaggedValue {
            tag: serde_yaml::value::Tag::new(ty.clone()),
            value: Value::Mapping(fields),
        }));
        let extra = if has_inputs {
            common_keys
        } else {
            &["type", "parallelism", "on_error"][..]
        };
        let kind = match serde_path_to_error::deserialize::<_, K>(tagged) {
            Ok(kind) => kind,
            Err(e) => {
                let mut full = path.clone();
                full.extend(error_path(e.path()).into_iter().skip(1));
                let what = format!("{what} ({ty})");
                let d = serde_diagnostic(
                    self.spans,
                    &full,
                    path.len(),
                    &what,
                    &e.into_inner().to_string(),
                    extra,
                );
                self.diagnostics.push(d);
                return None;
            }
        };
        ok.then_some(Node {
            inputs,
            parallelism,
            on_error,
            kind,
        })
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

/// A YAML syntax error, located where serde_yaml found it.
fn yaml_error(e: &serde_yaml::Error, text: &str) -> Diagnostic {
    let message = e.to_string();
    // serde_yaml appends " at line L column C"; the span shows it already.
    let message = message
        .find(" at line ")
        .map_or(message.as_str(), |i| &message[..i])
        .to_owned();
    let span = e.location().map(|loc| {
        let start = loc.index().min(text.len());
        let end = text[start..]
            .find('\n')
            .map_or(text.len(), |i| start + i)
            .max(start);
        start..end.max(start + usize::from(start < text.len()))
    });
    // serde_yaml names the mapping first: `sources: duplicate entry with key "a"`.
    let code = if message.contains("duplicate entry") {
        "duplicate-key"
    } else {
        "yaml-syntax"
    };
    let mut d = Diagnostic::error(code, message).at(span, "here");
    if code == "duplicate-key" {
        d = d.help("each name may appear once in a mapping; node names must be unique");
    }
    d
}

fn error_path(path: &serde_path_to_error::Path) -> Path {
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

/// A diagnostic for a serde error at `path`, of which the first `base`
/// segments lead to the piece described as `what`.
fn serde_diagnostic(
    spans: &Spans,
    path: &Path,
    base: usize,
    what: &str,
    message: &str,
    extra: &[&str],
) -> Diagnostic {
    let first_name = message.split('`').nth(1).unwrap_or_default();
    let mut expected = expected_names(message);
    for f in extra {
        if !expected.contains(f) {
            expected.push(f);
        }
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or_default();
        let mut at = path.clone();
        at.push(Seg::Key(field.to_owned()));
        let known: Vec<&str> = expected.iter().copied().filter(|f| *f != "type").collect();
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
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or_default();
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
    if message.starts_with("invalid type:") {
        return Diagnostic::error(
            "invalid-type",
            format!(
                "wrong type for {place}: {}",
                &message["invalid type: ".len()..]
            ),
        )
        .at(spans.value(path), "wrong type");
    }
    let code = if message.contains("duration") {
        "invalid-duration"
    } else {
        "invalid-value"
    };
    let text = message.strip_prefix("invalid value: ").unwrap_or(message);
    Diagnostic::error(code, format!("invalid value for {place}: {text}"))
        .at(spans.value(path), "invalid value")
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
