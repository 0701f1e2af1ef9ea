//! `type: sum`: a rolling sum of one field per key.

use schemars::JsonSchema;
use serde::Deserialize;

use super::aggregate;
use crate::nodes::{PlannedTransform, TransformType};
use crate::operators::keyed::AggregateKind;
use crate::plan::NodeCx;

/// Rolling keyed sum of `field`: emits the record with `field` replaced by the key's total.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sum {
    pub key: String,
    pub field: String,
}

impl TransformType for Sum {
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Option<Box<dyn PlannedTransform>> {
        aggregate::plan(cx, AggregateKind::Sum, &self.key, &self.field)
    }
}
