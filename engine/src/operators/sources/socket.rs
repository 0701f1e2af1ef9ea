//! The `socket` source: text lines from a TCP server, like Flink's
//! socketTextStream. A closed connection ends the stream, unless
//! `reconnect` is set, in which case it reconnects with backoff.

use std::io::{BufReader, ErrorKind};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::lines::{LineReader, Next};
use super::trim_newline;
use crate::nodes::sources::socket::Socket;
use crate::operators::{OpError, Poll, RecordError, Source};
use crate::runtime::cancel::Cancel;

use crate::value::{Str, Value};

/// How long a read waits before the source checks for cancellation and
/// lets partial batches go out.
const READ_TIMEOUT: Duration = Duration::from_millis(50);

pub struct SocketSource {
    address: String,
    reconnect: bool,
    reader: Option<BufReader<TcpStream>>,
    backoff: Duration,
    cancel: Cancel,
    /// The current line, held across reads until its newline arrives.
    pending: LineReader,
    max_record_bytes: u32,
    lines: u64,
}

/// How a socket source lost its connection.
#[derive(Debug, thiserror::Error)]
pub enum Lost {
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("{address} closed the connection")]
    Closed { address: String },
    #[error("reading from {address} failed: {source}")]
    Read {
        address: String,
        source: std::io::Error,
    },
}

impl SocketSource {
    pub fn new(spec: &Socket, cancel: Cancel) -> SocketSource {
        let max_record_bytes = spec.max_record_bytes;
        SocketSource {
            address: spec.address.clone(),
            reconnect: spec.reconnect,
            reader: None,
            backoff: Duration::from_millis(100),
            cancel,
            pending: LineReader::new(max_record_bytes),
            max_record_bytes,
            lines: 0,
        }
    }

    fn connect(&self) -> std::io::Result<TcpStream> {
        let addr = self.address.to_socket_addrs()?.next().ok_or_else(|| {
            std::io::Error::new(ErrorKind::NotFound, "the address resolves to nothing")
        })?;
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        Ok(stream)
    }

    /// Handles a connection that failed or closed: ends the stream, or
    /// waits out the backoff before the next attempt.
    fn lost(&mut self, why: Lost) -> Result<Poll, OpError> {
        self.reader = None;
        self.pending.forget();
        if !self.reconnect {
            return Err(OpError::Connection(why));
        }
        tracing::warn!("{why}; reconnecting in {:?}", self.backoff);
        if self.cancel.wait(self.backoff) {
            return Ok(Poll::End);
        }
        self.backoff = (self.backoff * 2).min(Duration::from_secs(5));
        Ok(Poll::Idle)
    }
}

impl SocketSource {
    fn too_long(&self) -> OpError {
        RecordError(format!(
            "line {} from {} is longer than `max_record_bytes` ({} bytes)",
            self.lines + 1,
            self.address,
            self.max_record_bytes
        ))
        .into()
    }
}

impl Source for SocketSource {
    /// A socket cannot be replayed; the count of lines read is recorded for
    /// information only.
    fn position(&self) -> serde_json::Value {
        serde_json::json!({ "lines": self.lines })
    }

    fn poll(&mut self, out: &mut Vec<Value>, max: usize) -> Result<Poll, OpError> {
        // Records this call adds; `out` may hold earlier ones.
        let start = out.len();
        if self.cancel.is_cancelled() {
            return Ok(Poll::End);
        }
        if self.reader.is_none() {
            match self.connect() {
                Ok(stream) => {
                    self.backoff = Duration::from_millis(100);
                    self.reader = Some(BufReader::with_capacity(256 * 1024, stream));
                }
                Err(e) => {
                    return self.lost(Lost::Connect {
                        address: self.address.clone(),
                        source: e,
                    })
                }
            }
        }
        let Some(reader) = self.reader.as_mut() else {
            return Ok(Poll::Idle);
        };
        while out.len() < max {
            match self.pending.next(reader) {
                Ok(Next::Empty) => {
                    // The server closed the connection: a last line without a newline still counts.
                    match self.pending.finish() {
                        Next::Line { .. } => {
                            let line = String::from_utf8_lossy(self.pending.line()).into_owned();
                            out.push(Value::Str(Str::from(line)));
                            self.lines += 1;
                        }
                        Next::TooLong => return Err(self.too_long()),
                        Next::Skipped { .. } | Next::Empty => {}
                    }
                    if !self.reconnect {
                        return Ok(if out.len() == start {
                            Poll::End
                        } else {
                            Poll::Ready
                        });
                    }
                    return self
                        .lost(Lost::Closed {
                            address: self.address.clone(),
                        })
                        .map(|p| if out.len() == start { p } else { Poll::Ready });
                }
                Ok(Next::Line { .. }) => {
                    let line = String::from_utf8_lossy(self.pending.line());
                    out.push(Value::Str(Str::from(trim_newline(&line))));
                    self.lines += 1;
                }
                // A bad record for `on_error`; the next poll reads past it.
                Ok(Next::TooLong) => return Err(self.too_long()),
                Ok(Next::Skipped { .. }) => self.lines += 1,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(if out.len() == start {
                        Poll::Idle
                    } else {
                        Poll::Ready
                    });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    return self.lost(Lost::Read {
                        address: self.address.clone(),
                        source: e,
                    })
                }
            }
        }
        Ok(Poll::Ready)
    }
}
