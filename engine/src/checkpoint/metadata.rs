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
use crate::plan::settings::CheckpointMode;

/// The largest `_metadata` read back. A job's metadata lists its files and
/// its sources' positions (a file source's finished files among them);
/// anything larger is not one, whatever it claims.
pub const MAX_BYTES: u64 = 64 << 20;

/// Bumped whenever the format changes. Version 2 added the run identity
/// (`run`, `restored_from`) and savepoints (`kind`); version 3 a checksum
/// (`checksum`) over every value; version 4 where each instance was in
/// event time (`event_time`). Versions 1 and 2 are still read, without
/// a checksum; version 1 as a checkpoint of an unknown earlier run.
pub const FORMAT_VERSION: u32 = 4;
/// The first version with a checksum.
const CHECKSUMMED: u32 = 3;
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
    /// What a transactional sink had pre-committed at the barrier and not
    /// yet committed: a restore finishes the commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink_pending: Option<serde_json::Value>,
    /// Where the instance was in event time, if it has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<TimeState>,
}

/// Where an instance was in event time at the barrier: what lets a restore
/// judge each later record late or on time as the run before would have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeState {
    /// A source with `event_time`: the newest time it had read.
    NewestRead(i64),
    /// The first node of a chain that reads channels: the watermark it
    /// had passed on.
    Watermark(i64),
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
    #[error("`{path}` is not valid checkpoint metadata: {source}")]
    Invalid {
        path: String,
        source: serde_json::Error,
    },
    #[error("`{path}` is damaged: {why}")]
    Damaged { path: String, why: Damage },
    #[error("`{path}` has format version {found}; this dataflow reads versions {OLDEST_READABLE} to {FORMAT_VERSION}")]
    Version { path: String, found: u32 },
}

/// What is wrong in a `_metadata` that parses: values no run writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    #[error("its values have checksum {sum}, but it records {recorded}")]
    Checksum { sum: String, recorded: String },
    #[error("its checksum is missing")]
    NoChecksum,
    #[error("format version {version} has no checksum, but one is there")]
    UnexpectedChecksum { version: u32 },
    #[error("checkpoint number {id} is out of range")]
    Id { id: u64 },
    #[error(
        "max_parallelism {found} is not between 1 and {}",
        crate::plan::MAX_KEY_GROUPS
    )]
    MaxParallelism { found: u32 },
    #[error("its history {history:?} is not ascending up to {id}")]
    History { history: Vec<(u64, u64)>, id: u64 },
    #[error("its history {history:?} does not end at {id}")]
    HistoryEnd { history: Vec<(u64, u64)>, id: u64 },
    #[error("instance `{name}` is recorded as {node}#{instance}")]
    InstanceName {
        name: String,
        node: String,
        instance: u32,
    },
    #[error(
        "{name} is instance {instance} of {parallelism}, with max_parallelism {max_parallelism}"
    )]
    Instance {
        name: String,
        instance: u32,
        parallelism: u32,
        max_parallelism: u32,
    },
    #[error("{name}'s files are not a full snapshot followed by deltas of checkpoints up to {id}")]
    Chain { name: String, id: u64 },
    #[error("{name} names a file `{path}` with checksum `{checksum}`")]
    File {
        name: String,
        path: String,
        checksum: String,
    },
    #[error("{name}'s source position is not an object")]
    Position { name: String },
}

impl Metadata {
    /// The one reader of `_metadata` (read from `path`, for messages).
    pub fn decode(bytes: &[u8], path: &str) -> Result<Metadata, MetadataError> {
        #[derive(Deserialize)]
        struct Version {
            format_version: u32,
        }
        let invalid = |source: serde_json::Error| MetadataError::Invalid {
            path: path.to_owned(),
            source,
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
        let mut fields: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(bytes).map_err(invalid)?;
        let damaged = |why: Damage| MetadataError::Damaged {
            path: path.to_owned(),
            why,
        };
        let recorded = fields.remove("checksum");
        let metadata: Metadata =
            serde_json::from_value(serde_json::Value::Object(fields)).map_err(invalid)?;
        match (found >= CHECKSUMMED, recorded) {
            (true, Some(serde_json::Value::String(recorded))) => {
                let sum = metadata.checksum();
                if sum != recorded {
                    return Err(damaged(Damage::Checksum { sum, recorded }));
                }
            }
            (true, _) => return Err(damaged(Damage::NoChecksum)),
            (false, None) => {}
            (false, Some(_)) => return Err(damaged(Damage::UnexpectedChecksum { version: found })),
        }
        metadata.validate().map_err(damaged)?;
        Ok(metadata)
    }

    /// The one writer of `_metadata`: the fields, and a checksum over them.
    pub fn encode(&self) -> Vec<u8> {
        let mut fields = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(fields)) => fields,
            _ => serde_json::Map::new(),
        };
        fields.insert("checksum".into(), self.checksum().into());
        serde_json::to_vec_pretty(&fields).unwrap_or_default()
    }

    /// xxh3 of the values' canonical form (their compact JSON in field
    /// order), so that any change to a value a restore reads shows, however
    /// the file is laid out.
    fn checksum(&self) -> String {
        hex(xxhash_rust::xxh3::xxh3_64(
            &serde_json::to_vec(self).unwrap_or_default(),
        ))
    }

    /// Checks every value against what it can be: anything else is damage
    /// (or a hand edit) that would restore the wrong state or position.
    fn validate(&self) -> Result<(), Damage> {
        let id = self.checkpoint_id;
        if id == 0 || id > super::layout::MAX_CHECKPOINT_ID {
            return Err(Damage::Id { id });
        }
        if !(1..=crate::plan::MAX_KEY_GROUPS).contains(&self.max_parallelism) {
            return Err(Damage::MaxParallelism {
                found: self.max_parallelism,
            });
        }
        let mut last = 0;
        for (i, (from, to)) in self.history.iter().enumerate() {
            if from > to || *from <= last && i > 0 || *to > id {
                return Err(Damage::History {
                    history: self.history.clone(),
                    id,
                });
            }
            last = *to;
        }
        if !self.history.is_empty() && last != id {
            return Err(Damage::HistoryEnd {
                history: self.history.clone(),
                id,
            });
        }
        for (name, state) in &self.instances {
            if *name != format!("{}#{}", state.node, state.instance) {
                return Err(Damage::InstanceName {
                    name: name.clone(),
                    node: state.node.clone(),
                    instance: state.instance,
                });
            }
            if state.parallelism == 0
                || state.instance >= state.parallelism
                || state.parallelism > self.max_parallelism
            {
                return Err(Damage::Instance {
                    name: name.clone(),
                    instance: state.instance,
                    parallelism: state.parallelism,
                    max_parallelism: self.max_parallelism,
                });
            }
            for (i, file) in state.files.iter().enumerate() {
                let kind_fits = (i == 0) == (file.kind == SnapshotKind::Full);
                let from_before = state.files[..i]
                    .last()
                    .is_none_or(|p| p.checkpoint < file.checkpoint);
                if !kind_fits || !from_before || file.checkpoint > id || file.checkpoint == 0 {
                    return Err(Damage::Chain {
                        name: name.clone(),
                        id,
                    });
                }
                let hex_ok = file.checksum.len() == 16
                    && file.checksum.bytes().all(|b| b.is_ascii_hexdigit());
                if !hex_ok || file.path.is_empty() || file.path.split('/').any(|part| part == "..")
                {
                    return Err(Damage::File {
                        name: name.clone(),
                        path: file.path.clone(),
                        checksum: file.checksum.clone(),
                    });
                }
            }
            if [&state.source_position, &state.sink_pending]
                .iter()
                .any(|p| p.as_ref().is_some_and(|p| !p.is_object()))
            {
                return Err(Damage::Position { name: name.clone() });
            }
        }
        Ok(())
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

    fn sample() -> Metadata {
        let file = |path: &str, kind, checkpoint| FileRef {
            path: path.into(),
            size: 120,
            checksum: "00ff00ff00ff00ff".into(),
            kind,
            checkpoint,
        };
        let instance = |node: &str, i, files, position| InstanceState {
            node: node.into(),
            instance: i,
            parallelism: 2,
            files,
            source_position: position,
            sink_pending: None,
            event_time: None,
        };
        Metadata {
            format_version: FORMAT_VERSION,
            job: "wc".into(),
            spec_hash: "abc".into(),
            checkpoint_id: 17,
            kind: Kind::Checkpoint,
            run: "3f9c2a71b0e4".into(),
            restored_from: Some("file:///cp/wc/chk-9".into()),
            history: vec![(1, 9), (12, 17)],
            triggered_at_ms: 1_700_000_000_000,
            completed_at_ms: 1_700_000_000_042,
            mode: CheckpointMode::ExactlyOnce,
            incremental: true,
            max_parallelism: 128,
            nodes: [("counts".to_owned(), NodeShape { kind: "sum".into(), key: "word".into() })].into(),
            instances: [
                ("counts#0".to_owned(), instance("counts", 0, vec![
                    file("wc/shared/counts-0-12.full", SnapshotKind::Full, 12),
                    file("wc/shared/counts-0-17.delta", SnapshotKind::Delta, 17),
                ], None)),
                ("lines#1".to_owned(), InstanceState {
                    event_time: Some(TimeState::NewestRead(1_714_558_530_250)),
                    ..instance("lines", 1, vec![], Some(serde_json::json!({
                        "done": ["/in/a.txt"], "reading": {"path": "/in/c.txt", "offset": 123456, "line": 99}
                    })))
                }),
                ("counts#1".to_owned(), InstanceState {
                    event_time: Some(TimeState::Watermark(-5)),
                    ..instance("counts", 1, vec![], None)
                }),
            ]
            .into(),
            alignment_ms: 1.25,
            sync_ms: 0.5,
        }
    }

    #[test]
    fn metadata_round_trips_through_its_one_writer_and_reader() {
        let m = sample();
        assert_eq!(Metadata::decode(&m.encode(), "m").unwrap(), m);
    }

    /// Every single-bit flip anywhere in `_metadata` is refused, or leaves
    /// every value as written (a flip in layout or in a key whose value
    /// is its default): never a different checkpoint.
    #[test]
    fn no_single_bit_flip_changes_what_a_restore_reads() {
        let m = sample();
        let bytes = m.encode();
        let mut refused = 0;
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            match Metadata::decode(&damaged, "m") {
                Ok(read) => assert_eq!(read, m, "flip of bit {bit} read as another checkpoint"),
                Err(_) => refused += 1,
            }
        }
        assert!(
            refused > bytes.len() * 8 * 9 / 10,
            "{refused} of {} refused",
            bytes.len() * 8
        );
    }

    #[test]
    fn hand_edits_and_impossible_values_are_refused() {
        let text = String::from_utf8(sample().encode()).unwrap();
        for (from, to) in [
            ("123456", "123457"),
            ("\"done\": [\n", "\"done\": [\"/in/c.txt\",\n"),
            ("\"format_version\": 4", "\"format_version\": 2"),
        ] {
            assert!(text.contains(from), "{from}");
            let edited = text.replacen(from, to, 1);
            let err = Metadata::decode(edited.as_bytes(), "m")
                .unwrap_err()
                .to_string();
            assert!(err.contains("is damaged"), "{from} → {to}: {err}");
        }
        let impossible: [fn(&mut Metadata); 6] = [
            |m| m.max_parallelism = u32::MAX,
            |m| m.checkpoint_id = u64::MAX,
            |m| m.history = vec![(12, 17), (1, 9)],
            |m| m.instances.get_mut("counts#0").unwrap().instance = 5,
            |m| m.instances.get_mut("counts#0").unwrap().files.reverse(),
            |m| m.instances.get_mut("counts#0").unwrap().files[0].path = "../../etc/passwd".into(),
        ];
        for (i, change) in impossible.iter().enumerate() {
            let mut m = sample();
            change(&mut m);
            let err = Metadata::decode(&m.encode(), "m").unwrap_err().to_string();
            assert!(err.contains("is damaged"), "change {i}: {err}");
        }
    }

    /// The time figures are floats: whatever their value, the reader must
    /// get back the very float the writer wrote, or the checksum over the
    /// values would call an intact checkpoint damaged (CI stop 21: a
    /// `sync_ms` of 1.0023549999999999 read back one bit off).
    #[test]
    fn a_checkpoint_with_the_value_that_failed_ci_reads_back_intact() {
        let mut m = sample();
        m.sync_ms = 1.002_354_999_999_999_9;
        assert_eq!(Metadata::decode(&m.encode(), "m").unwrap(), m);
    }

    /// The two tests above pass in any test build, because a test-only
    /// dependency (jsonschema) turns on serde_json's `float_roundtrip`; the
    /// binary a user builds has only what the engine itself asks for. So
    /// ask cargo what that build gets.
    #[test]
    fn the_engine_itself_asks_for_exact_float_parsing() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = std::process::Command::new(cargo)
            .args([
                "tree",
                "--offline",
                "-e",
                "normal,features",
                "-i",
                "serde_json",
                "-p",
                "dataflow",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo tree runs");
        let tree = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "cargo tree: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            tree.contains("serde_json feature \"float_roundtrip\""),
            "the engine's own build lacks serde_json's float_roundtrip:\n{tree}"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_time_figures_read_back_intact(
            alignment_ms in 0.0..1e9f64,
            sync_ms in proptest::num::f64::POSITIVE | proptest::num::f64::ZERO,
        ) {
            let mut m = sample();
            m.alignment_ms = alignment_ms;
            m.sync_ms = sync_ms;
            proptest::prop_assert_eq!(Metadata::decode(&m.encode(), "m").unwrap(), m);
        }
    }

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
