//! The `stdin` source: lines or JSON lines from standard input.
//!
//! A reader thread blocks on standard input and hands lines over through a
//! bounded channel, so the source can pass on what was typed at once and
//! stop when the job is cancelled, whatever standard input does.

use std::io::BufRead;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use super::parse_json_line;
use crate::operators::{OpError, Poll, RecordError, Source};
use crate::spec::InputFormat;
use crate::value::{Str, Value};

pub struct StdinSource {
    format: InputFormat,
    lines: Receiver<std::io::Result<Vec<u8>>>,
    lines_read: u64,
}

impl StdinSource {
    pub fn new(format: InputFormat) -> StdinSource {
        let (tx, rx) = crossbeam_channel::bounded(4096);
        // The thread ends at the end of input, or when the source is gone.
        let _ = std::thread::Builder::new()
            .name("stdin-reader".into())
            .spawn(move || {
                // Bytes, not text: a line that is not UTF-8 is a bad
                // record for `on_error`, not the end of the input.
                let mut input = std::io::stdin().lock();
                loop {
                    let mut line = Vec::new();
                    let line = match input.read_until(b'\n', &mut line) {
                        Ok(0) => break,
                        Ok(_) => Ok(line),
                        Err(e) => Err(e),
                    };
                    let failed = line.is_err();
                    if tx.send(line).is_err() || failed {
                        break;
                    }
                }
            });
        StdinSource {
            format,
            lines: rx,
            lines_read: 0,
        }
    }

    fn push(
        &mut self,
        line: std::io::Result<Vec<u8>>,
        out: &mut Vec<Value>,
    ) -> Result<(), OpError> {
        let line = line.map_err(|e| OpError::Fatal(format!("cannot read standard input: {e}")))?;
        self.lines_read += 1;
        let line = std::str::from_utf8(&line).map_err(|e| {
            RecordError(format!(
                "line {} of standard input is not UTF-8 text ({e})",
                self.lines_read
            ))
        })?;
        let line = super::trim_newline(line);
        match self.format {
            InputFormat::Text => out.push(Value::Str(Str::from(line))),
            InputFormat::Json if line.trim().is_empty() => {}
            InputFormat::Json => out.push(parse_json_line(line).map_err(RecordError)?),
        }
        Ok(())
    }
}

impl Source for StdinSource {
    /// Standard input cannot be replayed; the count of lines read is
    /// recorded for information only.
    fn position(&self) -> serde_json::Value {
        serde_json::json!({ "lines": self.lines_read })
    }

    fn poll(&mut self, out: &mut Vec<Value>, max: usize) -> Result<Poll, OpError> {
        // Records this call adds; `out` may hold earlier ones.
        let start = out.len();
        match self.lines.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => self.push(line, out)?,
            Err(RecvTimeoutError::Timeout) => return Ok(Poll::Idle),
            Err(RecvTimeoutError::Disconnected) => return Ok(Poll::End),
        }
        while out.len() < max {
            match self.lines.try_recv() {
                Ok(line) => self.push(line, out)?,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    return Ok(if out.len() == start {
                        Poll::End
                    } else {
                        Poll::Ready
                    })
                }
            }
        }
        Ok(Poll::Ready)
    }
}
