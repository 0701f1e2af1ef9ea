//! What travels on the channels between instances.

use crate::value::Value;

/// One message on a channel. Records always move in batches; control
/// messages (end of input, and checkpoint barriers) travel in the same
/// channel, so they stay in order with the records around them.
#[derive(Debug)]
pub enum Message {
    Batch(Vec<Value>),
    /// Checkpoint barrier N: everything before it belongs to checkpoint N.
    Barrier(u64),
    /// The sending instance will send nothing more.
    End,
}
