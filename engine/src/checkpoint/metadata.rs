//! `_metadata`: what a completed checkpoint consists of.
//!
//! Written last, after every file it names is in the store: a checkpoint
//! folder without it is an aborted or unfinished checkpoint and never
//! counts. It names every file a restore needs (for incremental
//! checkpoints, each instance's chain: a full snapshot then deltas) with its
//! size and checksum, and every source's position.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::layout::SnapshotKind;
use crate::spec::CheckpointMode;

/// Bumped whenever the format changes. Version 2 added the run identity
/// (`run`, `restored_from`) and savepoints (`kind`); version 1 is still read, as a checkpoint of an
/// unknown earlier run.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest version this build reads.
const OLDEST_READABLE: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub format_version: u32,
    pub job: String,
    /// xxh3 of the spec's text, hex.
    pub spec_hash: String,
    pub checkpoint_id: u64,
    /// A checkpoint, or a savepoint (self-contained: its files' paths are
    /// relative to its own folder; see `savepoint.rs`).
    #[serde(default)]
    pub kind: Kind,
    /// The run that took it (empty: a version 1 checkpoint, run unknown).
    #[serde(default)]
    pub run: String,
    /// Where that run started from: the location of the checkpoint or
    /// savepoint it restored, none for a fresh start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<String>,
    /// The checkpoint numbers whose output is in this checkpoint's past, as
    /// inclusive ranges: this run's, after those of the checkpoint it
    /// restored, and so on back. A file sink names its output by them, and
    /// a restore shows exactly the output of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<(u64, u64)>,
    /// Milliseconds since the Unix epoch.
    pub triggered_at_ms: u64,
    pub completed_at_ms: u64,
    pub mode: CheckpointMode,
    pub incremental: bool,
    pub max_parallelism: u32,
    /// The shape of each stateful node's state, by node name: what a
    /// restore checks the spec against (absent before format version 2).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nodes: BTreeMap<String, NodeShape>,
    /// By instance name (`counts#0`).
    pub instances: BTreeMap<String, InstanceState>,
    /// The longest time an instance held inputs blocked for alignment.
    pub alignment_ms: f64,
    /// The longest synchronous part of a snapshot.
    pub sync_ms: f64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    #[default]
    Checkpoint,
    Savepoint,
}

/// What a stateful node keeps: its aggregate (`sum`, `count`, ...) and its
/// key, as written in the spec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeShape {
    pub kind: String,
    pub key: String,
}

/// What one instance contributed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceState {
    pub node: String,
    pub instance: u32,
    pub parallelism: u32,
    /// The keyed state's files, oldest first: a full snapshot, then deltas.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRef>,
    /// Where a source was when it emitted the barrier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_position: Option<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// Relative to the store's root.
    pub path: String,
    pub size: u64,
    /// xxh3-64 of the whole file, 16 hex digits.
    pub checksum: String,
    pub kind: SnapshotKind,
    /// The checkpoint that wrote the file.
    pub checkpoint: u64,
}

/// Why a `_metadata` file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("`{path}` is not valid checkpoint metadata: {cause}")]
    Invalid { path: String, cause: String },
    #[error("`{path}` has format version {found}; this dataflow reads versions {OLDEST_READABLE} to {FORMAT_VERSION}")]
    Version { path: String, found: u32 },
}

impl Metadata {
    /// The one reader of `_metadata` (read from `path`, for messages).
    pub fn decode(bytes: &[u8], path: &str) -> Result<Metadata, MetadataError> {
        #[derive(Deserialize)]
        struct Version {
            format_version: u32,
        }
        let invalid = |e: serde_json::Error| MetadataError::Invalid {
            path: path.to_owned(),
            cause: e.to_string(),
        };
        // The version first: a newer format may not parse as this one.
        let found = serde_json::from_slice::<Version>(bytes)
            .map_err(invalid)?
            .format_version;
        if !(OLDEST_READABLE..=FORMAT_VERSION).contains(&found) {
            return Err(MetadataError::Version {
                path: path.to_owned(),
                found,
            });
        }
        serde_json::from_slice(bytes).map_err(invalid)
    }

    /// The ranges of [`Metadata::history`]; for a version 1 checkpoint,
    /// which did not record it, every number up to its own.
    pub fn past(&self) -> Vec<(u64, u64)> {
        if self.history.is_empty() {
            vec![(1, self.checkpoint_id)]
        } else {
            self.history.clone()
        }
    }

    /// Every file the checkpoint needs.
    pub fn files(&self) -> impl Iterator<Item = &FileRef> {
        self.instances.values().flat_map(|i| i.files.iter())
    }

    /// The size of everything a restore reads.
    pub fn total_size(&self) -> u64 {
        self.files().map(|f| f.size).sum()
    }

    /// The size of the files this checkpoint wrote itself.
    pub fn written_size(&self) -> u64 {
        self.files()
            .filter(|f| f.checkpoint == self.checkpoint_id)
            .map(|f| f.size)
            .sum()
    }

    /// Full when no instance's state depends on an earlier checkpoint.
    pub fn is_full(&self) -> bool {
        self.files().all(|f| f.checkpoint == self.checkpoint_id)
    }
}

pub fn hex(checksum: u64) -> String {
    format!("{checksum:016x}")
}

/// `past` followed by `from..=to`, adjacent ranges merged.
pub fn extend_history(past: &[(u64, u64)], from: u64, to: u64) -> Vec<(u64, u64)> {
    let mut history = past.to_vec();
    match history.last_mut() {
        Some(last) if last.1 + 1 >= from => last.1 = last.1.max(to),
        _ => history.push((from, to)),
    }
    history
}

/// Whether checkpoint `n` is in the ranges of a history.
pub fn in_history(history: &[(u64, u64)], n: u64) -> bool {
    history.iter().any(|(from, to)| (*from..=*to).contains(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histories_extend_and_merge() {
        assert_eq!(extend_history(&[], 4, 9), [(4, 9)]);
        assert_eq!(extend_history(&[(1, 5)], 6, 9), [(1, 9)]);
        assert_eq!(extend_history(&[(1, 5)], 9, 12), [(1, 5), (9, 12)]);
        let h = [(1, 5), (9, 12)];
        assert!(in_history(&h, 5) && in_history(&h, 9));
        assert!(!in_history(&h, 6) && !in_history(&h, 13) && !in_history(&h, 0));
    }
}
