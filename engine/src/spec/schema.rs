//! The JSON Schema of a spec, generated from the spec types.
//!
//! `schemas/pipeline.schema.json` is this output; a test fails when the
//! committed file differs, so editors always validate against the language
//! the engine really accepts.

use schemars::{generate::SchemaSettings, JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::{
    CheckpointSpec, JobSettings, SinkKind, SourceCommon, SourceKind, StateSpec, StepCommon,
    TransformKind,
};

/// The schema of a whole spec, pretty-printed, with a trailing newline.
pub fn generate() -> String {
    let mut generator = SchemaGenerator::new(SchemaSettings::draft2020_12());
    let mut root = JobSettings::json_schema(&mut generator);
    let props = root
        .ensure_object()
        .entry("properties")
        .or_insert_with(|| json!({}));
    if let Value::Object(props) = props {
        props.insert(
            "checkpoint".into(),
            generator.subschema_for::<CheckpointSpec>().to_value(),
        );
        // The loader reads an empty `state:` (null) as the defaults and an
        // empty node section as one without nodes; an empty `checkpoint:`
        // lacks its required `interval` in both.
        props.insert(
            "state".into(),
            json!({"anyOf": [generator.subschema_for::<StateSpec>().to_value(), {"type": "null"}]}),
        );
        for (key, nodes) in [
            ("sources", generator.subschema_for::<SourceKind>()),
            ("transforms", generator.subschema_for::<TransformKind>()),
            ("sinks", generator.subschema_for::<SinkKind>()),
        ] {
            props.insert(
                key.into(),
                json!({"type": ["object", "null"], "additionalProperties": nodes.to_value()}),
            );
        }
    }
    let obj = root.ensure_object();
    obj.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    obj.insert("title".into(), json!("dataflow pipeline"));
    obj.insert(
        "description".into(),
        json!("A dataflow pipeline: named sources, transforms and sinks, each transform and sink naming its inputs."),
    );
    let defs: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    obj.insert("$defs".into(), Value::Object(defs));
    let mut text = serde_json::to_string_pretty(&root).unwrap_or_default();
    text.push('\n');
    text
}

/// Adds the settings every source has to each variant of [`SourceKind`].
pub fn add_source_common(schema: &mut Schema) {
    add_common::<SourceCommon>(schema, false);
}

/// Adds the settings every transform and sink has to each variant.
pub fn add_step_common(schema: &mut Schema) {
    add_common::<StepCommon>(schema, true);
}

fn add_common<C: JsonSchema>(schema: &mut Schema, inputs_required: bool) {
    let mut settings = SchemaSettings::draft2020_12();
    // The common fields are spliced into another schema, where the
    // definitions they would refer to do not exist: inline them.
    settings.inline_subschemas = true;
    let common = SchemaGenerator::new(settings).into_root_schema_for::<C>();
    let Some(common_props) = common.get("properties").and_then(Value::as_object).cloned() else {
        return;
    };
    let Some(variants) = schema.get_mut("oneOf").and_then(Value::as_array_mut) else {
        return;
    };
    for variant in variants {
        let Some(variant) = variant.as_object_mut() else {
            continue;
        };
        if let Some(Value::Object(props)) = variant.get_mut("properties") {
            for (k, v) in &common_props {
                props.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        if inputs_required {
            if let Some(Value::Array(required)) = variant.get_mut("required") {
                required.push(json!("inputs"));
            }
        }
    }
}
