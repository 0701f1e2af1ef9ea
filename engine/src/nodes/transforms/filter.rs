//! `type: filter`: the records for which a condition holds.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::expr::{Expr, Var};
use crate::nodes::{PlannedTransform, Step, TransformType};
use crate::operators::stateless;
use crate::plan::NodeCx;

/// Keeps the records for which a CEL condition over `this` is true.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub condition: String,
}

impl TransformType for Filter {
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Option<Box<dyn PlannedTransform>> {
        let condition = cx.expr("condition", &self.condition, &[Var::This])?;
        Some(Box::new(Planned(condition)))
    }
}

#[derive(Debug)]
struct Planned(Expr);

impl PlannedTransform for Planned {
    fn build(&self) -> Step {
        Step::Stateless(Box::new(stateless::Filter(self.0.clone())))
    }
}
