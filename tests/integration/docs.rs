//! Every YAML example in the documentation is a spec `dataflow check` accepts.
//!
//! A fence opened with ```` ```yaml ```` holds a complete spec and is checked;
//! one opened with ```` ```yaml fragment ```` is a piece of a spec and is
//! skipped. The docs must also show an example of every node type and name
//! every field of the schema, so the reference cannot fall behind the types.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

use crate::harness::{dataflow, root, text};

/// The documents whose YAML examples are checked, relative to the repository root.
pub const DOCUMENTS: &[&str] = &["README.md", "docs/spec.md"];

/// A complete spec quoted in a document.
#[derive(Debug, Clone)]
pub struct Snippet {
    /// The document it is quoted in.
    pub document: &'static str,
    /// The 1-based line of its opening fence.
    pub line: usize,
    pub text: String,
}

impl Snippet {
    /// `docs/spec.md:42`, for messages.
    pub fn place(&self) -> String {
        format!("{}:{}", self.document, self.line)
    }
}

/// The ```` ```yaml ```` blocks of `markdown` (not ```` ```yaml fragment ````).
/// Panics on a fence that is never closed or a YAML fence of another
/// spelling (`yml`, `yaml snippet`), which the test would otherwise skip
/// silently.
pub fn yaml_blocks(document: &'static str, markdown: &str) -> Vec<Snippet> {
    let mut snippets = Vec::new();
    let mut open: Option<(usize, bool, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let fence = line.trim_start();
        match &mut open {
            None => {
                let Some(info) = fence.strip_prefix("```") else {
                    continue;
                };
                let info = info.trim();
                let checked = match info {
                    "yaml" => true,
                    "yaml fragment" => false,
                    other => {
                        assert!(
                            !other.starts_with("yaml") && !other.starts_with("yml"),
                            "{document}:{}: unknown fence ```{other}: write ```yaml for a complete spec or ```yaml fragment",
                            i + 1
                        );
                        false
                    }
                };
                open = Some((i + 1, checked, String::new()));
            }
            Some((start, checked, body)) => {
                if fence.starts_with("```") {
                    if *checked {
                        snippets.push(Snippet {
                            document,
                            line: *start,
                            text: std::mem::take(body),
                        });
                    }
                    open = None;
                } else {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    if let Some((start, ..)) = open {
        panic!("{document}:{start}: this code block is never closed");
    }
    snippets
}

/// Every checked snippet of every document in [`DOCUMENTS`].
pub fn snippets() -> Vec<Snippet> {
    DOCUMENTS
        .iter()
        .flat_map(|doc| {
            let markdown = std::fs::read_to_string(root().join(doc))
                .unwrap_or_else(|e| panic!("cannot read {doc}: {e}"));
            yaml_blocks(doc, &markdown)
        })
        .collect()
}

#[test]
fn check_accepts_every_yaml_example() {
    let snippets = snippets();
    assert!(
        snippets.len() >= 10,
        "expected an example per node type in docs/spec.md, found {} snippets",
        snippets.len()
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    let files: Vec<PathBuf> = snippets
        .iter()
        .map(|s| {
            let name = format!("{}-{}.yaml", s.document.replace(['/', '.'], "_"), s.line);
            let path = dir.path().join(name);
            std::fs::write(&path, &s.text).expect("the snippet is written");
            path
        })
        .collect();
    let mut args = vec!["check", "--format", "json"];
    args.extend(files.iter().map(|p| p.to_str().expect("a UTF-8 temp path")));
    let out = dataflow(&args);
    let (stdout, stderr) = text(&out);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("`check --format json` printed no JSON ({e}):\n{stdout}\n{stderr}")
    });
    let reports = report["files"].as_array().expect("a list of files");
    assert_eq!(reports.len(), snippets.len(), "{stdout}");

    let mut failures = Vec::new();
    for (snippet, (report, path)) in snippets.iter().zip(reports.iter().zip(&files)) {
        let clean = report["valid"] == Value::Bool(true)
            && report["diagnostics"].as_array().is_some_and(Vec::is_empty);
        if !clean {
            // The text form quotes the offending lines.
            let (stdout, stderr) = text(&dataflow(&["check", path.to_str().unwrap_or_default()]));
            failures.push(format!(
                "the example at {} is not a clean spec:\n{stderr}{stdout}",
                snippet.place()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// The node types of the schema's `SourceKind`, `TransformKind` or `SinkKind`.
fn schema_types(schema: &Value, def: &str) -> BTreeSet<String> {
    schema["$defs"][def]["oneOf"]
        .as_array()
        .expect("node kinds are a oneOf")
        .iter()
        .filter_map(|v| v["properties"]["type"]["const"].as_str())
        .map(str::to_owned)
        .collect()
}

#[test]
fn spec_reference_has_an_example_of_every_node_type() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas/pipeline.schema.json"))
            .expect("the schema is committed"),
    )
    .expect("the schema is JSON");
    let mut shown: BTreeSet<(String, String)> = BTreeSet::new();
    for snippet in snippets().iter().filter(|s| s.document == "docs/spec.md") {
        let spec: Value = serde_yaml::from_str(&snippet.text)
            .unwrap_or_else(|e| panic!("{}: {e}", snippet.place()));
        for section in ["sources", "transforms", "sinks"] {
            for node in spec[section]
                .as_object()
                .into_iter()
                .flat_map(|m| m.values())
            {
                if let Some(ty) = node["type"].as_str() {
                    shown.insert((section.to_owned(), ty.to_owned()));
                }
            }
        }
    }
    let mut missing = Vec::new();
    for (section, def) in [
        ("sources", "SourceKind"),
        ("transforms", "TransformKind"),
        ("sinks", "SinkKind"),
    ] {
        for ty in schema_types(&schema, def) {
            if !shown.contains(&(section.to_owned(), ty.clone())) {
                missing.push(format!("{section}: {ty}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/spec.md has no ```yaml example of: {}",
        missing.join(", ")
    );
}

/// Every property name the schema declares, anywhere in it.
fn property_names(schema: &Value, out: &mut BTreeSet<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get("properties") {
                out.extend(props.keys().cloned());
            }
            map.values().for_each(|v| property_names(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| property_names(v, out)),
        _ => {}
    }
}

#[test]
fn spec_reference_names_every_field() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas/pipeline.schema.json"))
            .expect("the schema is committed"),
    )
    .expect("the schema is JSON");
    let reference =
        std::fs::read_to_string(root().join("docs/spec.md")).expect("docs/spec.md exists");
    let mut fields = BTreeSet::new();
    property_names(&schema, &mut fields);
    let missing: Vec<&String> = fields
        .iter()
        .filter(|f| !reference.contains(&format!("`{f}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/spec.md does not document these fields: {missing:?}"
    );
}
