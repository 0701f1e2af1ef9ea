//! `type: blackhole`: counts records and drops them.

use schemars::JsonSchema;
use serde::Deserialize;

use super::check_latency_field;
use crate::nodes::{Delivery, Instance, PlannedSink, SinkType};
use crate::operators::sinks::blackhole::BlackholeSink;
use crate::operators::{OpError, Sink};
use crate::plan::NodeCx;

/// Counts records and discards them (for benchmarks).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Blackhole {
    /// Measures the time from source to sink of each record from this
    /// integer field (microseconds since the Unix epoch, as a
    /// `generate` source's `time_field` writes); the run's summary
    /// reports its percentiles.
    #[serde(default)]
    pub latency_field: Option<String>,
}

impl SinkType for Blackhole {
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Box<dyn PlannedSink> {
        check_latency_field(cx, self.latency_field.as_deref());
        Box::new(self.clone())
    }
}

impl PlannedSink for Blackhole {
    fn delivery(&self) -> Delivery {
        Delivery::Discards
    }

    fn latency_field(&self) -> Option<&str> {
        self.latency_field.as_deref()
    }

    fn build(&self, _: Instance, _: bool) -> Result<Box<dyn Sink>, OpError> {
        Ok(Box::new(BlackholeSink))
    }
}
