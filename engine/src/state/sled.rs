//! The `sled` backend: state on disk under `state.dir`, so it may exceed
//! memory, behind a bounded write-back cache of hot keys.
//!
//! sled does a few hundred thousand read-modify-writes per second, an order
//! of magnitude fewer than a keyed operator must, so each instance keeps its
//! hot keys in memory: a hit never touches sled, a miss reads sled once, and
//! a changed entry is written to sled only when it is evicted. Snapshots
//! need no sled writes: the changes they upload come from the cache (or,
//! for entries evicted since they changed, from sled), and the sled
//! database itself is scratch space that no restore reads.
//!
//! One sled database per job run; each keyed operator has its own tree, in
//! which an entry's key is its key group (2 bytes, big-endian) followed by
//! the encoded key.

use std::path::{Path, PathBuf};

use hashbrown::HashTable;
use rustc_hash::FxHashSet;

use super::codec::{decode_value, encode_value};
use super::stored_key::{key_hash, StoredKey};
use super::{Changes, KeyedState, StateError};
use crate::value::Value;

/// How many entries each instance's cache holds when the spec does not say.
pub const DEFAULT_CACHE_ENTRIES: u32 = 1_000_000;

/// The most entries one eviction writes to sled: enough to amortise a
/// batch, few enough not to stall the operator.
const EVICTION_BATCH: usize = 1024;

/// The sled database of one job run; removed when the run ends.
pub struct SledStore {
    db: sled::Db,
    dir: PathBuf,
    cache_entries: usize,
}

impl SledStore {
    /// Opens a fresh database in `dir`, a folder of this run's own
    /// ([`crate::workdir`]), whose states each cache up to `cache_entries`
    /// entries (at least one).
    pub fn open(dir: &Path, cache_entries: u32) -> Result<SledStore, StateError> {
        let open_error = |source| StateError::Open {
            dir: dir.display().to_string(),
            source,
        };
        // The database is scratch: a run's state beyond memory, rebuilt
        // from a checkpoint by the next run, never reopened. `temporary`
        // skips every fsync and `sync_file_range`: besides wasted work,
        // one slow sync under disk pressure made sled's other writers pile
        // up behind the lock of its list of synced ranges, which it sorts
        // whole on every write, and a run hung for minutes (docs/recovery.md).
        let db = sled::Config::new()
            .path(dir)
            .temporary(true)
            .flush_every_ms(None)
            .cache_capacity(256 * 1024 * 1024)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(open_error)?;
        Ok(SledStore {
            db,
            dir: dir.to_owned(),
            cache_entries: (cache_entries as usize).max(1),
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
            disk: Disk {
                tree,
                namespace: namespace.to_owned(),
                buf: Vec::new(),
            },
            cache: HashTable::new(),
            hand: 0,
            capacity: self.cache_entries,
            changed: Vec::new(),
            evicted_changed: FxHashSet::default(),
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

struct Cached {
    key: StoredKey,
    key_group: u16,
    /// Used since the eviction sweep last passed it (CLOCK's second chance).
    referenced: bool,
    /// In `changed`, so that a key changed many times is listed once.
    listed: bool,
    value: Option<Value>,
}

/// Keyed state of one operator instance: a cache in front of a sled tree.
///
/// Every cached entry is newer than sled (a key is only looked up to be
/// changed), so every evicted entry is written.
pub struct SledState {
    disk: Disk,
    /// The latest value of every key it holds.
    cache: HashTable<Cached>,
    /// CLOCK's hand: the bucket of `cache` the last eviction stopped at.
    hand: usize,
    capacity: usize,
    /// Keys changed since the last snapshot, each once.
    changed: Vec<(u16, Box<[u8]>)>,
    /// Keys of `changed` evicted since they changed: their latest value is
    /// in sled, and reloading one must not list it twice.
    evicted_changed: FxHashSet<Box<[u8]>>,
    track_changes: bool,
}

/// The sled side of a state.
struct Disk {
    tree: sled::Tree,
    namespace: String,
    /// Reused for tree keys.
    buf: Vec<u8>,
}

/// The tree key of an entry, built in a reused buffer.
fn tree_key<'a>(buf: &'a mut Vec<u8>, key_group: u16, key: &[u8]) -> &'a [u8] {
    buf.clear();
    buf.extend_from_slice(&key_group.to_be_bytes());
    buf.extend_from_slice(key);
    buf
}

impl Disk {
    fn error(&self, source: sled::Error) -> StateError {
        StateError::Sled {
            namespace: self.namespace.clone(),
            source,
        }
    }

    fn read(&mut self, key_group: u16, key: &[u8]) -> Result<Option<Value>, StateError> {
        let found = self.tree.get(tree_key(&mut self.buf, key_group, key));
        match found.map_err(|e| self.error(e))? {
            None => Ok(None),
            Some(bytes) => decode_value(&bytes)
                .map(Some)
                .map_err(|source| StateError::Decode {
                    namespace: self.namespace.clone(),
                    source,
                }),
        }
    }

    /// Removes entries from `cache` (a sixteenth of `capacity`, at most
    /// [`EVICTION_BATCH`]) and writes them to sled in one batch. CLOCK picks
    /// them: the hand goes round the table's buckets, sparing entries used
    /// since it last passed (and clearing that mark), so hot keys stay.
    ///
    /// If writing fails, the evicted values are lost; but a state error
    /// fails the job, which restarts from its last checkpoint anyway.
    fn evict(
        &mut self,
        cache: &mut HashTable<Cached>,
        hand: &mut usize,
        capacity: usize,
        evicted_changed: &mut FxHashSet<Box<[u8]>>,
    ) -> Result<(), StateError> {
        let quota = (capacity / 16).clamp(1, EVICTION_BATCH);
        let buckets = cache.num_buckets();
        let mut batch = sled::Batch::default();
        let mut evicted = 0;
        // Two turns at most: after one, no entry is marked used.
        for _ in 0..2 * buckets {
            if evicted == quota {
                break;
            }
            *hand = (*hand + 1) % buckets;
            let Ok(mut found) = cache.get_bucket_entry(*hand) else {
                continue;
            };
            let entry = found.get_mut();
            if entry.referenced {
                entry.referenced = false;
                continue;
            }
            let (entry, _) = found.remove();
            evicted += 1;
            let at = tree_key(&mut self.buf, entry.key_group, entry.key.as_bytes());
            match &entry.value {
                Some(value) => batch.insert(at, &*encode_value(value)),
                // Removed (or never there): sled must not keep an older value.
                None => batch.remove(at),
            }
            if entry.listed {
                evicted_changed.insert(entry.key.as_bytes().into());
            }
        }
        self.tree.apply_batch(batch).map_err(|e| self.error(e))
    }
}

impl KeyedState for SledState {
    fn value_mut(&mut self, key_group: u16, key: &[u8]) -> Result<&mut Option<Value>, StateError> {
        let hash = key_hash(key);
        let cache = match self.cache.find_entry(hash, |e| e.key.as_bytes() == key) {
            Ok(found) => {
                let entry = found.into_mut();
                entry.referenced = true;
                if self.track_changes && !entry.listed {
                    entry.listed = true;
                    self.changed.push((key_group, key.into()));
                }
                return Ok(&mut entry.value);
            }
            Err(absent) => absent.into_table(),
        };
        if cache.len() >= self.capacity {
            self.disk.evict(
                cache,
                &mut self.hand,
                self.capacity,
                &mut self.evicted_changed,
            )?;
        }
        let value = self.disk.read(key_group, key)?;
        let listed = if !self.track_changes {
            false
        } else if !self.evicted_changed.is_empty() && self.evicted_changed.remove(key) {
            true // still in `changed`
        } else {
            self.changed.push((key_group, key.into()));
            true
        };
        let entry = cache.insert_unique(
            hash,
            Cached {
                key: StoredKey::new(key),
                key_group,
                referenced: true,
                listed,
                value,
            },
            |e| key_hash(e.key.as_bytes()),
        );
        Ok(&mut entry.into_mut().value)
    }

    fn remove(&mut self, key_group: u16, key: &[u8]) -> Result<Option<Value>, StateError> {
        // Cached as `None`: eviction removes it from sled, and a snapshot
        // lists its tombstone.
        Ok(self.value_mut(key_group, key)?.take())
    }

    fn take_changes(&mut self) -> Result<Changes, StateError> {
        let mut changes = Vec::with_capacity(self.changed.len());
        for (key_group, key) in std::mem::take(&mut self.changed) {
            let value = match self
                .cache
                .find_mut(key_hash(&key), |e| e.key.as_bytes() == &*key)
            {
                Some(entry) => {
                    entry.listed = false;
                    entry.value.clone()
                }
                None => self.disk.read(key_group, &key)?,
            };
            // `None` is a tombstone: the key was removed, or looked up and
            // never given a value; either way no snapshot may hold one.
            changes.push(((key_group, key), value));
        }
        self.evicted_changed.clear();
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn store(cache_entries: u32) -> (tempfile::TempDir, SledStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("state"), cache_entries).unwrap();
        (dir, store)
    }

    /// Adds `n` to the count of `key`, as a keyed `sum` does.
    fn add(s: &mut SledState, key: &[u8], n: i64) -> i64 {
        let value = s.value_mut(key[0].into(), key).unwrap();
        match value {
            Some(Value::Int(total)) => {
                *total += n;
                *total
            }
            _ => {
                *value = Some(Value::Int(n));
                n
            }
        }
    }

    fn sorted(changes: Changes) -> Vec<(Vec<u8>, Option<Value>)> {
        let mut out: Vec<(Vec<u8>, Option<Value>)> = changes
            .into_iter()
            .map(|((_, k), v)| (k.into(), v))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn a_miss_reads_sled_and_a_hit_the_cache() {
        let (_dir, store) = store(4);
        let mut s = store.state("op", false).unwrap();
        assert_eq!(s.value_mut(1, b"a").unwrap(), &None);
        assert_eq!(add(&mut s, b"a", 2), 2);
        assert_eq!(add(&mut s, b"a", 3), 5);
        assert!(s.disk.tree.is_empty(), "a hit writes nothing to sled");
    }

    #[test]
    fn evicted_entries_are_written_to_sled_and_read_back() {
        let (_dir, store) = store(2);
        let mut s = store.state("op", false).unwrap();
        for key in [b"a", b"b", b"c", b"d"] {
            add(&mut s, key, 1);
        }
        assert!(s.cache.len() <= 2);
        assert!(s.disk.tree.len() >= 2, "evicted entries reach sled");
        for key in [b"a", b"b", b"c", b"d"] {
            assert_eq!(add(&mut s, key, 10), 11);
        }
        assert!(s.take_changes().unwrap().is_empty(), "tracking is off");
    }

    #[test]
    fn changes_are_every_changed_key_once_evicted_or_not() {
        let (_dir, store) = store(2);
        let mut s = store.state("op", true).unwrap();
        for key in [b"a", b"b", b"c", b"a", b"d", b"a"] {
            add(&mut s, key, 1);
        }
        let int = |n| Some(Value::Int(n));
        assert_eq!(
            sorted(s.take_changes().unwrap()),
            [
                (b"a".to_vec(), int(3)),
                (b"b".to_vec(), int(1)),
                (b"c".to_vec(), int(1)),
                (b"d".to_vec(), int(1))
            ]
        );
        assert!(s.take_changes().unwrap().is_empty());
        add(&mut s, b"b", 5);
        assert_eq!(sorted(s.take_changes().unwrap()), [(b"b".to_vec(), int(6))]);
        s.remove(1, b"b").unwrap();
        assert_eq!(sorted(s.take_changes().unwrap()), [(b"b".to_vec(), None)]);
    }

    #[test]
    fn keys_used_since_the_hand_passed_stay_cached() {
        let (_dir, store) = store(16);
        let mut s = store.state("op", false).unwrap();
        for i in 100..200u8 {
            add(&mut s, &[i], 1);
            add(&mut s, &[0], 1);
        }
        assert!(s.cache.len() <= 16);
        let hot = s.cache.find(key_hash(&[0]), |e| e.key.as_bytes() == [0]);
        assert_eq!(hot.and_then(|e| e.value.clone()), Some(Value::Int(100)));
        assert_eq!(s.disk.tree.get([0, 0]).unwrap(), None, "never evicted");
    }

    proptest! {
        /// Against a map: every read sees the latest value, and changes
        /// are exactly the keys changed since the last snapshot.
        #[test]
        fn behaves_like_a_map(
            capacity in 1u32..6,
            ops in proptest::collection::vec((0u8..12, -3i64..4, any::<bool>()), 1..200),
        ) {
            let (_dir, store) = store(capacity);
            let mut s = store.state("op", true).unwrap();
            let mut model = BTreeMap::new();
            let mut changed = BTreeMap::new();
            for (key, n, snapshot) in ops {
                if n == -3 {
                    // Removal: a tombstone in the next snapshot.
                    s.remove(key.into(), &[key]).unwrap();
                    model.remove(&vec![key]);
                    changed.insert(vec![key], None);
                    prop_assert_eq!(s.value_mut(key.into(), &[key]).unwrap(), &None);
                    continue;
                }
                let total = model.entry(vec![key]).or_insert(0);
                *total += n;
                prop_assert_eq!(add(&mut s, &[key], n), *total);
                changed.insert(vec![key], Some(Value::Int(*total)));
                prop_assert!(s.cache.len() <= capacity as usize);
                if snapshot {
                    let want: Vec<_> = std::mem::take(&mut changed).into_iter().collect();
                    prop_assert_eq!(sorted(s.take_changes().unwrap()), want);
                }
            }
        }
    }
}
