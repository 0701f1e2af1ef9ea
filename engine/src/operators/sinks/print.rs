//! The `print` sink: one JSON line per record on standard output,
//! prefixed `i> ` when the sink runs as several instances (as Flink's print).

use std::io::{ErrorKind, Write};

use crate::operators::{Sink, SinkError};
use crate::value::Value;

pub struct PrintSink {
    prefix: String,
    buf: String,
}

impl PrintSink {
    pub fn new(instance: u32, parallelism: u32) -> PrintSink {
        let prefix = if parallelism > 1 {
            format!("{}> ", instance + 1)
        } else {
            String::new()
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
        let mut out = std::io::stdout().lock();
        out.write_all(self.buf.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| match e.kind() {
                ErrorKind::BrokenPipe => SinkError::Closed,
                _ => SinkError::Io(format!("cannot write to standard output: {e}")),
            })
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}
