//! Sources: file, socket, generate and stdin.
//!
//! A source never blocks for long: where it must wait (a file to grow, a
//! rate limit, a reconnect backoff) it waits on the job's
//! [`Cancel`](crate::runtime::cancel::Cancel) token, so a cancelled job
//! stops at once.

pub mod file;
pub mod generate;
pub mod lines;
pub mod socket;
pub mod stdin;

/// Parses one line of a `json` source.
pub fn parse_json_line(line: &str) -> Result<crate::value::Value, String> {
    serde_json::from_str(line).map_err(|e| format!("a line is not JSON ({e}): {}", shorten(line)))
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
