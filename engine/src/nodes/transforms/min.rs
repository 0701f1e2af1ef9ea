//! `type: min`: a rolling minimum of one field per key.

use schemars::JsonSchema;
use serde::Deserialize;

use super::aggregate;
use crate::nodes::{PlannedTransform, TransformType};
use crate::operators::keyed::AggregateKind;
use crate::plan::NodeCx;
use crate::spec::Duration;

/// Rolling keyed minimum of `field`: emits the whole record holding the key's smallest `field` so far (the earlier on a tie).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Min {
    pub key: String,
    pub field: String,
    /// Forget a key's state this long after its last record (by the
    /// clock): its next record starts again from nothing.
    #[serde(default)]
    pub ttl: Option<Duration>,
}

impl TransformType for Min {
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Option<Box<dyn PlannedTransform>> {
        aggregate::plan(cx, AggregateKind::Min, &self.key, &self.field, self.ttl)
    }
}
