//! The `blackhole` sink: discards records (the runtime counts them).

use crate::operators::{Sink, SinkError};
use crate::value::Value;

pub struct BlackholeSink;

impl Sink for BlackholeSink {
    fn write(&mut self, _batch: &[Value]) -> Result<(), SinkError> {
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}
