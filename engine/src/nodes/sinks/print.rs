//! `type: print`: one JSON line per record on standard output.

use schemars::JsonSchema;
use serde::Deserialize;

use super::check_latency_field;
use crate::nodes::{Delivery, Instance, PlannedSink, SinkKind, SinkType};
use crate::operators::sinks::print::PrintSink;
use crate::operators::{OpError, Sink};
use crate::plan::NodeCx;

/// One JSON line per record on standard output.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Print {
    /// Written before each line, as Flink's `print(identifier)` does:
    /// `errors> {…}`, or `errors:2> {…}` from the second of several
    /// instances. Defaults to the sink's name when the spec has more
    /// than one `print` sink, and to nothing when it has one; `""`
    /// turns it off.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Measures the time from source to sink of each record from this
    /// integer field (microseconds since the Unix epoch, as a
    /// `generate` source's `time_field` writes); the run's summary
    /// reports its percentiles.
    #[serde(default)]
    pub latency_field: Option<String>,
}

impl SinkType for Print {
    /// Fills in the default prefix, which depends on the other sinks.
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Box<dyn PlannedSink> {
        check_latency_field(cx, self.latency_field.as_deref());
        let several = cx
            .spec()
            .sinks
            .values()
            .filter(|n| matches!(n.kind, SinkKind::Print(_)))
            .count()
            > 1;
        let prefix = match &self.prefix {
            Some(p) => p.clone(),
            None if several => cx.name().to_owned(),
            None => String::new(),
        };
        Box::new(Print {
            prefix: Some(prefix),
            latency_field: self.latency_field.clone(),
        })
    }
}

impl PlannedSink for Print {
    fn delivery(&self) -> Delivery {
        Delivery::AtLeastOnce
    }

    fn latency_field(&self) -> Option<&str> {
        self.latency_field.as_deref()
    }

    fn build(&self, at: Instance, _: bool) -> Result<Box<dyn Sink>, OpError> {
        let prefix = self.prefix.as_deref().unwrap_or("");
        Ok(Box::new(PrintSink::new(prefix, at.index, at.parallelism)))
    }
}
