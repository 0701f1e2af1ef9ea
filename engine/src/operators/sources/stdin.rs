//! The `stdin` source: lines or JSON lines from standard input.
//!
//! A reader thread blocks on standard input and hands lines over through a
//! bounded channel, so the source can pass on what was typed at once and
//! stop when the job is cancelled, whatever standard input does.

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use super::lines::{LineReader, Next};
use super::parse_json_line;
use crate::nodes::sources::stdin::Stdin;
use crate::nodes::sources::InputFormat;
use crate::operators::{IoTarget, OpError, Poll, RecordError, Source};
use crate::value::{Str, Value};

pub struct StdinSource {
    format: InputFormat,
    lines: Receiver<Input>,
    lines_read: u64,
    max_record_bytes: u32,
}

/// What the reader thread hands over.
enum Input {
    Line(Vec<u8>),
    /// A line longer than `max_record_bytes`, not kept.
    TooLong,
    Failed(std::io::Error),
}

impl StdinSource {
    pub fn new(spec: &Stdin) -> StdinSource {
        let (format, max_record_bytes) = (spec.format, spec.max_record_bytes);
        // Lines of up to `max_record_bytes` each: few enough in flight
        // that the channel stays small whatever the limit.
        let (tx, rx) = crossbeam_channel::bounded(256);
        // The thread ends at the end of input, or when the source is gone.
        let _ = std::thread::Builder::new()
            .name("stdin-reader".into())
            .spawn(move || {
                // Bytes, not text: a line that is not UTF-8 is a bad
                // record for `on_error`, not the end of the input.
                let mut input = std::io::stdin().lock();
                let mut reader = LineReader::new(max_record_bytes);
                loop {
                    let next = match reader.next(&mut input) {
                        Ok(Next::Empty) => reader.finish(),
                        Ok(next) => next,
                        Err(e) => {
                            let _ = tx.send(Input::Failed(e));
                            break;
                        }
                    };
                    let sent = match next {
                        Next::Empty => break,
                        Next::Line { .. } => tx.send(Input::Line(reader.line().to_vec())),
                        Next::TooLong => tx.send(Input::TooLong),
                        Next::Skipped { .. } => continue,
                    };
                    if sent.is_err() {
                        break;
                    }
                }
            });
        StdinSource {
            format,
            lines: rx,
            lines_read: 0,
            max_record_bytes,
        }
    }

    fn push(&mut self, input: Input, out: &mut Vec<Value>) -> Result<(), OpError> {
        let line = match input {
            Input::Line(line) => line,
            Input::TooLong => {
                self.lines_read += 1;
                return Err(RecordError(format!(
                    "line {} of standard input is longer than `max_record_bytes` ({} bytes)",
                    self.lines_read, self.max_record_bytes
                ))
                .into());
            }
            Input::Failed(e) => {
                return Err(OpError::Io {
                    action: "read",
                    target: IoTarget::Stdin,
                    source: e,
                })
            }
        };
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
            InputFormat::Json => out.push(parse_json_line(line)?),
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
