//! The `print` sink: one JSON line per record on standard output,
//! prefixed as Flink's `print(identifier)` does: `id> `, `id:i> ` from
//! instance `i` of several, `i> ` with no identifier.

use std::io::ErrorKind;

use crate::operators::{IoTarget, Sink, SinkError};
use crate::value::Value;

pub struct PrintSink {
    prefix: String,
    buf: String,
}

impl PrintSink {
    pub fn new(identifier: &str, instance: u32, parallelism: u32) -> PrintSink {
        let prefix = match (identifier, parallelism > 1) {
            ("", false) => String::new(),
            ("", true) => format!("{}> ", instance + 1),
            (id, false) => format!("{id}> "),
            (id, true) => format!("{id}:{}> ", instance + 1),
        };
        PrintSink {
            prefix,
            buf: String::new(),
        }
    }
}

impl Sink for PrintSink {
    fn write(&mut self, batch: &[Value]) -> Result<(), SinkError> {
        self.buf.clear();
        for record in batch {
            self.buf.push_str(&self.prefix);
            self.buf.push_str(&record.to_json());
            self.buf.push('\n');
        }
        // One write per batch: stdout's lock is taken once, not per record.
        crate::console::write_stdout(self.buf.as_bytes()).map_err(|e| match e.kind() {
            ErrorKind::BrokenPipe => SinkError::Closed,
            _ => SinkError::Io {
                action: "write to",
                target: IoTarget::Stdout,
                source: e,
            },
        })
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}
