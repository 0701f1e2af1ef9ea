//! The `sled` backend: state on disk under `state.dir`, so it may exceed memory.
//!
//! One sled database per job run; each keyed operator has its own tree, in
//! which an entry's key is its key group (2 bytes, big-endian) followed by
//! the encoded key, so each key group is one contiguous range: a snapshot
//! or a rescale reads whole key groups with range scans.

use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

use super::{encode_value, Changes, KeyedState, StateError};
use crate::value::Value;

/// The sled database of one job run; removed when the run ends.
pub struct SledStore {
    db: sled::Db,
    dir: PathBuf,
}

impl SledStore {
    /// Opens a fresh database in `dir`, which must not be in use.
    pub fn open(dir: &Path) -> Result<SledStore, StateError> {
        let open_error = |source| StateError::Open {
            dir: dir.display().to_string(),
            source,
        };
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| open_error(sled::Error::Io(e)))?;
        }
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(256 * 1024 * 1024)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(open_error)?;
        Ok(SledStore {
            db,
            dir: dir.to_owned(),
        })
    }

    /// The state of one operator instance; instances of one operator share
    /// a tree, each touching only its own key groups.
    /// `track_changes`: keep the entries changed since the last snapshot
    /// (only jobs that take checkpoints need them).
    pub fn state(&self, namespace: &str, track_changes: bool) -> Result<SledState, StateError> {
        let tree = self
            .db
            .open_tree(namespace)
            .map_err(|source| StateError::Sled {
                namespace: namespace.to_owned(),
                source,
            })?;
        Ok(SledState {
            tree,
            namespace: namespace.to_owned(),
            buf: Vec::new(),
            changed: FxHashMap::default(),
            track_changes,
        })
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        // The working copy is scratch space: checkpoints hold what must survive.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Keyed state of one operator instance in a sled tree.
pub struct SledState {
    tree: sled::Tree,
    namespace: String,
    buf: Vec<u8>,
    /// Entries written since the last snapshot, with their latest value, so
    /// the synchronous part of a snapshot reads nothing from disk.
    /// Keyed by the tree key (key group, then key).
    changed: FxHashMap<Box<[u8]>, Value>,
    track_changes: bool,
}

impl SledState {
    fn sled_error(&self, source: sled::Error) -> StateError {
        StateError::Sled {
            namespace: self.namespace.clone(),
            source,
        }
    }
}

/// The tree key of an entry, built in a reused buffer.
fn entry_key<'a>(buf: &'a mut Vec<u8>, key_group: u16, key: &[u8]) -> &'a [u8] {
    buf.clear();
    buf.extend_from_slice(&key_group.to_be_bytes());
    buf.extend_from_slice(key);
    buf
}

impl KeyedState for SledState {
    fn get(&mut self, key_group: u16, key: &[u8]) -> Result<Option<Value>, StateError> {
        let found = self.tree.get(entry_key(&mut self.buf, key_group, key));
        match found.map_err(|e| self.sled_error(e))? {
            None => Ok(None),
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|source| StateError::Decode {
                        namespace: self.namespace.clone(),
                        source,
                    })
            }
        }
    }

    fn put(&mut self, key_group: u16, key: &[u8], value: Value) -> Result<(), StateError> {
        let bytes = encode_value(&value);
        let entry = entry_key(&mut self.buf, key_group, key);
        let inserted = self.tree.insert(entry, &*bytes);
        if self.track_changes {
            match self.changed.get_mut(entry) {
                Some(slot) => *slot = value,
                None => {
                    self.changed.insert(entry.into(), value);
                }
            }
        }
        inserted.map_err(|e| self.sled_error(e))?;
        Ok(())
    }

    fn take_changes(&mut self) -> Result<Changes, StateError> {
        Ok(std::mem::take(&mut self.changed)
            .into_iter()
            .map(|(entry, value)| {
                (
                    (u16::from_be_bytes([entry[0], entry[1]]), entry[2..].into()),
                    value,
                )
            })
            .collect())
    }
}
