//! `type: generate`: deterministic test data.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::diag::Diagnostic;
use crate::nodes::{Instance, PlannedSource, RescaleRefused, SourceType};
use crate::operators::sources::generate::GenerateSource;
use crate::operators::{OpError, Source};
use crate::plan::NodeCx;
use crate::runtime::cancel::Cancel;

/// The largest vocabulary, which is built in memory.
const MAX_VOCABULARY: u64 = 10_000_000;
/// The most words a line may have.
const MAX_WORDS_PER_LINE: u64 = 10_000;

/// Deterministic test data: the same seed always gives the same records.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Generate {
    #[serde(default)]
    pub seed: u64,
    /// Records to produce; absent = unbounded.
    #[serde(default)]
    pub count: Option<u64>,
    /// Records per second; absent = as fast as possible.
    #[serde(default)]
    pub rate: Option<u64>,
    /// `records` gives `{"seq": n, "value": <int>}`; `lines` gives text
    /// lines of comma-separated words drawn from a Zipf distribution.
    #[serde(default)]
    pub mode: GenerateMode,
    /// Words per line, with `mode: lines`.
    #[serde(default = "default_words_per_line")]
    pub words_per_line: u32,
    /// Distinct words, with `mode: lines`.
    #[serde(default = "default_vocabulary")]
    pub vocabulary: u32,
    /// With `mode: records`, adds this field to each record: its source
    /// time, in microseconds since the Unix epoch (with `rate`, the time
    /// the record was due), for a sink's `latency_field`.
    #[serde(default)]
    pub time_field: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GenerateMode {
    #[default]
    Records,
    Lines,
}

fn default_words_per_line() -> u32 {
    8
}

fn default_vocabulary() -> u32 {
    1000
}

impl SourceType for Generate {
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Box<dyn PlannedSource> {
        if let Some(field) = &self.time_field {
            self.check_time_field(cx, field);
        }
        for (field, value, max) in [
            ("rate", self.rate.unwrap_or(1), u64::MAX),
            (
                "words_per_line",
                u64::from(self.words_per_line),
                MAX_WORDS_PER_LINE,
            ),
            ("vocabulary", u64::from(self.vocabulary), MAX_VOCABULARY),
        ] {
            cx.in_range(field, value, max);
        }
        Box::new(self.clone())
    }
}

impl Generate {
    /// `time_field`: a plain field name, other than the record's own, on
    /// records that have fields.
    fn check_time_field(&self, cx: &mut NodeCx<'_, '_>, field: &str) {
        let name = cx.name().to_owned();
        let at = cx.span("time_field");
        let d = if self.mode == GenerateMode::Lines {
            Diagnostic::error(
                "invalid-value",
                format!("source `{name}` has a `time_field`, but with `mode: lines` its records are strings, which have no fields"),
            )
            .at(at, "needs `mode: records`")
            .help("remove `time_field`, or generate `mode: records` (maps `{seq, value}`) to carry a source time")
        } else if !crate::plan::is_field_name(field) {
            Diagnostic::error(
                "invalid-field",
                format!("`time_field` of source `{name}` must be a field name, not `{field}`"),
            )
            .at(at, "expected a field name such as `ts`")
        } else if field == "seq" || field == "value" {
            Diagnostic::error(
                "invalid-field",
                format!("`time_field` of source `{name}` cannot be `{field}`: the generated records have that field already"),
            )
            .at(at, "taken")
            .help("name it something else, such as `ts`")
        } else {
            return;
        };
        cx.error(d);
    }
}

impl PlannedSource for Generate {
    /// Record `n` is a function of the seed and `n`.
    fn replayable(&self) -> bool {
        true
    }

    /// Instance `i` of `p` makes the sequence numbers `n ≡ i (mod p)`: a
    /// position of one instance means nothing at another parallelism.
    fn rescale(&self, from: u32, to: u32) -> Result<(), RescaleRefused> {
        if from == to {
            Ok(())
        } else {
            Err(RescaleRefused {
                node_type: "generate",
                from,
                to,
            })
        }
    }

    fn build(&self, at: Instance, cancel: &Cancel) -> Result<Box<dyn Source>, OpError> {
        Ok(Box::new(GenerateSource::new(self, at, cancel.clone())))
    }
}
