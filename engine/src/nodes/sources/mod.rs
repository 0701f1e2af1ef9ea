//! Source types: where records come from.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SourceType;
use crate::plan::NodeCx;

registry! {
    /// Sources: where records come from.
    #[schemars(transform = crate::spec::schema::add_source_common)]
    SourceKind: SourceType {
        socket::Socket = "socket",
        file::File = "file",
        generate::Generate = "generate",
        stdin::Stdin = "stdin",
        kafka::Kafka = "kafka",
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    /// Each line is a string record.
    #[default]
    Text,
    /// Each line is a JSON value.
    Json,
}

/// The largest `max_record_bytes`: a record is held whole, and so are
/// the words it splits into.
const MAX_RECORD_BYTES: u64 = 1 << 30;

/// 1 MiB, as Kafka's default largest message: far above a log line, far
/// below what exhausts memory once split.
fn default_max_record_bytes() -> u32 {
    1 << 20
}

/// The check of `max_record_bytes`, for the sources that read lines.
fn check_max_record_bytes(cx: &mut NodeCx<'_, '_>, value: u32) {
    cx.in_range("max_record_bytes", u64::from(value), MAX_RECORD_BYTES);
}
