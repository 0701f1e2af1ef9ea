//! Keyed state entries filed under the time something is due for them: a
//! window's close or the end of its lateness, a key's time to live.
//!
//! Entries fall due at a handful of times shared by many keys (every
//! window of one minute closes at once), so they are grouped by time:
//! setting a timer is a push onto its time's list, and the clock or the
//! watermark takes whole lists. The lists are not de-duplicated: each
//! user sets at most one timer of a kind per entry.

use std::collections::BTreeMap;

use crate::state::StoredKey;

/// A state entry: its key group and key.
pub type Entry = (u16, StoredKey);

#[derive(Default)]
pub struct Timers {
    by_time: BTreeMap<i64, Vec<Entry>>,
}

impl Timers {
    pub fn insert(&mut self, time: i64, key_group: u16, entry: &[u8]) {
        self.by_time
            .entry(time)
            .or_default()
            .push((key_group, StoredKey::new(entry)));
    }

    /// Clears the timer of `entry` at `time`, if it is set.
    pub fn remove(&mut self, time: i64, key_group: u16, entry: &[u8]) {
        let Some(entries) = self.by_time.get_mut(&time) else {
            return;
        };
        if let Some(at) = entries
            .iter()
            .position(|(kg, e)| *kg == key_group && e.as_bytes() == entry)
        {
            entries.swap_remove(at);
        }
        if entries.is_empty() {
            self.by_time.remove(&time);
        }
    }

    /// The entries whose time is at most `upto`, earliest time first, taken
    /// one time at a time.
    pub fn take_due(&mut self, upto: i64) -> Option<Vec<Entry>> {
        let entry = self.by_time.first_entry()?;
        (*entry.key() <= upto).then(|| entry.remove())
    }

    /// Drops every timer at or before `time`.
    pub fn clear_until(&mut self, time: i64) {
        self.by_time = self.by_time.split_off(&time.saturating_add(1));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_time.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_entries_come_by_time_and_cleared_ones_not_at_all() {
        let mut t = Timers::default();
        t.insert(20, 1, b"b");
        t.insert(10, 1, b"a");
        t.insert(20, 2, b"c");
        t.insert(30, 1, b"d");
        t.remove(20, 1, b"b");
        t.remove(20, 1, b"x");
        let due = |t: &mut Timers| {
            t.take_due(25).map(|d| {
                d.iter()
                    .map(|(kg, e)| (*kg, e.as_bytes().to_vec()))
                    .collect::<Vec<_>>()
            })
        };
        assert!(t.take_due(5).is_none());
        assert_eq!(due(&mut t), Some(vec![(1, b"a".to_vec())]));
        assert_eq!(due(&mut t), Some(vec![(2, b"c".to_vec())]));
        assert_eq!(due(&mut t), None);
        t.clear_until(30);
        assert_eq!(t.len(), 0);
    }
}
