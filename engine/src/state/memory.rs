//! The `memory` backend: a hash table per operator instance. Fastest; bounded by RAM.

use hashbrown::hash_table::HashTable;

use super::stored_key::{key_hash, StoredKey};
use super::{Changes, KeyedState, StateError};
use crate::value::Value;

struct Entry {
    key: StoredKey,
    key_group: u16,
    /// The epoch in which the key was last listed in `changed`, or
    /// [`CLEAN`]. Epochs let a snapshot freeze every changed key at once,
    /// without visiting them.
    changed_in: u32,
    /// A value of the key went into a snapshot since the last tombstone
    /// did: removing it must then write a tombstone, or a restore would
    /// bring the value back.
    in_snapshot: bool,
    value: Option<Value>,
}

/// An entry not changed since its value went into a snapshot.
const CLEAN: u32 = 0;

impl Entry {
    /// What a snapshot records of the entry now: its value, a tombstone
    /// for a removed value a snapshot holds, or nothing.
    fn change(&mut self) -> Option<Option<Value>> {
        match &self.value {
            Some(value) => {
                self.in_snapshot = true;
                Some(Some(value.clone()))
            }
            None if self.in_snapshot => {
                self.in_snapshot = false;
                Some(None)
            }
            None => None,
        }
    }
}

/// Keyed state in a hash table from encoded key to value. The key group
/// is not part of the table's key: it follows from the key.
///
/// Snapshots are copy-on-write, as Flink's heap backend: the synchronous
/// part only freezes the list of changed keys (the epoch moves on); the
/// values are copied between records ([`KeyedState::copy_changes`]), and
/// an entry about to change while still frozen is copied first.
pub struct MemoryState {
    entries: HashTable<Entry>,
    /// The hashes of the keys changed in the current epoch, each listed
    /// once per change of epoch: eight bytes a change. A snapshot finds a
    /// listed entry by its hash and its epoch (two changed keys of one hash
    /// are listed twice, and each is found once).
    changed: Vec<u64>,
    /// The list of the last snapshot's keys, emptied, for the next epoch's
    /// `changed`: its memory is reused, not grown again from nothing.
    spare: Vec<u64>,
    epoch: u32,
    /// The snapshot being copied: its keys still to visit, and what it holds so far.
    frozen: Option<Frozen>,
    /// Whether to keep `changed` (only jobs that take checkpoints need it).
    track_changes: bool,
}

struct Frozen {
    epoch: u32,
    keys: Vec<u64>,
    copied: Changes,
}

impl MemoryState {
    pub fn new(track_changes: bool) -> MemoryState {
        MemoryState {
            entries: HashTable::new(),
            changed: Vec::new(),
            spare: Vec::new(),
            epoch: CLEAN + 1,
            frozen: None,
            track_changes,
        }
    }
}

/// While the snapshot in `frozen` still holds `entry` (whose key is
/// `key`) unvisited, gives it the value from before the change about to be
/// made; the entry then counts as clean.
#[inline]
fn copy_if_frozen(entry: &mut Entry, key: &[u8], frozen: &mut Option<Frozen>) {
    if let Some(frozen) = frozen.as_mut().filter(|f| f.epoch == entry.changed_in) {
        if let Some(change) = entry.change() {
            frozen.copied.push(((entry.key_group, key.into()), change));
        }
        entry.changed_in = CLEAN;
    }
}

/// Lists `entry` (whose key is `key`, of hash `hash`) as changed in
/// `epoch`, once, after [`copy_if_frozen`].
#[inline]
fn note_change(
    entry: &mut Entry,
    key: &[u8],
    hash: u64,
    epoch: u32,
    frozen: &mut Option<Frozen>,
    changed: &mut Vec<u64>,
) {
    if entry.changed_in == epoch {
        return;
    }
    copy_if_frozen(entry, key, frozen);
    entry.changed_in = epoch;
    changed.push(hash);
}

impl KeyedState for MemoryState {
    fn value_mut(&mut self, key_group: u16, key: &[u8]) -> Result<&mut Option<Value>, StateError> {
        let hash = key_hash(key);
        // Looked up first, inserted only when absent: most records find
        // their key, and the lookup alone stays small enough to inline
        // where `HashTable::entry` (which also reserves room) may not.
        let entry = match self.entries.find_entry(hash, |e| e.key.as_bytes() == key) {
            Ok(found) => found.into_mut(),
            Err(absent) => absent
                .into_table()
                .insert_unique(
                    hash,
                    Entry {
                        key: StoredKey::new(key),
                        key_group,
                        changed_in: CLEAN,
                        in_snapshot: false,
                        value: None,
                    },
                    |e| key_hash(e.key.as_bytes()),
                )
                .into_mut(),
        };
        if self.track_changes {
            note_change(
                entry,
                key,
                hash,
                self.epoch,
                &mut self.frozen,
                &mut self.changed,
            );
        }
        Ok(&mut entry.value)
    }

    fn get(&mut self, _key_group: u16, key: &[u8]) -> Result<Option<&Value>, StateError> {
        Ok(self
            .entries
            .find(key_hash(key), |e| e.key.as_bytes() == key)
            .and_then(|e| e.value.as_ref()))
    }

    fn remove(&mut self, _key_group: u16, key: &[u8]) -> Result<Option<Value>, StateError> {
        let hash = key_hash(key);
        let Ok(mut found) = self.entries.find_entry(hash, |e| e.key.as_bytes() == key) else {
            return Ok(None);
        };
        let entry = found.get_mut();
        if self.track_changes {
            copy_if_frozen(entry, key, &mut self.frozen);
        }
        let old = entry.value.take();
        if self.track_changes && entry.in_snapshot {
            // Listed as changed, so the next snapshot writes its
            // tombstone; the entry goes once it has.
            note_change(
                entry,
                key,
                hash,
                self.epoch,
                &mut self.frozen,
                &mut self.changed,
            );
        } else {
            // No snapshot holds it: nothing to write, and it goes now.
            found.remove();
        }
        Ok(old)
    }

    fn take_changes(&mut self) -> Result<Changes, StateError> {
        if let Some(changes) = self.begin_snapshot()? {
            return Ok(changes);
        }
        Ok(self.copy_changes(usize::MAX)?.unwrap_or_default())
    }

    fn begin_snapshot(&mut self) -> Result<Option<Changes>, StateError> {
        if self.frozen.is_some() {
            return Err(StateError::SnapshotPending);
        }
        let keys = std::mem::replace(&mut self.changed, std::mem::take(&mut self.spare));
        self.frozen = Some(Frozen {
            epoch: self.epoch,
            // Sized once: growing it while copying would move every entry
            // copied so far, inside one slice (30 ms at 700,000 entries).
            copied: Changes::with_capacity(keys.len()),
            keys,
        });
        self.epoch = self.epoch.checked_add(1).unwrap_or(CLEAN + 1);
        Ok(None)
    }

    fn copy_changes(&mut self, budget: usize) -> Result<Option<Changes>, StateError> {
        let Some(frozen) = self.frozen.as_mut() else {
            return Ok(Some(Changes::new()));
        };
        for _ in 0..budget {
            let Some(hash) = frozen.keys.pop() else {
                break;
            };
            // Not found: it changed since, and was copied before it did,
            // or it went with no snapshot holding it.
            let epoch = frozen.epoch;
            let Ok(mut found) = self.entries.find_entry(hash, |e| {
                e.changed_in == epoch && key_hash(e.key.as_bytes()) == hash
            }) else {
                continue;
            };
            let entry = found.get_mut();
            entry.changed_in = CLEAN;
            let change = entry
                .change()
                .map(|change| ((entry.key_group, Box::from(entry.key.as_bytes())), change));
            if entry.value.is_none() {
                // Removed, and its tombstone (if it needed one) taken.
                found.remove();
            }
            if let Some(change) = change {
                frozen.copied.push(change);
            }
        }
        if !frozen.keys.is_empty() {
            return Ok(None);
        }
        Ok(self.frozen.take().map(|mut f| {
            // Kept for the next epoch, unless far larger than this one's.
            let wanted = f.copied.capacity().max(1024);
            if f.keys.capacity() > 4 * wanted {
                f.keys.shrink_to(2 * wanted);
            }
            self.spare = f.keys;
            f.copied
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(s: &mut MemoryState, key_group: u16, key: &[u8], value: i64) {
        *s.value_mut(key_group, key).unwrap() = Some(Value::Int(value));
    }

    /// Changes in key order (their order in a snapshot is unspecified).
    fn sorted(mut changes: Changes) -> Changes {
        changes.sort_by(|x, y| x.0.cmp(&y.0));
        changes
    }

    #[test]
    fn changes_list_each_changed_key_once_with_its_latest_value() {
        let mut s = MemoryState::new(true);
        put(&mut s, 1, b"a", 1);
        put(&mut s, 1, b"a", 2);
        put(&mut s, 2, b"b", 5);
        assert_eq!(
            sorted(s.take_changes().unwrap()),
            [
                ((1, b"a"[..].into()), Some(Value::Int(2))),
                ((2, b"b"[..].into()), Some(Value::Int(5)))
            ]
        );
        assert!(s.take_changes().unwrap().is_empty());
        put(&mut s, 2, b"b", 6);
        assert_eq!(
            s.take_changes().unwrap(),
            [((2, b"b"[..].into()), Some(Value::Int(6)))]
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

    #[test]
    fn a_removed_key_is_a_tombstone_only_if_a_snapshot_held_it() {
        let mut s = MemoryState::new(true);
        put(&mut s, 1, b"a", 1);
        put(&mut s, 1, b"b", 2);
        s.take_changes().unwrap();
        s.remove(1, b"a").unwrap();
        put(&mut s, 1, b"c", 3);
        assert_eq!(s.remove(1, b"c").unwrap(), Some(Value::Int(3)));
        assert_eq!(
            s.entries.len(),
            2,
            "`c`, which no snapshot holds, goes at once"
        );
        assert_eq!(s.value_mut(1, b"a").unwrap(), &None);
        assert_eq!(
            sorted(s.take_changes().unwrap()),
            [((1, b"a"[..].into()), None)],
            "`c` never reached a snapshot"
        );
        assert_eq!(s.entries.len(), 1, "removed entries leave the table");
        assert!(s.take_changes().unwrap().is_empty());
    }

    #[test]
    fn removing_without_checkpoints_frees_the_entry() {
        let mut s = MemoryState::new(false);
        put(&mut s, 1, b"a", 1);
        s.remove(1, b"a").unwrap();
        assert_eq!(s.entries.len(), 0);
    }

    #[test]
    fn a_deferred_snapshot_holds_the_values_at_its_beginning() {
        let mut s = MemoryState::new(true);
        for (i, key) in [b"a", b"b", b"c"].iter().enumerate() {
            put(&mut s, 1, *key, i as i64);
        }
        assert_eq!(s.begin_snapshot().unwrap(), None, "copying is deferred");
        assert_eq!(s.copy_changes(1).unwrap(), None, "one of three copied");
        // Changed while frozen: the snapshot keeps the value before.
        put(&mut s, 1, b"a", 10);
        put(&mut s, 1, b"d", 4);
        let snapshot = sorted(s.copy_changes(usize::MAX).unwrap().unwrap());
        let keys: Vec<(&[u8], Value)> = snapshot
            .iter()
            .map(|((_, k), v)| (&k[..], v.clone().unwrap()))
            .collect();
        assert_eq!(
            keys,
            [
                (&b"a"[..], Value::Int(0)),
                (&b"b"[..], Value::Int(1)),
                (&b"c"[..], Value::Int(2))
            ]
        );
        // The next snapshot has exactly what changed since.
        assert_eq!(
            sorted(s.take_changes().unwrap()),
            [
                ((1, b"a"[..].into()), Some(Value::Int(10))),
                ((1, b"d"[..].into()), Some(Value::Int(4)))
            ]
        );
        assert!(s.begin_snapshot().is_ok());
        assert!(matches!(
            s.begin_snapshot(),
            Err(StateError::SnapshotPending)
        ));
    }

    proptest::proptest! {
        /// Snapshots applied in order, tombstones removing, rebuild the
        /// state as it was at each snapshot's beginning, whatever changes
        /// and removals happen while one is being copied.
        #[test]
        fn snapshots_applied_in_order_rebuild_the_state(
            ops in proptest::collection::vec((0u8..8, 0u8..6), 1..300),
        ) {
            use std::collections::BTreeMap;
            let mut s = MemoryState::new(true);
            let mut model: BTreeMap<u8, i64> = BTreeMap::new();
            let mut image: BTreeMap<u8, Value> = BTreeMap::new();
            let mut expected_at_begin: Option<BTreeMap<u8, i64>> = None;
            for (i, (key, op)) in ops.into_iter().enumerate() {
                match op {
                    0 => {
                        s.remove(1, &[key]).unwrap();
                        model.remove(&key);
                    }
                    1 if expected_at_begin.is_none() => {
                        s.begin_snapshot().unwrap();
                        expected_at_begin = Some(model.clone());
                    }
                    2 if expected_at_begin.is_some() => {
                        if let Some(changes) = s.copy_changes(1 + key as usize % 3).unwrap() {
                            for ((_, k), v) in changes {
                                match v {
                                    Some(v) => image.insert(k[0], v),
                                    None => image.remove(&k[0]),
                                };
                            }
                            let want: BTreeMap<u8, Value> = expected_at_begin
                                .take()
                                .unwrap()
                                .into_iter()
                                .map(|(k, v)| (k, Value::Int(v)))
                                .collect();
                            proptest::prop_assert_eq!(&image, &want);
                        }
                    }
                    _ => {
                        put(&mut s, 1, &[key], i as i64);
                        model.insert(key, i as i64);
                    }
                }
            }
        }
    }
}
