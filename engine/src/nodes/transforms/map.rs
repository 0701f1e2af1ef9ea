//! `type: map`: each record replaced by the value of an expression.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::expr::{Expr, Var};
use crate::nodes::{PlannedTransform, Step, TransformType};
use crate::operators::stateless;
use crate::plan::NodeCx;

/// Replaces each record by the value of a CEL expression over `this`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Map {
    pub expr: String,
}

impl TransformType for Map {
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Option<Box<dyn PlannedTransform>> {
        let expr = cx.expr("expr", &self.expr, &[Var::This])?;
        Some(Box::new(Planned(expr)))
    }
}

#[derive(Debug)]
struct Planned(Expr);

impl PlannedTransform for Planned {
    fn projection(&self) -> Option<&Expr> {
        Some(&self.0)
    }

    fn build(&self) -> Step {
        Step::Stateless(Box::new(stateless::Map(self.0.clone())))
    }
}
