//! The snapshot file format: an instance's keyed state (or its changes),
//! grouped by key group so that a restore at another parallelism reads
//! only the key groups it owns.
//!
//! ```text
//! "DFSNAP1\n", or "DFSNAP2\n" when the file holds a tombstone
//! repeated, key groups ascending:
//!   key_group u16 | entries u32 | entries × (key_len u32 | key | value_len u32 | value JSON)
//! xxh3-64 of everything before it (8 bytes)
//! ```
//! All integers are big-endian. In a `DFSNAP2` file, a `value_len` of
//! `u32::MAX` with no value after it is a tombstone: a delta's record that
//! the key was removed (a window that fired). Files without one keep the
//! first header, which every earlier version reads. The checksum is also
//! recorded in the checkpoint's `_metadata`, so damage is found before
//! anything is restored.

use std::collections::BTreeMap;

use xxhash_rust::xxh3::xxh3_64;

const MAGIC: &[u8; 8] = b"DFSNAP1\n";
/// The header of a file holding tombstones.
const MAGIC_TOMBSTONES: &[u8; 8] = b"DFSNAP2\n";
/// The `value_len` of a tombstone.
const TOMBSTONE: u32 = u32::MAX;

/// State entries by (key group, encoded key) → encoded value; sorted, so
/// files are written in key-group order.
pub type Entries = BTreeMap<(u16, Box<[u8]>), Box<[u8]>>;

/// Why a snapshot file cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a snapshot file (bad header)")]
    BadMagic,
    #[error("truncated at byte {0}")]
    Truncated(usize),
    #[error("checksum mismatch: the file is damaged")]
    Checksum,
    #[error("key group {found} at byte {at}: key groups must ascend below {limit}")]
    KeyGroup { found: u16, at: usize, limit: u32 },
}

/// Encodes entries.
pub fn encode(entries: &Entries) -> Vec<u8> {
    encode_sorted(
        entries
            .iter()
            .map(|((kg, key), value)| (*kg, &key[..], value)),
        entries.len(),
        |value, out| {
            out.extend_from_slice(value);
            true
        },
    )
}

/// Encodes `n` entries given sorted by (key group, key), each key once;
/// `write_value` appends a value's encoding, or nothing and returns
/// `false` for a tombstone. Values can so be encoded straight into the
/// file, without a buffer of their own.
pub fn encode_sorted<'a, V>(
    entries: impl IntoIterator<Item = (u16, &'a [u8], V)>,
    n: usize,
    write_value: impl Fn(&V, &mut Vec<u8>) -> bool,
) -> Vec<u8> {
    let mut tombstones = false;
    let mut out = Vec::with_capacity(16 + n * 32);
    out.extend_from_slice(MAGIC);
    // The current key group, where its entry count goes, and the count.
    let mut group: Option<(u16, usize, u32)> = None;
    for (kg, key, value) in entries {
        if group.is_none_or(|(g, _, _)| g != kg) {
            if let Some((_, at, count)) = group {
                out[at..at + 4].copy_from_slice(&count.to_be_bytes());
            }
            out.extend_from_slice(&kg.to_be_bytes());
            group = Some((kg, out.len(), 0));
            out.extend_from_slice(&0u32.to_be_bytes());
        }
        out.extend_from_slice(&(key.len() as u32).to_be_bytes());
        out.extend_from_slice(key);
        let len_at = out.len();
        out.extend_from_slice(&0u32.to_be_bytes());
        let len = if write_value(&value, &mut out) {
            (out.len() - len_at - 4) as u32
        } else {
            tombstones = true;
            TOMBSTONE
        };
        out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
        if let Some((_, _, count)) = group.as_mut() {
            *count += 1;
        }
    }
    if let Some((_, at, count)) = group {
        out[at..at + 4].copy_from_slice(&count.to_be_bytes());
    }
    if tombstones {
        out[..MAGIC.len()].copy_from_slice(MAGIC_TOMBSTONES);
    }
    let sum = xxh3_64(&out);
    out.extend_from_slice(&sum.to_be_bytes());
    out
}

/// The checksum `_metadata` records for a whole file.
pub fn checksum(bytes: &[u8]) -> u64 {
    xxh3_64(bytes)
}

/// Decodes a file of a job with `groups` key groups (its max_parallelism),
/// keeping the entries whose key group `keep` accepts, and applies them on
/// top of `into` (later files override earlier ones, and their
/// tombstones remove). A key group out of range or out of order is
/// damage, even under a valid checksum.
pub fn decode_into(
    bytes: &[u8],
    groups: u32,
    keep: impl Fn(u16) -> bool,
    into: &mut Entries,
) -> Result<(), SnapshotError> {
    if bytes.len() < MAGIC.len() + 8 {
        return Err(SnapshotError::Truncated(bytes.len()));
    }
    let tombstones = match &bytes[..MAGIC.len()] {
        m if m == MAGIC => false,
        m if m == MAGIC_TOMBSTONES => true,
        _ => return Err(SnapshotError::BadMagic),
    };
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    if xxh3_64(body)
        != u64::from_be_bytes(
            sum.try_into()
                .map_err(|_| SnapshotError::Truncated(bytes.len()))?,
        )
    {
        return Err(SnapshotError::Checksum);
    }
    let mut r = Reader {
        bytes: body,
        at: MAGIC.len(),
    };
    let mut previous: Option<u16> = None;
    while r.at < body.len() {
        let at = r.at;
        let kg = u16::from_be_bytes(
            r.take(2)?
                .try_into()
                .map_err(|_| SnapshotError::Truncated(r.at))?,
        );
        if u32::from(kg) >= groups || previous.is_some_and(|p| p >= kg) {
            return Err(SnapshotError::KeyGroup {
                found: kg,
                at,
                limit: groups,
            });
        }
        previous = Some(kg);
        let n = r.u32()?;
        let wanted = keep(kg);
        for _ in 0..n {
            let klen = r.u32()? as usize;
            let key = r.take(klen)?;
            let vlen = r.u32()?;
            if tombstones && vlen == TOMBSTONE {
                if wanted {
                    into.remove(&(kg, Box::<[u8]>::from(key)));
                }
                continue;
            }
            let value = r.take(vlen as usize)?;
            if wanted {
                into.insert((kg, key.into()), value.into());
            }
        }
    }
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(SnapshotError::Truncated(self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, SnapshotError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entries(items: &[(u16, &str, &str)]) -> Entries {
        items
            .iter()
            .map(|(g, k, v)| ((*g, k.as_bytes().into()), v.as_bytes().into()))
            .collect()
    }

    /// Contents that pass the checksum but cannot be: a key group past
    /// the job's max_parallelism, or groups out of order.
    #[test]
    fn impossible_key_groups_are_damage() {
        let bytes = encode(&entries(&[(65535, "k", "1")]));
        assert!(matches!(
            decode_into(&bytes, 128, |_| true, &mut Entries::new()),
            Err(SnapshotError::KeyGroup {
                found: 65535,
                limit: 128,
                ..
            })
        ));
        let twice = encode_sorted(
            [(5u16, &b"a"[..], "1"), (3, &b"b"[..], "2")],
            2,
            |v, out| {
                out.extend_from_slice(v.as_bytes());
                true
            },
        );
        assert!(matches!(
            decode_into(&twice, 128, |_| true, &mut Entries::new()),
            Err(SnapshotError::KeyGroup { found: 3, .. })
        ));
    }

    #[test]
    fn round_trips_and_filters_by_key_group() {
        let e = entries(&[(0, "a", "1"), (3, "b", "2"), (3, "c", "3"), (9, "d", "4")]);
        let bytes = encode(&e);
        let mut all = Entries::new();
        decode_into(&bytes, 128, |_| true, &mut all).unwrap();
        assert_eq!(all, e);
        let mut some = Entries::new();
        decode_into(&bytes, 128, |g| g == 3, &mut some).unwrap();
        assert_eq!(some.len(), 2);
    }

    #[test]
    fn tombstones_remove_what_earlier_files_hold() {
        let base = encode(&entries(&[(1, "a", "1"), (1, "b", "2"), (2, "c", "3")]));
        assert_eq!(
            &base[..8],
            MAGIC,
            "a file without tombstones keeps the old header"
        );
        let delta = encode_sorted(
            [
                (1u16, &b"a"[..], None),
                (2, &b"c"[..], Some("4")),
                (2, &b"d"[..], None),
            ],
            3,
            |v, out| match v {
                Some(v) => {
                    out.extend_from_slice(v.as_bytes());
                    true
                }
                None => false,
            },
        );
        assert_eq!(&delta[..8], MAGIC_TOMBSTONES);
        let mut all = Entries::new();
        decode_into(&base, 128, |_| true, &mut all).unwrap();
        decode_into(&delta, 128, |_| true, &mut all).unwrap();
        assert_eq!(all, entries(&[(1, "b", "2"), (2, "c", "4")]));
    }

    #[test]
    fn damage_is_detected() {
        let bytes = encode(&entries(&[(1, "k", "v")]));
        let mut flipped = bytes.clone();
        flipped[10] ^= 1;
        assert_eq!(
            decode_into(&flipped, 128, |_| true, &mut Entries::new()),
            Err(SnapshotError::Checksum)
        );
        assert!(decode_into(
            &bytes[..bytes.len() - 3],
            128,
            |_| true,
            &mut Entries::new()
        )
        .is_err());
        assert_eq!(
            decode_into(b"nonsense-nonsense", 128, |_| true, &mut Entries::new()),
            Err(SnapshotError::BadMagic)
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_into(&bytes, 128, |_| true, &mut Entries::new());
        }
    }
}
