//! What travels on the channels between instances.

use crate::time::Watermark;
use crate::value::Value;

/// One message on a channel. Records always move in batches; control
/// messages (end of input, and checkpoint barriers) travel in the same
/// channel, so they stay in order with the records around them.
#[derive(Debug)]
pub enum Message {
    /// Records, and each one's event time when the records carry them
    /// (empty when they do not).
    Batch(Vec<Value>, Vec<i64>),
    /// Checkpoint barrier N: everything before it belongs to checkpoint N.
    Barrier(u64),
    /// Event time: no record older than this is still to come from the
    /// sender, or it is idle.
    Watermark(Watermark),
    /// The sending instance will send nothing more.
    End,
}
