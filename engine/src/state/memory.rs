//! The `memory` backend: a hash table per operator instance. Fastest; bounded by RAM.

use hashbrown::hash_table::{Entry as TableEntry, HashTable};

use super::stored_key::{key_hash, StoredKey};
use super::{Changes, KeyedState, StateError};
use crate::value::Value;

struct Entry {
    key: StoredKey,
    key_group: u16,
    /// In `changed`, so that a key changed many times is listed once.
    listed: bool,
    value: Option<Value>,
}

/// Keyed state in a hash table from encoded key to value. The key group
/// is not part of the table's key: it follows from the key.
#[derive(Default)]
pub struct MemoryState {
    entries: HashTable<Entry>,
    /// Keys changed since the last snapshot, each once. A key is copied
    /// here once per snapshot at most, and moved into the snapshot's changes.
    changed: Vec<(u16, Box<[u8]>)>,
    /// Whether to keep `changed` (only jobs that take checkpoints need it).
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
    fn value_mut(&mut self, key_group: u16, key: &[u8]) -> Result<&mut Option<Value>, StateError> {
        let found = self.entries.entry(
            key_hash(key),
            |e| e.key.as_bytes() == key,
            |e| key_hash(e.key.as_bytes()),
        );
        let entry = match found {
            TableEntry::Occupied(found) => found.into_mut(),
            TableEntry::Vacant(vacant) => vacant
                .insert(Entry {
                    key: StoredKey::new(key),
                    key_group,
                    listed: false,
                    value: None,
                })
                .into_mut(),
        };
        if self.track_changes && !entry.listed {
            entry.listed = true;
            self.changed.push((entry.key_group, key.into()));
        }
        Ok(&mut entry.value)
    }

    fn take_changes(&mut self) -> Result<Changes, StateError> {
        let mut changes = Vec::with_capacity(self.changed.len());
        for (key_group, key) in self.changed.drain(..) {
            if let Some(entry) = self
                .entries
                .find_mut(key_hash(&key), |e| e.key.as_bytes() == &*key)
            {
                entry.listed = false;
                if let Some(value) = &entry.value {
                    changes.push(((key_group, key), value.clone()));
                }
            }
        }
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(s: &mut MemoryState, key_group: u16, key: &[u8], value: i64) {
        *s.value_mut(key_group, key).unwrap() = Some(Value::Int(value));
    }

    #[test]
    fn changes_list_each_changed_key_once_with_its_latest_value() {
        let mut s = MemoryState::new(true);
        put(&mut s, 1, b"a", 1);
        put(&mut s, 1, b"a", 2);
        put(&mut s, 2, b"b", 5);
        let changes = s.take_changes().unwrap();
        assert_eq!(
            changes,
            [
                ((1, b"a"[..].into()), Value::Int(2)),
                ((2, b"b"[..].into()), Value::Int(5))
            ]
        );
        assert!(s.take_changes().unwrap().is_empty());
        put(&mut s, 2, b"b", 6);
        assert_eq!(
            s.take_changes().unwrap(),
            [((2, b"b"[..].into()), Value::Int(6))]
        );
    }

    #[test]
    fn values_are_changed_in_place_and_read_back() {
        let mut s = MemoryState::new(false);
        assert_eq!(s.value_mut(3, b"k").unwrap(), &None);
        put(&mut s, 3, b"k", 1);
        if let Some(Value::Int(n)) = s.value_mut(3, b"k").unwrap() {
            *n += 1;
        }
        assert_eq!(s.value_mut(3, b"k").unwrap(), &Some(Value::Int(2)));
        assert!(s.take_changes().unwrap().is_empty(), "tracking is off");
    }

    #[test]
    fn a_key_left_without_a_value_is_not_a_change() {
        let mut s = MemoryState::new(true);
        s.value_mut(1, b"a").unwrap();
        assert!(s.take_changes().unwrap().is_empty());
    }
}
