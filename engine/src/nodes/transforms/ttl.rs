//! `ttl`: how long a rolling aggregate keeps a key's state after its last
//! record (`sum`, `min`, `max`, `count`, `reduce`).

use crate::diag::Diagnostic;
use crate::plan::NodeCx;
use crate::spec::Duration;

/// The time to live in milliseconds, if set; `Err` when it was refused
/// (the error is reported).
pub(super) fn plan(cx: &mut NodeCx<'_, '_>, ttl: Option<Duration>) -> Result<Option<i64>, ()> {
    let Some(ttl) = ttl else {
        return Ok(None);
    };
    let ms = i64::try_from(ttl.0.as_millis()).unwrap_or(i64::MAX);
    if ms == 0 {
        let name = cx.name();
        let d = Diagnostic::error(
            "invalid-value",
            format!("`ttl` of transform `{name}` must be at least 1ms"),
        )
        .at(cx.span("ttl"), "zero");
        cx.error(d);
        return Err(());
    }
    Ok(Some(ms))
}

/// The kind of state a checkpoint records: a value kept with a time to
/// live is stored with its last update, so it is not the same kind.
pub(super) fn state_kind(kind: &'static str, ttl: Option<i64>) -> &'static str {
    match (kind, ttl.is_some()) {
        (_, false) => kind,
        ("sum", true) => "sum with ttl",
        ("min", true) => "min with ttl",
        ("max", true) => "max with ttl",
        ("count", true) => "count with ttl",
        ("reduce", true) => "reduce with ttl",
        (other, true) => other,
    }
}
