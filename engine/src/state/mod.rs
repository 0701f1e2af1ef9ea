//! Keyed state: where keyed operators keep a value per key.
//!
//! State is addressed by (key group, key) inside one operator's namespace:
//! the key group (a stable hash of the key, modulo `max_parallelism`) is what
//! lets checkpoints split state so it can be restored at another
//! parallelism, as Flink does. Two backends implement [`KeyedState`]:
//! [`memory`] (a hash map) and [`sled`] (on disk, for state larger than memory).

mod key;
pub mod memory;
pub mod sled;

pub use key::{encode_key, key_group, owner, KeyGroupRange};

use crate::value::Value;

/// Why the state backend failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot open the sled state in `{dir}`: {source}")]
    Open { dir: String, source: ::sled::Error },
    #[error("sled state of `{namespace}`: {source}")]
    Sled {
        namespace: String,
        source: ::sled::Error,
    },
    #[error("state of `{namespace}` holds a damaged value: {source}")]
    Decode {
        namespace: String,
        source: serde_json::Error,
    },
}

/// The state of one instance of one keyed operator.
///
/// `key` is the encoded key ([`encode_key`]) and `key_group` its group;
/// an instance only ever sees keys of the key groups it owns.
pub trait KeyedState: Send {
    /// The value stored for `key`, if any.
    fn get(&mut self, key_group: u16, key: &[u8]) -> Result<Option<Value>, StateError>;
    /// Stores `value` for `key`.
    fn put(&mut self, key_group: u16, key: &[u8], value: Value) -> Result<(), StateError>;
    /// The synchronous part of a snapshot: every entry changed since the
    /// last call, with its value encoded. Costs time in the number of
    /// changed keys, not in the size of the state.
    fn take_changes(&mut self) -> Result<Changes, StateError>;
}

/// Changed entries: ((key group, encoded key), value). Values are encoded
/// by the uploader, off the operator's thread.
pub type Changes = Vec<((u16, Box<[u8]>), Value)>;

/// The encoding of values in snapshots (and in sled).
pub fn encode_value(value: &Value) -> Box<[u8]> {
    value.to_json().into_bytes().into_boxed_slice()
}
