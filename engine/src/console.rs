//! The terminal a run shares between its status line, its log and the
//! records a `print` sink writes.
//!
//! Colour follows the terminal and <https://no-color.org>. While a status
//! line shows, every other write to the terminal goes through it (the line
//! is taken away, the text written, the line drawn again below), so the
//! line never overwrites a log line or a record and is never left behind in
//! the scrollback.

use std::io::{IsTerminal, Write};
use std::sync::{LazyLock, RwLock};

use indicatif::ProgressBar;

/// The status line being shown, if any.
static STATUS: RwLock<Option<ProgressBar>> = RwLock::new(None);

/// Whether standard output is the terminal the status line is drawn on:
/// only then can a record written to it disturb the line.
static STDOUT_IS_TERMINAL: LazyLock<bool> = LazyLock::new(|| std::io::stdout().is_terminal());

/// Whether to colour what goes to `stream`: only on a terminal, and never
/// when `NO_COLOR` is set to anything but the empty string.
pub fn colour(stream: &impl IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Shows `bar` as the status line: writes through this module go around it
/// until [`hide_status`].
pub(crate) fn show_status(bar: ProgressBar) {
    if let Ok(mut status) = STATUS.write() {
        *status = Some(bar);
    }
}

/// Takes the status line off the terminal for good.
pub(crate) fn hide_status() {
    let bar = STATUS.write().ok().and_then(|mut s| s.take());
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

/// Runs `write` with the status line, if one shows, out of the way.
fn around_status<R>(write: impl FnOnce() -> R) -> R {
    let bar = STATUS.read().ok().and_then(|s| s.clone());
    match bar {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

/// Writes `bytes` to standard output in one piece, around the status line
/// when both are on the same terminal.
pub fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let write = || {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes).and_then(|()| out.flush())
    };
    if *STDOUT_IS_TERMINAL {
        around_status(write)
    } else {
        write()
    }
}

/// Where log lines go: standard error, around the status line.
#[derive(Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    /// The log formats each event in full before one write, so each line
    /// goes out whole.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        around_status(|| std::io::stderr().lock().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        *self
    }
}
