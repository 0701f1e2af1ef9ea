//! The node sections (`sources`, `transforms`, `sinks`): each node read on
//! its own, so that one broken node hides nothing about the others, and
//! node names checked as one namespace across the three.
//!
//! Apart from the document as a whole (`mod.rs`) because a node is read
//! in steps of its own: its `type` first, then the settings every node
//! has, then its kind's fields, strictly.

use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

use super::{yaml_type, Loader};
use crate::diag::{did_you_mean, Diagnostic};
use crate::spec::spans::{self, Seg};
use crate::spec::{Node, SinkKind, SourceCommon, SourceKind, Spec, StepCommon, TransformKind};

/// A section of node definitions and how its nodes are read.
pub(super) trait Section: DeserializeOwned + Sized {
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
pub(super) const SECTIONS: [&str; 3] = [SourceKind::KEY, TransformKind::KEY, SinkKind::KEY];

impl Loader<'_> {
    pub(super) fn section<K: Section>(
        &mut self,
        value: Value,
        has_inputs: bool,
    ) -> IndexMap<String, Node<K>> {
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
            &["parallelism", "on_error", "event_time"]
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
                .map(|c| (c.inputs, c.parallelism, c.on_error, None))
        } else {
            self.fields::<SourceCommon>(&path, &what, common, None, &[])
                .map(|c| (Vec::new(), c.parallelism, c.on_error, c.event_time))
        };
        // The kind is read as a YAML-tagged enum (`!file {...}`),
        // whose error paths, unlike an internally tagged one's, reach inside.
        let extra = if has_inputs {
            common_keys
        } else {
            &["type", "parallelism", "on_error", "event_time"][..]
        };
        let kind = self.fields::<K>(&path, &format!("{what} ({ty})"), fields, Some(&ty), extra);
        // A node whose wrong values were set aside (or stood in for) is
        // read all the same, so that the planner checks the rest of it;
        // the spec has errors, so it never runs. One with an unknown field
        // (`splt`) is not: read without it, it would be blamed for lacking it.
        let ((inputs, parallelism, on_error, event_time), kind) = (common?, kind?);
        let unknown_field = self.diagnostics[reported..]
            .iter()
            .any(|d| d.code == "unknown-field");
        (ok && !unknown_field).then_some(Node {
            inputs,
            parallelism,
            on_error,
            event_time,
            kind,
        })
    }

    /// Node names are one namespace across sources, transforms and sinks.
    pub(super) fn duplicate_names(&mut self, spec: &Spec) {
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
