//! The committed JSON Schema is what `dataflow schema` prints, and it
//! judges specs the way `dataflow check` does: the examples pass, broken
//! specs fail.

use jsonschema::Validator;
use serde_json::Value;

use crate::harness::{dataflow, root, text};
use crate::specs::example_specs;

const SCHEMA_PATH: &str = "schemas/pipeline.schema.json";

/// The comment that points the YAML language server at the schema.
const MODELINE: &str = "# yaml-language-server: $schema=../schemas/pipeline.schema.json";

fn committed_schema() -> String {
    std::fs::read_to_string(root().join(SCHEMA_PATH)).expect("the schema is committed")
}

fn validator() -> Validator {
    let schema: Value = serde_json::from_str(&committed_schema()).expect("the schema is JSON");
    jsonschema::meta::validate(&schema)
        .unwrap_or_else(|e| panic!("{SCHEMA_PATH} is not a valid JSON Schema: {e}"));
    jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("{SCHEMA_PATH} does not compile: {e}"))
}

/// A YAML spec as the JSON value an editor validates.
fn as_json(yaml: &str) -> Value {
    let value: serde_yaml::Value = serde_yaml::from_str(yaml).expect("the spec is YAML");
    serde_json::to_value(value).expect("the spec converts to JSON")
}

/// Every schema violation of `yaml`, one per line; empty when it is valid.
fn violations(validator: &Validator, yaml: &str) -> String {
    let instance = as_json(yaml);
    let errors = validator.iter_errors(&instance).into_errors();
    if errors.is_empty() {
        String::new()
    } else {
        errors.to_string()
    }
}

#[test]
fn committed_schema_is_generated_from_the_types() {
    let out = dataflow(&["schema"]);
    let (generated, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let committed = committed_schema();
    if generated != committed {
        let first_difference = generated
            .lines()
            .zip(committed.lines())
            .position(|(g, c)| g != c)
            .map_or_else(
                || "one is a prefix of the other".to_owned(),
                |i| format!("first difference at line {}", i + 1),
            );
        panic!(
            "{SCHEMA_PATH} is out of date ({first_difference}); regenerate it with\n\n    \
             cargo run --release -- schema > {SCHEMA_PATH}\n"
        );
    }
}

#[test]
fn every_example_spec_names_and_satisfies_the_schema() {
    let validator = validator();
    for spec in example_specs() {
        let yaml = std::fs::read_to_string(root().join(&spec)).expect("the example is readable");
        assert_eq!(
            yaml.lines().next(),
            Some(MODELINE),
            "{spec} must start with the line `{MODELINE}` so editors validate it"
        );
        let problems = violations(&validator, &yaml);
        assert!(problems.is_empty(), "{spec} fails the schema:\n{problems}");
    }
}

#[test]
fn every_documented_spec_satisfies_the_schema() {
    let validator = validator();
    for snippet in crate::docs::snippets() {
        let problems = violations(&validator, &snippet.text);
        assert!(
            problems.is_empty(),
            "the example at {} fails the schema:\n{problems}",
            snippet.place()
        );
    }
}

/// The word count with one line replaced: `from` becomes `to`.
fn broken(from: &str, to: &str) -> String {
    let yaml = std::fs::read_to_string(root().join("specs/word_count.yaml"))
        .expect("the example is readable");
    assert!(yaml.contains(from), "specs/word_count.yaml has no `{from}`");
    yaml.replacen(from, to, 1)
}

#[test]
fn schema_and_check_reject_the_same_broken_specs() {
    let validator = validator();
    let cases = [
        (
            "an unknown top-level field",
            broken("parallelism: 1\n", "paralelism: 1\n"),
            "unknown-field",
        ),
        (
            "an unknown field in a node",
            broken("    split: \",\"\n", "    separator: \",\"\n"),
            "unknown-field",
        ),
        (
            "an unknown checkpoint field",
            broken("  retain: 1\n", "  keep: 1\n"),
            "unknown-field",
        ),
        (
            "a string where a number goes",
            broken("parallelism: 1\n", "parallelism: two\n"),
            "invalid-type",
        ),
        (
            "a list where a string goes",
            broken("    path: specs/data/words.txt\n", "    path: [a, b]\n"),
            "invalid-type",
        ),
        (
            "inputs that are not a list",
            broken("    inputs: [counts]\n", "    inputs: {counts: 1}\n"),
            "invalid-type",
        ),
        (
            "a duration without a unit",
            broken("  interval: 10s\n", "  interval: 10\n"),
            "invalid-duration",
        ),
        (
            "an unknown enum value",
            broken("  backend: sled\n", "  backend: rocksdb\n"),
            "invalid-value",
        ),
        (
            "an unknown node type",
            broken("    type: sum\n", "    type: summ\n"),
            "unknown-type",
        ),
        (
            "a sink type among the transforms",
            broken("    type: sum\n", "    type: print\n"),
            "unknown-type",
        ),
        (
            "a node without a type",
            broken("    type: map\n", ""),
            "missing-type",
        ),
        (
            "a required field missing",
            broken("    field: count\n", ""),
            "missing-field",
        ),
        (
            "a transform without inputs",
            broken("    inputs: [pairs]\n", ""),
            "no-inputs",
        ),
        (
            "a job without a name",
            broken("name: word-count\n", ""),
            "missing-field",
        ),
    ];
    for (what, yaml, code) in cases {
        let problems = violations(&validator, &yaml);
        assert!(!problems.is_empty(), "the schema accepts {what}:\n{yaml}");
        let loaded = dataflow::spec::load(dataflow::diag::SourceFile {
            name: "broken.yaml".to_owned(),
            text: yaml.clone(),
        });
        let (plan, diagnostics) = dataflow::plan::compile(&loaded);
        assert!(plan.is_none(), "check accepts {what}:\n{yaml}");
        assert!(
            diagnostics.iter().any(|d| d.code == code),
            "check reports {what} without `{code}`: {diagnostics:#?}"
        );
    }
}

#[test]
fn schema_and_check_agree_on_empty_sections() {
    let validator = validator();
    // `state:` and `transforms:` with nothing after them are the defaults
    // and no transforms.
    let empty = "name: wc\nstate:\ntransforms:\n\
                 sources:\n  lines: {type: file, path: a.txt}\n\
                 sinks:\n  out: {type: print, inputs: [lines]}\n";
    let problems = violations(&validator, empty);
    assert!(
        problems.is_empty(),
        "the schema rejects empty sections:\n{problems}"
    );
    let loaded = dataflow::spec::load(dataflow::diag::SourceFile {
        name: "empty.yaml".to_owned(),
        text: empty.to_owned(),
    });
    let (plan, diagnostics) = dataflow::plan::compile(&loaded);
    assert!(
        plan.is_some(),
        "check rejects empty sections: {diagnostics:#?}"
    );
    // An empty `checkpoint:` turns checkpointing on without an `interval`.
    let checkpoint = format!("{empty}checkpoint:\n");
    assert!(
        !violations(&validator, &checkpoint).is_empty(),
        "the schema accepts an empty `checkpoint:`"
    );
    let loaded = dataflow::spec::load(dataflow::diag::SourceFile {
        name: "checkpoint.yaml".to_owned(),
        text: checkpoint,
    });
    let (_, diagnostics) = dataflow::plan::compile(&loaded);
    assert!(
        diagnostics.iter().any(|d| d.code == "missing-field"),
        "check accepts an empty `checkpoint:`: {diagnostics:#?}"
    );
}
