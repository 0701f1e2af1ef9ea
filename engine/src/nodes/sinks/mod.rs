//! Sink types: where records end up.

use schemars::JsonSchema;
use serde::Deserialize;

use super::SinkType;
use crate::diag::Diagnostic;
use crate::plan::NodeCx;

registry! {
    /// Sinks: where records end up.
    #[schemars(transform = crate::spec::schema::add_step_common)]
    SinkKind: SinkType {
        print::Print = "print",
        file::File = "file",
        blackhole::Blackhole = "blackhole",
        kafka::Kafka = "kafka",
    }
}

/// The check of `latency_field`, which every sink may have: a plain field
/// name.
fn check_latency_field(cx: &mut NodeCx<'_, '_>, field: Option<&str>) {
    let Some(field) = field else {
        return;
    };
    if !crate::plan::is_field_name(field) {
        let name = cx.name();
        let d = Diagnostic::error(
            "invalid-field",
            format!("`latency_field` of sink `{name}` must be a field name, not `{field}`"),
        )
        .at(
            cx.span("latency_field"),
            "expected a field name such as `ts`",
        );
        cx.error(d);
    }
}
