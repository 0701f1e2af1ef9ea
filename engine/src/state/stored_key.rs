//! How the backends' tables hold encoded keys in memory.
//!
//! A lookup on a large table costs its cache misses: the table's control
//! bytes, the entry, and then the key's bytes if they live elsewhere on the
//! heap. Most keys (a word, a number) are short, so they are kept inside the
//! entry, and comparing one reads memory the lookup has already loaded.

/// The longest key kept inline, as the entry's key then takes 32 bytes:
/// room for a short key and a window's bounds (16 bytes).
const INLINE: usize = 30;

/// An encoded key, inline when short.
pub(crate) enum StoredKey {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl StoredKey {
    pub(crate) fn new(key: &[u8]) -> StoredKey {
        if key.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..key.len()].copy_from_slice(key);
            StoredKey::Inline {
                len: key.len() as u8,
                bytes,
            }
        } else {
            StoredKey::Heap(key.into())
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            StoredKey::Inline { len, bytes } => &bytes[..usize::from(*len)],
            StoredKey::Heap(bytes) => bytes,
        }
    }
}

/// The hash the tables file an encoded key under.
pub(super) fn key_hash(key: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut hasher = rustc_hash::FxHasher::default();
    hasher.write(key);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_keys_read_back() {
        for len in [0, 1, INLINE, INLINE + 1, 100] {
            let key: Vec<u8> = (0..len as u8).collect();
            let stored = StoredKey::new(&key);
            assert_eq!(stored.as_bytes(), key);
            assert_eq!(matches!(stored, StoredKey::Inline { .. }), len <= INLINE);
        }
    }
}
