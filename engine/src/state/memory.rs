//! The `memory` backend: a hash map per operator instance. Fastest; bounded by RAM.

use rustc_hash::FxHashMap;

use super::{Changes, KeyedState, StateError};
use crate::value::Value;

struct Slot {
    value: Value,
    /// Changed since the last snapshot, and so listed in `dirty`.
    dirty: bool,
}

/// Keyed state in a hash map from encoded key to value.
#[derive(Default)]
pub struct MemoryState {
    map: FxHashMap<Box<[u8]>, Slot>,
    /// Keys changed since the last snapshot, each once.
    dirty: Vec<(u16, Box<[u8]>)>,
    /// Whether to keep `dirty` (only jobs that take checkpoints need it).
    track_changes: bool,
}

impl MemoryState {
    pub fn new(track_changes: bool) -> MemoryState {
        MemoryState {
            track_changes,
            ..MemoryState::default()
        }
    }
}

impl KeyedState for MemoryState {
    fn get(&mut self, _key_group: u16, key: &[u8]) -> Result<Option<Value>, StateError> {
        Ok(self.map.get(key).map(|s| s.value.clone()))
    }

    fn put(&mut self, key_group: u16, key: &[u8], value: Value) -> Result<(), StateError> {
        // Look up by the borrowed key first: the key is copied only when new.
        match self.map.get_mut(key) {
            Some(slot) => {
                slot.value = value;
                if !slot.dirty && self.track_changes {
                    slot.dirty = true;
                    self.dirty.push((key_group, key.into()));
                }
            }
            None => {
                self.map.insert(
                    key.into(),
                    Slot {
                        value,
                        dirty: self.track_changes,
                    },
                );
                if self.track_changes {
                    self.dirty.push((key_group, key.into()));
                }
            }
        }
        Ok(())
    }

    fn take_changes(&mut self) -> Result<Changes, StateError> {
        let mut changes = Vec::with_capacity(self.dirty.len());
        for (kg, key) in self.dirty.drain(..) {
            if let Some(slot) = self.map.get_mut(&key) {
                slot.dirty = false;
                changes.push(((kg, key), slot.value.clone()));
            }
        }
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_list_each_changed_key_once_with_its_latest_value() {
        let mut s = MemoryState::new(true);
        s.put(1, b"a", Value::Int(1)).unwrap();
        s.put(1, b"a", Value::Int(2)).unwrap();
        s.put(2, b"b", Value::Int(5)).unwrap();
        let changes = s.take_changes().unwrap();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].1, Value::Int(2));
        assert!(s.take_changes().unwrap().is_empty());
        s.put(2, b"b", Value::Int(6)).unwrap();
        assert_eq!(s.take_changes().unwrap().len(), 1);
    }
}
