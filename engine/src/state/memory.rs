//! The `memory` backend: a hash map per operator instance. Fastest; bounded by RAM.

use rustc_hash::FxHashMap;

use super::{KeyedState, StateError};
use crate::value::Value;

/// Keyed state in a hash map from encoded key to value.
#[derive(Default)]
pub struct MemoryState {
    map: FxHashMap<Box<[u8]>, Value>,
}

impl KeyedState for MemoryState {
    fn get(&mut self, _key_group: u16, key: &[u8]) -> Result<Option<Value>, StateError> {
        Ok(self.map.get(key).cloned())
    }

    fn put(&mut self, _key_group: u16, key: &[u8], value: Value) -> Result<(), StateError> {
        // Look up by the borrowed key first: the key is copied only when new.
        match self.map.get_mut(key) {
            Some(slot) => *slot = value,
            None => {
                self.map.insert(key.into(), value);
            }
        }
        Ok(())
    }
}
