//! `type: file`: part files in a folder, committed with checkpoints.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::check_latency_field;
use crate::diag::Diagnostic;
use crate::nodes::{Delivery, Instance, PlannedSink, SinkType};
use crate::operators::sinks::file::FileSink;
use crate::operators::{OpError, Sink};
use crate::plan::NodeCx;

/// Part files `part-<instance>-<n>.<ext>` in the folder `path`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub path: String,
    #[serde(default)]
    pub format: OutputFormat,
    /// Measures the time from source to sink of each record from this
    /// integer field (microseconds since the Unix epoch, as a
    /// `generate` source's `time_field` writes); the run's summary
    /// reports its percentiles.
    #[serde(default)]
    pub latency_field: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// One JSON value per line.
    #[default]
    Json,
    /// Strings as they are, other values as JSON, one per line.
    Text,
    /// Maps as comma-separated field values, one record per line.
    Csv,
}

impl SinkType for File {
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Box<dyn PlannedSink> {
        check_latency_field(cx, self.latency_field.as_deref());
        if self.path.is_empty() {
            let name = cx.name();
            let d = Diagnostic::error("invalid-path", format!("sink `{name}` has an empty `path`"))
                .at(cx.span("path"), "empty");
            cx.error(d);
        }
        Box::new(self.clone())
    }
}

impl PlannedSink for File {
    fn delivery(&self) -> Delivery {
        Delivery::TwoPhaseCommit
    }

    fn latency_field(&self) -> Option<&str> {
        self.latency_field.as_deref()
    }

    fn committed_folder(&self) -> Option<&Path> {
        Some(Path::new(&self.path))
    }

    fn build(&self, at: Instance, transactional: bool) -> Result<Box<dyn Sink>, OpError> {
        let sink = FileSink::open(Path::new(&self.path), self.format, at.index, transactional)?;
        Ok(Box::new(sink))
    }
}
