//! What can go wrong finding, reading, restoring and guarding checkpoints.

use super::inspect::RestoreError;
use super::metadata::MetadataError;
use super::snapshot::SnapshotError;
use super::store::StoreError;
use crate::error::{Class, Classify};
use crate::plan::StoreLocationError;

/// Why a checkpoint or savepoint cannot be found, read or used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error(transparent)]
    File(#[from] RestoreError),
    #[error("`{path}` is damaged: {source}")]
    Snapshot { path: String, source: SnapshotError },
    #[error("`{path}` describes checkpoint {id} of job `{job}`")]
    Misplaced { path: String, id: u64, job: String },
    #[error("`{from}` is not a checkpoint: use `latest`, a name such as `chk-17` or `sp-17`, or a full location")]
    NotAPoint { from: String },
    #[error(
        "`{text}` is not a location: give an absolute folder path or a URI (file:///…, s3://…)"
    )]
    NotALocation { text: String },
    #[error(transparent)]
    Location(#[from] StoreLocationError),
    #[error("there is no savepoint {name} at {location}")]
    NoSavepoint { name: String, location: String },
    #[error("`{from}` is neither a savepoint (a folder with a `_metadata` file) nor a checkpoint's location (<store>/<job>/chk-<N>)")]
    NeitherFolder { from: String },
    #[error("there is no checkpoint chk-{id} in {here}; {available}")]
    NoSuchCheckpoint {
        id: u64,
        here: String,
        available: String,
    },
    /// `latest` found nothing to restore; `damaged` counts the
    /// checkpoints it passed over.
    #[error("no intact checkpoint to restore in {here}")]
    NoIntact { here: String, damaged: usize },
    #[error("chk-{id} in {here} is incomplete (it has no _metadata: it was aborted or never finished); {available}")]
    Incomplete {
        id: u64,
        here: String,
        available: String,
    },
    /// `why` is the damage as found, and `class` whose failure it is.
    #[error("chk-{id} in {here} cannot be restored: {why}")]
    Damaged {
        id: u64,
        here: String,
        why: String,
        class: Class,
    },
    #[error("the savepoint at {at} is damaged: {source}")]
    DamagedSavepoint {
        at: String,
        source: Box<CheckpointError>,
    },
    #[error("the spec has no `checkpoint:` section, so there is no store to restore from")]
    NoStore,
    #[error(
        "the spec has no `checkpoint:` section: give the location of a checkpoint or savepoint"
    )]
    NeedsLocation,
    /// The spec cannot take the checkpoint's state: every reason, one per line.
    #[error("{}", .reasons.join("\n"))]
    Refused { reasons: Vec<String> },
    #[error("cannot write the job's lease: {0}")]
    LeaseWrite(StoreError),
    #[error("another run of job `{job}` is running: {holder}")]
    Busy { job: String, holder: String },
    #[error("cannot {action} `{path}`: {source}")]
    Lock {
        action: &'static str,
        path: String,
        source: std::io::Error,
    },
}

impl Classify for CheckpointError {
    fn class(&self) -> Class {
        use CheckpointError as E;
        match self {
            E::Store(e) | E::LeaseWrite(e) => e.class(),
            E::Metadata(e) => e.class(),
            E::File(e) => e.class(),
            E::DamagedSavepoint { source, .. } => source.class(),
            E::Lock { source, .. } => crate::error::io_class(source),
            E::Damaged { class, .. } => *class,
            E::Snapshot { .. } | E::Misplaced { .. } => Class::External,
            E::NoIntact { damaged, .. } if *damaged > 0 => Class::External,
            E::NotAPoint { .. }
            | E::NotALocation { .. }
            | E::Location(_)
            | E::NoSavepoint { .. }
            | E::NeitherFolder { .. }
            | E::NoSuchCheckpoint { .. }
            | E::NoIntact { .. }
            | E::Incomplete { .. }
            | E::NoStore
            | E::NeedsLocation
            | E::Refused { .. }
            | E::Busy { .. } => Class::User,
        }
    }
}

impl Classify for StoreError {
    /// A store that fails, or lacks a file a checkpoint names, is outside
    /// the engine; where a user named a checkpoint that is not there, the
    /// caller says so as its own error.
    fn class(&self) -> Class {
        match self {
            StoreError::NoFolder { .. } => Class::User,
            StoreError::Failed { class, .. } | StoreError::Open { class, .. } => *class,
            StoreError::NotFound { .. } => Class::External,
        }
    }
}

impl Classify for MetadataError {
    fn class(&self) -> Class {
        match self {
            // Written by a newer dataflow: the user runs the wrong one.
            MetadataError::Version { .. } => Class::User,
            MetadataError::Invalid { .. } | MetadataError::Damaged { .. } => Class::External,
        }
    }
}

impl Classify for RestoreError {
    fn class(&self) -> Class {
        match self {
            RestoreError::Store(e) => e.class(),
            RestoreError::Damaged { .. } => Class::External,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_checkpoint_is_outside_but_one_from_a_newer_dataflow_is_the_users() {
        let newer = CheckpointError::Metadata(MetadataError::Version {
            path: "wc/chk-3/_metadata".into(),
            found: 99,
        });
        assert_eq!(newer.class(), Class::User);
        let torn = CheckpointError::File(RestoreError::Damaged {
            path: "wc/shared/counts-0-3.full".into(),
            why: "12 bytes, but the checkpoint recorded 40".into(),
        });
        assert_eq!(torn.class(), Class::External);
        // A named checkpoint keeps the class of what is wrong with it.
        for (why, class) in [(newer, Class::User), (torn, Class::External)] {
            let named = CheckpointError::Damaged {
                id: 3,
                here: "file:///cp/wc".into(),
                why: why.to_string(),
                class: why.class(),
            };
            assert_eq!(named.class(), class, "{named}");
        }
        let none = |damaged| CheckpointError::NoIntact {
            here: "file:///cp/wc".into(),
            damaged,
        };
        assert_eq!(none(0).class(), Class::User, "nothing to restore yet");
        assert_eq!(none(2).class(), Class::External, "all damaged");
    }
}
