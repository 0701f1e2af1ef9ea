//! `type: reduce`: a rolling accumulator per key, any CEL expression.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::expr::{Expr, Var};
use crate::nodes::{PlannedTransform, Step, TransformType};
use crate::operators::keyed::Fold;
use crate::plan::NodeCx;

/// Rolling keyed reduce: emits the new accumulator, a CEL expression over `acc` and `this`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reduce {
    pub key: String,
    pub expr: String,
}

impl TransformType for Reduce {
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Option<Box<dyn PlannedTransform>> {
        let key = cx.key(&self.key);
        let expr = cx.expr("expr", &self.expr, &[Var::Acc, Var::This]);
        Some(Box::new(Planned {
            key: key?,
            key_text: self.key.trim().to_owned(),
            expr: expr?,
        }))
    }
}

#[derive(Debug)]
struct Planned {
    key: Expr,
    key_text: String,
    expr: Expr,
}

impl PlannedTransform for Planned {
    fn key(&self) -> Option<&Expr> {
        Some(&self.key)
    }

    fn state(&self) -> Option<(&'static str, &str)> {
        Some(("reduce", &self.key_text))
    }

    fn build(&self) -> Step {
        Step::Keyed(Fold::Reduce(self.expr.clone()))
    }
}
