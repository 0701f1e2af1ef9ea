//! What to restore from: pure decisions over names and over what a store
//! holds, apart from reading it (`restore.rs` does the reading).

use super::error::CheckpointError;
use super::inspect::{Found, FoundState};
use super::layout::{parse_checkpoint_name, parse_savepoint_name};
use super::metadata::Metadata;
use crate::error::Classify;

/// What `--from` names.
#[derive(Debug, PartialEq, Eq)]
pub enum Point {
    /// The newest intact checkpoint of the job in the spec's store.
    Latest,
    /// `chk-N` in the spec's store.
    Checkpoint(u64),
    /// `sp-N`: a savepoint in its default folder of the spec's store.
    Savepoint(u64),
    /// A folder, as a URI or an absolute path: a savepoint's, or a
    /// checkpoint's (`<store>/<job>/chk-N`).
    Location(String),
}

/// Reads what the user typed after `--from`.
pub fn parse_point(from: &str) -> Result<Point, CheckpointError> {
    if from == "latest" {
        Ok(Point::Latest)
    } else if let Some(id) = parse_checkpoint_name(from) {
        Ok(Point::Checkpoint(id))
    } else if let Some(id) = parse_savepoint_name(from) {
        Ok(Point::Savepoint(id))
    } else if from.contains("://") || from.starts_with('/') {
        Ok(Point::Location(from.to_owned()))
    } else {
        Err(CheckpointError::NotAPoint {
            from: from.to_owned(),
        })
    }
}

/// A checkpoint's folder (`<root>/<job>/chk-N`, without a trailing `/`)
/// split into the store's root, the job and the number.
pub fn split_checkpoint_folder(folder: &str) -> Option<(String, String, u64)> {
    let mut parts = folder.trim_end_matches('/').rsplitn(3, '/');
    let (name, job, parent) = (parts.next()?, parts.next()?, parts.next());
    let id = parse_checkpoint_name(name)?;
    if job.is_empty() {
        return None;
    }
    let root = match parent {
        Some(p) if !p.is_empty() => p.to_owned(),
        _ => "/".to_owned(),
    };
    Some((root, job.to_owned(), id))
}

/// The checkpoint chosen among those found, with notes for the user.
#[derive(Debug)]
pub struct Chosen<'a> {
    pub id: u64,
    pub metadata: &'a Metadata,
    /// Damaged newer checkpoints that `latest` passed over, and what it took instead.
    pub notes: Vec<String>,
}

/// Chooses among the checkpoints `found` (oldest first) in the job folder
/// `here`: checkpoint `wanted`, or without one the newest intact one. A
/// damaged or incomplete checkpoint asked for by name is refused, naming
/// the ones that can be restored; `latest` falls back past damaged ones
/// and says so.
pub fn choose<'a>(
    found: &'a [Found],
    wanted: Option<u64>,
    here: &str,
) -> Result<Chosen<'a>, CheckpointError> {
    let available = || {
        let names: Vec<String> = found
            .iter()
            .filter(|f| matches!(f.state, FoundState::Valid(_)))
            .map(|f| format!("chk-{}", f.id))
            .collect();
        if names.is_empty() {
            format!("there are no complete checkpoints in {here}")
        } else {
            format!("the complete ones are: {}", names.join(", "))
        }
    };
    let mut notes = Vec::new();
    let chosen =
        match wanted {
            Some(id) => found.iter().find(|f| f.id == id).ok_or_else(|| {
                CheckpointError::NoSuchCheckpoint {
                    id,
                    here: here.to_owned(),
                    available: available(),
                }
            })?,
            None => {
                let mut chosen = None;
                for f in found.iter().rev() {
                    match &f.state {
                        FoundState::Valid(_) => {
                            chosen = Some(f);
                            break;
                        }
                        FoundState::Damaged(why) => notes.push(format!(
                            "chk-{} is damaged ({why}); trying an older one",
                            f.id
                        )),
                        FoundState::Incomplete => {}
                    }
                }
                let f = chosen.ok_or_else(|| CheckpointError::NoIntact {
                    here: here.to_owned(),
                    damaged: notes.len(),
                })?;
                if !notes.is_empty() {
                    notes.push(format!(
                        "restoring from chk-{}, the newest intact checkpoint",
                        f.id
                    ));
                }
                f
            }
        };
    match &chosen.state {
        FoundState::Valid(metadata) => Ok(Chosen {
            id: chosen.id,
            metadata,
            notes,
        }),
        FoundState::Incomplete => Err(CheckpointError::Incomplete {
            id: chosen.id,
            here: here.to_owned(),
            available: available(),
        }),
        FoundState::Damaged(why) => Err(CheckpointError::Damaged {
            id: chosen.id,
            here: here.to_owned(),
            why: why.to_string(),
            class: why.class(),
        }),
    }
}

/// Where an automatic restart resumes: the run's own newest completed
/// checkpoint or, where none has completed, where the run started
/// (`None`: from the beginning). Never another run's checkpoint.
#[derive(Debug, PartialEq, Eq)]
pub enum Restart<T> {
    Own(u64),
    Start(Option<T>),
}

pub fn restart_from<T>(own_latest: Option<u64>, started_from: Option<T>) -> Restart<T> {
    match own_latest {
        Some(id) => Restart::Own(id),
        None => Restart::Start(started_from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::inspect::RestoreError;

    #[test]
    fn points_are_read_from_what_the_user_typed() {
        assert_eq!(parse_point("latest").ok(), Some(Point::Latest));
        assert_eq!(parse_point("chk-17").ok(), Some(Point::Checkpoint(17)));
        assert_eq!(parse_point("sp-4").ok(), Some(Point::Savepoint(4)));
        assert_eq!(
            parse_point("/tmp/sp").ok(),
            Some(Point::Location("/tmp/sp".into()))
        );
        assert_eq!(
            parse_point("s3://b/x/wc/chk-3").ok(),
            Some(Point::Location("s3://b/x/wc/chk-3".into()))
        );
        for bad in ["newest", "chk-", "chk-1x", "sp-", "relative/chk-1", ""] {
            assert!(parse_point(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn checkpoint_folders_split_into_root_job_and_number() {
        assert_eq!(
            split_checkpoint_folder("/var/cp/wc/chk-17/"),
            Some(("/var/cp".into(), "wc".into(), 17))
        );
        assert_eq!(
            split_checkpoint_folder("/wc/chk-1"),
            Some(("/".into(), "wc".into(), 1))
        );
        assert_eq!(split_checkpoint_folder("/chk-1"), None);
        assert_eq!(split_checkpoint_folder("/var/cp/wc/savepoint"), None);
    }

    fn found(states: &[(u64, &str)]) -> Vec<Found> {
        states
            .iter()
            .map(|(id, state)| Found {
                id: *id,
                state: match *state {
                    "valid" => {
                        let mut m: Metadata = serde_json::from_str(METADATA).unwrap();
                        m.checkpoint_id = *id;
                        FoundState::Valid(Box::new(m))
                    }
                    "incomplete" => FoundState::Incomplete,
                    why => FoundState::Damaged(Box::new(CheckpointError::File(
                        RestoreError::Damaged {
                            path: "counts-0.full".into(),
                            why: why.into(),
                        },
                    ))),
                },
            })
            .collect()
    }

    const METADATA: &str = r#"{"format_version":2,"job":"wc","spec_hash":"","checkpoint_id":0,
        "triggered_at_ms":0,"completed_at_ms":0,"mode":"exactly_once","incremental":false,
        "max_parallelism":128,"instances":{},"alignment_ms":0.0,"sync_ms":0.0}"#;

    #[test]
    fn latest_is_the_newest_intact_checkpoint_and_says_what_it_passed_over() {
        let f = found(&[
            (3, "valid"),
            (4, "valid"),
            (5, "checksum differs"),
            (6, "incomplete"),
        ]);
        let chosen = choose(&f, None, "here").unwrap();
        assert_eq!(chosen.id, 4);
        assert_eq!(chosen.metadata.checkpoint_id, 4);
        assert_eq!(
            chosen.notes,
            [
                "chk-5 is damaged (`counts-0.full` is damaged: checksum differs); trying an older one",
                "restoring from chk-4, the newest intact checkpoint"
            ]
        );
        let f = found(&[(3, "valid"), (4, "incomplete")]);
        assert!(
            choose(&f, None, "here").unwrap().notes.is_empty(),
            "an aborted one is no news"
        );
        let f = found(&[(1, "bad"), (2, "incomplete")]);
        assert_eq!(
            choose(&f, None, "here").unwrap_err().to_string(),
            "no intact checkpoint to restore in here"
        );
    }

    #[test]
    fn a_named_checkpoint_is_that_one_or_a_refusal_naming_the_alternatives() {
        let f = found(&[(3, "valid"), (4, "incomplete"), (5, "truncated")]);
        assert_eq!(choose(&f, Some(3), "here").unwrap().id, 3);
        assert_eq!(
            choose(&f, Some(9), "here").unwrap_err().to_string(),
            "there is no checkpoint chk-9 in here; the complete ones are: chk-3"
        );
        assert!(choose(&f, Some(4), "here")
            .unwrap_err()
            .to_string()
            .contains("chk-4 in here is incomplete"));
        assert_eq!(
            choose(&f, Some(5), "here").unwrap_err().to_string(),
            "chk-5 in here cannot be restored: `counts-0.full` is damaged: truncated"
        );
    }

    #[test]
    fn a_restart_resumes_from_the_runs_own_checkpoint_or_where_it_started() {
        assert_eq!(restart_from(Some(7), Some("sp-3")), Restart::Own(7));
        assert_eq!(
            restart_from(None, Some("sp-3")),
            Restart::Start(Some("sp-3"))
        );
        assert_eq!(restart_from::<&str>(None, None), Restart::Start(None));
    }
}
