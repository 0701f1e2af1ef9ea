//! Sources: file, socket, generate, stdin and Kafka.
//!
//! A source never blocks for long: where it must wait (a file to grow, a
//! rate limit, a reconnect backoff) it waits on the job's
//! [`Cancel`](crate::runtime::cancel::Cancel) token, so a cancelled job
//! stops at once.

pub mod file;
pub mod generate;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod lines;
pub mod socket;
pub mod stdin;

use super::RecordError;

/// Parses one line of a `json` source.
pub fn parse_json_line(line: &str) -> Result<crate::value::Value, RecordError> {
    serde_json::from_str(line)
        .map_err(|e| RecordError(format!("a line is not JSON ({e}): {}", shorten(line))))
}

/// A source's position in a checkpoint that no run could have recorded:
/// the checkpoint is damaged, and reading from anywhere else would skip or
/// repeat records.
#[derive(Debug, thiserror::Error)]
pub enum PositionError {
    #[error("the checkpoint's file position is damaged: {why}: {position}")]
    Shape { why: &'static str, position: String },
    #[error("the checkpoint's position in `{path}` is damaged: offset {offset} is past its end ({len} bytes)")]
    PastEnd { path: String, offset: u64, len: u64 },
    #[error("the checkpoint's position in `{path}` is damaged: offset {offset} is not at the start of a line")]
    MidLine { path: String, offset: u64 },
    #[error("a `generate` source cannot change parallelism on restore: the checkpoint has {found} instances, the spec {now}")]
    Rescaled { found: usize, now: u64 },
}

/// A line cut to a length that fits in an error message.
pub fn shorten(line: &str) -> String {
    const MAX: usize = 80;
    match line.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_owned(),
    }
}

/// Strips a trailing `\n` or `\r\n`.
pub fn trim_newline(line: &str) -> &str {
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r').unwrap_or(line)
}
