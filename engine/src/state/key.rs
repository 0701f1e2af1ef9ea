//! Keys as bytes, and the key groups they fall in.
//!
//! The encoding and the hash must never change between versions: a
//! checkpoint's state is split by key group, and a restore recomputes key
//! groups to find each key's new owner.

use xxhash_rust::xxh3::xxh3_64;

use crate::value::Value;

/// Appends a canonical byte encoding of `key` to `out`: equal keys give
/// equal bytes, and a type tag keeps `1` and `"1"` apart.
pub fn encode_key(key: &Value, out: &mut Vec<u8>) {
    match key {
        Value::Str(s) => {
            out.push(b's');
            out.extend_from_slice(s.as_bytes());
        }
        Value::Int(n) => {
            out.push(b'i');
            out.extend_from_slice(&n.to_be_bytes());
        }
        Value::Bool(b) => out.extend_from_slice(if *b { b"bt" } else { b"bf" }),
        Value::Null => out.push(b'n'),
        Value::Float(x) => {
            out.push(b'f');
            out.extend_from_slice(&x.to_bits().to_be_bytes());
        }
        Value::List(_) | Value::Map(_) => {
            out.push(b'j');
            out.extend_from_slice(key.to_json().as_bytes());
        }
    }
}

/// The key group of an encoded key: a stable hash modulo `max_parallelism`.
pub fn key_group(encoded: &[u8], max_parallelism: u32) -> u16 {
    (xxh3_64(encoded) % u64::from(max_parallelism.max(1))) as u16
}

/// The key groups one instance of a keyed node owns (Flink's ranges: each
/// instance gets a contiguous, nearly equal share).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyGroupRange {
    pub start: u16,
    /// Inclusive.
    pub end: u16,
}

impl KeyGroupRange {
    pub fn of_instance(instance: u32, parallelism: u32, max_parallelism: u32) -> KeyGroupRange {
        let (i, p, m) = (
            u64::from(instance),
            u64::from(parallelism),
            u64::from(max_parallelism),
        );
        KeyGroupRange {
            start: ((i * m).div_ceil(p)) as u16,
            end: (((i + 1) * m - 1) / p) as u16,
        }
    }

    pub fn contains(&self, key_group: u16) -> bool {
        (self.start..=self.end).contains(&key_group)
    }
}

/// The instance that owns `key_group` at `parallelism`.
pub fn owner(key_group: u16, parallelism: u32, max_parallelism: u32) -> u32 {
    (u64::from(key_group) * u64::from(parallelism) / u64::from(max_parallelism.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_of_different_types_differ() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        encode_key(&Value::Int(1), &mut a);
        encode_key(&Value::from("1"), &mut b);
        assert_ne!(a, b);
    }

    proptest! {
        #[test]
        fn the_owner_of_a_key_group_owns_its_range(max in 1u32..2000, p_seed in 1u32..2000, kg_seed in 0u32..2000) {
            let p = 1 + p_seed % max;
            let kg = (kg_seed % max) as u16;
            let i = owner(kg, p, max);
            prop_assert!(i < p);
            prop_assert!(KeyGroupRange::of_instance(i, p, max).contains(kg));
        }
    }
}
