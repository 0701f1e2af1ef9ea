//! What `sum`, `min` and `max` share: they differ only in what they keep
//! of one field per key.

use crate::diag::Diagnostic;
use crate::expr::Expr;
use crate::nodes::{PlannedTransform, Step};
use crate::operators::keyed::{AggregateKind, Fold};
use crate::plan::NodeCx;
use crate::spec::Duration;
use crate::value::{intern, Name};

/// Checks and compiles an aggregate's `key` and `field`.
pub(super) fn plan(
    cx: &mut NodeCx<'_, '_>,
    kind: AggregateKind,
    key_text: &str,
    field: &str,
    ttl: Option<Duration>,
) -> Option<Box<dyn PlannedTransform>> {
    let key = cx.key(key_text);
    let ttl = super::ttl::plan(cx, ttl);
    let field_ok = crate::plan::is_field_name(field);
    if !field_ok {
        let name = cx.name();
        let d = Diagnostic::error(
            "invalid-field",
            format!("`field` of transform `{name}` must be a field name, not `{field}`"),
        )
        .at(cx.span("field"), "expected a field name such as `count`");
        cx.error(d);
    }
    Some(Box::new(Planned {
        kind,
        key: key?,
        key_text: key_text.trim().to_owned(),
        field: field_ok.then(|| intern(field))?,
        ttl: ttl.ok()?,
    }))
}

#[derive(Debug)]
struct Planned {
    kind: AggregateKind,
    key: Expr,
    key_text: String,
    field: Name,
    ttl: Option<i64>,
}

impl PlannedTransform for Planned {
    fn key(&self) -> Option<&Expr> {
        Some(&self.key)
    }

    fn state(&self) -> Option<(&'static str, &str)> {
        let kind = match self.kind {
            AggregateKind::Sum => "sum",
            AggregateKind::Min => "min",
            AggregateKind::Max => "max",
        };
        Some((super::ttl::state_kind(kind, self.ttl), &self.key_text))
    }

    fn build(&self) -> Step {
        Step::Keyed(
            Fold::Aggregate {
                kind: self.kind,
                field: self.field.clone(),
            },
            self.ttl,
        )
    }
}
