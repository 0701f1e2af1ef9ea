//! `type: key_by`: records repartitioned by key.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::expr::Expr;
use crate::nodes::{PlannedTransform, Step, TransformType};
use crate::operators::stateless::PassThrough;
use crate::plan::NodeCx;

/// Repartitions records by key so that each key goes to one instance.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyBy {
    pub key: String,
}

impl TransformType for KeyBy {
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Option<Box<dyn PlannedTransform>> {
        let key = cx.key(&self.key)?;
        Some(Box::new(Planned(key)))
    }
}

#[derive(Debug)]
struct Planned(Expr);

impl PlannedTransform for Planned {
    /// The repartitioning is the edge into this node; the node passes
    /// records on as they come.
    fn key(&self) -> Option<&Expr> {
        Some(&self.0)
    }

    fn build(&self) -> Step {
        Step::Stateless(Box::new(PassThrough))
    }
}
