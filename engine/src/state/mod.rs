//! Keyed state: where keyed operators keep a value per key.
//!
//! State is addressed by (key group, key) inside one operator's namespace:
//! the key group (a stable hash of the key, modulo `max_parallelism`) is what
//! lets checkpoints split state so it can be restored at another
//! parallelism, as Flink does. Two backends implement [`KeyedState`]:
//! [`memory`] (a hash table) and [`sled`] (on disk, for state larger than
//! memory, behind a cache of hot keys). Keyed operators read and change a
//! value on every record, so the trait's one per-record call finds the key
//! once and hands out the value to change in place.

pub mod codec;
mod key;
pub mod memory;
pub mod sled;
mod stored_key;
pub(crate) use stored_key::StoredKey;

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
    #[error("internal error: a snapshot began before the one before it was copied")]
    SnapshotPending,
    #[error("state of `{namespace}` holds a damaged value: {source}")]
    Decode {
        namespace: String,
        source: serde_json::Error,
    },
}

impl crate::error::Classify for StateError {
    fn class(&self) -> crate::error::Class {
        use crate::error::Class;
        match self {
            StateError::Open { source, .. } | StateError::Sled { source, .. } => match source {
                ::sled::Error::Io(e) => crate::error::io_class(e),
                ::sled::Error::ReportableBug(_) => Class::Bug,
                _ => Class::External,
            },
            StateError::Decode { .. } => Class::External,
            StateError::SnapshotPending => Class::Bug,
        }
    }
}

/// The state of one instance of one keyed operator.
///
/// `key` is the encoded key ([`encode_key`]) and `key_group` its group;
/// an instance only ever sees keys of the key groups it owns.
pub trait KeyedState: Send {
    /// The value of `key`, for the caller to read and change in place: a
    /// read-modify-write looks the key up once, and copies it only when it
    /// is new.
    ///
    /// `None` means the key has no value; left `None`, nothing is stored.
    /// The key counts as changed (it is in the next
    /// [`take_changes`](KeyedState::take_changes)) whether or not the caller
    /// changes it, since keyed operators change their key's value on every
    /// record. Putting `None` back removes the value, as
    /// [`remove`](KeyedState::remove) does.
    fn value_mut(&mut self, key_group: u16, key: &[u8]) -> Result<&mut Option<Value>, StateError>;
    /// The value of `key`, to read only. Unlike
    /// [`value_mut`](KeyedState::value_mut), a backend may not count the
    /// key as changed (the memory backend does not).
    fn get(&mut self, key_group: u16, key: &[u8]) -> Result<Option<&Value>, StateError> {
        Ok(self.value_mut(key_group, key)?.as_ref())
    }
    /// Removes the value of `key`: the next snapshot records its removal
    /// (a tombstone), so that a restore from an incremental chain does
    /// not bring it back. What a fired window or an expired join entry
    /// leaves behind. Gives the value it had.
    fn remove(&mut self, key_group: u16, key: &[u8]) -> Result<Option<Value>, StateError>;
    /// The synchronous part of a snapshot: every entry changed since the
    /// last call, with its value. Costs time in the number of changed keys,
    /// not in the size of the state.
    fn take_changes(&mut self) -> Result<Changes, StateError>;

    /// The synchronous part of a snapshot that may defer copying: `Some`
    /// when the changes were taken at once (as [`take_changes`]), `None`
    /// when only the set of changed keys was frozen and their values come
    /// from [`copy_changes`] between records, so the operator's thread is
    /// not held for a time that grows with the number of changes.
    ///
    /// [`take_changes`]: KeyedState::take_changes
    /// [`copy_changes`]: KeyedState::copy_changes
    fn begin_snapshot(&mut self) -> Result<Option<Changes>, StateError> {
        self.take_changes().map(Some)
    }

    /// Copies up to `budget` frozen entries of the snapshot begun last
    /// (which must be complete before the next begins);
    /// the whole snapshot once every one is copied. Entries changed in the
    /// meantime were copied, as they were at the snapshot, before changing.
    fn copy_changes(&mut self, _budget: usize) -> Result<Option<Changes>, StateError> {
        Ok(Some(Changes::new()))
    }
}

/// Changed entries: ((key group, encoded key), value), `None` for a
/// removed one. Values are encoded by the uploader, off the operator's
/// thread.
pub type Changes = Vec<((u16, Box<[u8]>), Option<Value>)>;
