//! `type: file`: lines or JSON lines from files.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{check_max_record_bytes, default_max_record_bytes, InputFormat};
use crate::diag::Diagnostic;
use crate::nodes::{Instance, PlannedSource, SourceType};
use crate::operators::sources::file::FileSource;
use crate::operators::{OpError, Source};
use crate::plan::NodeCx;
use crate::runtime::cancel::Cancel;

/// Lines or JSON lines from files.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// A file path or a glob pattern (`logs/*.txt`).
    pub path: String,
    #[serde(default)]
    pub format: InputFormat,
    /// Keep reading as the file grows, like `tail -f`.
    #[serde(default)]
    pub follow: bool,
    /// The longest line kept, in bytes, its line ending aside; a longer
    /// one is a bad record for `on_error`, read past without being kept.
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: u32,
}

impl SourceType for File {
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Box<dyn PlannedSource> {
        check_max_record_bytes(cx, self.max_record_bytes);
        let (name, path) = (cx.name().to_owned(), &self.path);
        if path.is_empty() {
            let d = Diagnostic::error(
                "invalid-path",
                format!("source `{name}` has an empty `path`"),
            )
            .at(cx.span("path"), "empty");
            cx.error(d);
        } else if let Err(e) = glob::Pattern::new(path) {
            let d = Diagnostic::error(
                "invalid-glob",
                format!(
                    "invalid glob pattern `{path}` in source `{name}`: {}",
                    e.msg
                ),
            )
            .at(cx.span("path"), "bad pattern");
            cx.error(d);
        }
        Box::new(self.clone())
    }
}

impl PlannedSource for File {
    /// A checkpoint records the files done and the offset in the one
    /// being read.
    fn replayable(&self) -> bool {
        true
    }

    fn build(&self, at: Instance, cancel: &Cancel) -> Result<Box<dyn Source>, OpError> {
        Ok(Box::new(FileSource::open(self, at, cancel.clone())?))
    }
}
