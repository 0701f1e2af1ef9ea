//! `type: flat_map`: one record in, any number out.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::diag::Diagnostic;
use crate::expr::{Expr, Var};
use crate::nodes::{PlannedTransform, Step, TransformType};
use crate::operators::stateless::{Explode, Split};
use crate::plan::NodeCx;

/// One record in, any number out: the pieces of a string split on
/// `split`, or the elements of the list `expr` returns.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlatMap {
    #[serde(default)]
    pub split: Option<String>,
    #[serde(default)]
    pub expr: Option<String>,
}

impl TransformType for FlatMap {
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Option<Box<dyn PlannedTransform>> {
        let name = cx.name().to_owned();
        let planned = match (&self.split, &self.expr) {
            (Some(sep), None) if !sep.is_empty() => Planned::Split(Arc::from(sep.as_str())),
            (None, Some(e)) => Planned::Expr(cx.expr("expr", e, &[Var::This])?),
            (Some(_), None) => {
                let d = Diagnostic::error(
                    "invalid-value",
                    format!("`split` of transform `{name}` is empty"),
                )
                .at(cx.span("split"), "empty separator");
                cx.error(d);
                return None;
            }
            // Both, or neither.
            (split, _) => {
                let (message, at, label) = if split.is_some() {
                    (
                        format!("flat_map `{name}` has both `split` and `expr`"),
                        cx.key_span(Some("expr")),
                        "remove `split` or `expr`",
                    )
                } else {
                    (
                        format!("flat_map `{name}` has neither `split` nor `expr`"),
                        cx.key_span(None),
                        "add `split` or `expr`",
                    )
                };
                let d = Diagnostic::error("flat-map-needs-one", message)
                    .at(at, label)
                    .help("a flat_map needs exactly one of them: `split: \",\"` splits a string; `expr: this.items` emits each element of a list");
                cx.error(d);
                return None;
            }
        };
        Some(Box::new(planned))
    }
}

#[derive(Debug)]
enum Planned {
    Split(Arc<str>),
    Expr(Expr),
}

impl PlannedTransform for Planned {
    fn build(&self) -> Step {
        Step::Stateless(match self {
            Planned::Split(sep) => Box::new(Split(Arc::clone(sep))),
            Planned::Expr(e) => Box::new(Explode(e.clone())),
        })
    }
}
