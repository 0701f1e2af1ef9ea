//! The count of records a window or a join left out as late, kept in the
//! operator's keyed state so that it goes on across restores: the count a
//! run reports is the job's, and a replay after a restore counts again
//! only what the checkpoint had not.
//!
//! Each instance keeps its count under a key of its own first key group,
//! which a record key's encoding can never be (it never begins with `#`).
//! At another parallelism, the instance owning an old instance's group
//! takes its count, so no count is lost or doubled.

use crate::state::{KeyedState, StateError};
use crate::value::Value;

const KEY: &[u8] = b"#late";

/// Why a restored late count cannot be one.
#[derive(Debug, thiserror::Error)]
#[error("a late-record count that is not a count: `{0}`")]
pub struct UnfitCount(String);

pub struct LateCount {
    /// Over the job's life.
    total: u64,
    /// Of it, what the caller has not been told yet (a restored count too).
    unreported: u64,
    changed: bool,
    home_group: u16,
}

impl LateCount {
    /// `home_group`: the first key group the instance owns.
    pub fn new(home_group: u16) -> LateCount {
        LateCount {
            total: 0,
            unreported: 0,
            changed: false,
            home_group,
        }
    }

    /// Whether a state key is a late count's.
    pub fn is_count(key: &[u8]) -> bool {
        key.starts_with(KEY)
    }

    /// Adds a restored instance's count.
    pub fn restore(&mut self, value: &Value) -> Result<(), UnfitCount> {
        let Value::Int(n @ 0..) = value else {
            return Err(UnfitCount(value.to_string()));
        };
        self.add(*n as u64);
        Ok(())
    }

    pub fn add(&mut self, n: u64) {
        self.total += n;
        self.unreported += n;
        self.changed = true;
    }

    /// Late records not reported yet, which the caller now reports.
    pub fn take_unreported(&mut self) -> u64 {
        std::mem::take(&mut self.unreported)
    }

    /// Puts the count in `state` if it changed: before a snapshot.
    pub fn save(&mut self, state: &mut dyn KeyedState) -> Result<(), StateError> {
        if std::mem::take(&mut self.changed) {
            let mut key = KEY.to_vec();
            key.extend_from_slice(&self.home_group.to_be_bytes());
            *state.value_mut(self.home_group, &key)? =
                Some(Value::Int(i64::try_from(self.total).unwrap_or(i64::MAX)));
        }
        Ok(())
    }
}
