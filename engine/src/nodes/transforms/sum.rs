//! `type: sum`: a rolling sum of one field per key.

use schemars::JsonSchema;
use serde::Deserialize;

use super::aggregate;
use crate::nodes::{PlannedTransform, TransformType};
use crate::operators::keyed::AggregateKind;
use crate::plan::NodeCx;
use crate::spec::Duration;

/// Rolling keyed sum of `field`: emits the record with `field` replaced by the key's total.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sum {
    pub key: String,
    pub field: String,
    /// Forget a key's state this long after its last record (by the
    /// clock): its next record starts again from nothing.
    #[serde(default)]
    pub ttl: Option<Duration>,
}

impl TransformType for Sum {
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Option<Box<dyn PlannedTransform>> {
        aggregate::plan(cx, AggregateKind::Sum, &self.key, &self.field, self.ttl)
    }
}
