//! `type: stdin`: lines or JSON lines from standard input.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{check_max_record_bytes, default_max_record_bytes, InputFormat};
use crate::nodes::{Instance, PlannedSource, SourceType};
use crate::operators::sources::stdin::StdinSource;
use crate::operators::{OpError, Source};
use crate::plan::NodeCx;
use crate::runtime::cancel::Cancel;

/// Lines or JSON lines from standard input.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stdin {
    #[serde(default)]
    pub format: InputFormat,
    /// The longest line kept, in bytes, its line ending aside; a longer
    /// one is a bad record for `on_error`, read past without being kept.
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: u32,
}

impl SourceType for Stdin {
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Box<dyn PlannedSource> {
        cx.single_instance("stdin");
        check_max_record_bytes(cx, self.max_record_bytes);
        Box::new(self.clone())
    }
}

impl PlannedSource for Stdin {
    /// What was read from a pipe cannot be asked for again.
    fn replayable(&self) -> bool {
        false
    }

    fn build(&self, _: Instance, _: &Cancel) -> Result<Box<dyn Source>, OpError> {
        Ok(Box::new(StdinSource::new(self)))
    }
}
