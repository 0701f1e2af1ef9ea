//! Sources: file, socket, generate and stdin.
//!
//! A source never blocks for long: where it must wait (a file to grow, a
//! rate limit, a reconnect backoff) it waits on its [`Cancel`] token, so a
//! cancelled job stops at once.

pub mod file;
pub mod generate;
pub mod lines;
pub mod socket;
pub mod stdin;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

/// The job's cancellation signal, cheap to check and possible to wait on.
///
/// The flag is read on every batch. For waits, the job holds the sending
/// side of a channel on which nothing is ever sent; dropping it on
/// cancellation disconnects every receiver, which wakes every waiter at once.
#[derive(Clone)]
pub struct Cancel {
    flag: Arc<AtomicBool>,
    wake: Receiver<()>,
}

/// The job's side of a [`Cancel`]: cancels every token made from it.
pub struct Canceller {
    flag: Arc<AtomicBool>,
    wake: Mutex<Option<Sender<()>>>,
    token: Cancel,
}

impl Canceller {
    pub fn new() -> Canceller {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let flag = Arc::new(AtomicBool::new(false));
        Canceller {
            token: Cancel {
                flag: Arc::clone(&flag),
                wake: rx,
            },
            flag,
            wake: Mutex::new(Some(tx)),
        }
    }

    pub fn token(&self) -> Cancel {
        self.token.clone()
    }

    pub fn cancel(&self) {
        self.flag.store(true, Ordering::Relaxed);
        if let Ok(mut wake) = self.wake.lock() {
            wake.take();
        }
    }
}

impl Default for Canceller {
    fn default() -> Self {
        Canceller::new()
    }
}

impl Cancel {
    /// Waits up to `timeout`; returns true if the job was cancelled.
    pub fn wait(&self, timeout: Duration) -> bool {
        matches!(
            self.wake.recv_timeout(timeout),
            Err(RecvTimeoutError::Disconnected)
        ) || self.is_cancelled()
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}

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
