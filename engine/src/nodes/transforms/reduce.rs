//! `type: reduce`: a rolling accumulator per key, any CEL expression.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::expr::{Expr, Var};
use crate::nodes::{PlannedTransform, Step, TransformType};
use crate::operators::keyed::Fold;
use crate::plan::NodeCx;
use crate::spec::Duration;

/// Rolling keyed reduce: emits the new accumulator, a CEL expression over `acc` and `this`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reduce {
    pub key: String,
    pub expr: String,
    /// Forget a key's state this long after its last record (by the
    /// clock): its next record starts again from nothing.
    #[serde(default)]
    pub ttl: Option<Duration>,
}

impl TransformType for Reduce {
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Option<Box<dyn PlannedTransform>> {
        let key = cx.key(&self.key);
        let expr = cx.expr("expr", &self.expr, &[Var::Acc, Var::This]);
        let ttl = super::ttl::plan(cx, self.ttl);
        Some(Box::new(Planned {
            ttl: ttl.ok()?,
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
    ttl: Option<i64>,
}

impl PlannedTransform for Planned {
    fn key(&self) -> Option<&Expr> {
        Some(&self.key)
    }

    fn state(&self) -> Option<(&'static str, &str)> {
        Some((super::ttl::state_kind("reduce", self.ttl), &self.key_text))
    }

    fn build(&self) -> Step {
        Step::Keyed(Fold::Reduce(self.expr.clone()), self.ttl)
    }
}
