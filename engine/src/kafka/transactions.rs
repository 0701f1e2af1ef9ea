//! The exactly-once `kafka` sink's transactions as a checkpoint records
//! them, and what a restore decides from them: plain data and pure
//! decisions, apart from the clients that act on them.
//!
//! Each sink instance writes through [`SLOTS`] transactional producers,
//! with ids stable across runs (`<prefix>-<instance>-<slot>`), so that a
//! restore can fence whatever a crashed run left open. At a barrier the
//! open transaction is flushed (pre-commit) and recorded in the checkpoint
//! as [`Pending`]: per partition, the runs of consecutive offsets its
//! records landed at, as the brokers acknowledged them. When the
//! checkpoint completes the transaction commits, and with it, atomically,
//! a marker: the number of the last checkpoint it covers, as the
//! committed offset of a consumer group named after the producer's
//! transactional id.
//!
//! librdkafka cannot resume another process's transaction (Flink does so
//! by reflection into the Java client), so a restore cannot commit what a
//! crashed run pre-committed. It does what a commit would have made
//! visible instead: a transaction the checkpoint records and whose marker
//! says it never committed was aborted by the fencing, but its records
//! are still in the log; the restore reads them back and writes them
//! again, with the marker, in one transaction.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::checkpoint::metadata::in_history;

/// Transactional producers per sink instance: one takes records while
/// the other's transaction waits for its checkpoint to complete.
pub const SLOTS: u32 = 2;

/// The header whose value named a message's transaction, in checkpoints
/// taken before the sink recorded exact runs of offsets.
pub const HEADER: &str = "dataflow-txn";

/// The transactional id of an instance's producer `slot`, also the name
/// of the consumer group that holds its marker.
pub fn transactional_id(prefix: &str, instance: u32, slot: u32) -> String {
    format!("{prefix}-{instance}-{slot}")
}

/// The transactional ids of every slot of instances `0..instances`.
pub fn transactional_ids(prefix: &str, instances: u32) -> impl Iterator<Item = String> + '_ {
    (0..instances).flat_map(move |i| (0..SLOTS).map(move |k| transactional_id(prefix, i, k)))
}

/// A transaction pre-committed at a barrier and not known to be
/// committed, as recorded in the checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The producer's transactional id.
    pub producer: String,
    /// The topic written (the sink's may have changed since).
    pub topic: String,
    /// The value of its records' [`HEADER`], in checkpoints of versions
    /// that tagged them; none, `partitions` holds exact runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The last checkpoint whose barrier it covers, as recorded; its
    /// commit sets the marker to this number or a later one.
    pub covers: u64,
    /// `(partition, first offset, count)`: the runs of consecutive offsets
    /// its records had landed at by that barrier (later ones belong to a
    /// later checkpoint), in offset order. Other producers' records and
    /// transaction markers land between runs. With a tag, one entry per
    /// partition: its first record, and how many with the tag from there.
    pub partitions: Vec<(i32, i64, u64)>,
}

impl Pending {
    /// Its runs of each partition, in offset order.
    pub fn runs(&self) -> BTreeMap<i32, Vec<(i64, u64)>> {
        let mut runs: BTreeMap<i32, Vec<(i64, u64)>> = BTreeMap::new();
        for &(partition, first, count) in &self.partitions {
            runs.entry(partition).or_default().push((first, count));
        }
        for of in runs.values_mut() {
            of.sort_unstable();
        }
        runs
    }
}

/// The offset after a run of `count` from `first`; a damaged checkpoint's
/// figures saturate rather than wrap.
pub fn run_end(first: i64, count: u64) -> i64 {
    first.saturating_add(i64::try_from(count).unwrap_or(i64::MAX))
}

/// `runs` sorted, with those that continue one another joined: the
/// acknowledgements of one run may come split (a run ends where its
/// messages' acknowledgements came out of order).
pub fn joined(mut runs: Vec<(i32, i64, u64)>) -> Vec<(i32, i64, u64)> {
    runs.sort_unstable();
    let mut out: Vec<(i32, i64, u64)> = Vec::with_capacity(runs.len());
    for (partition, first, count) in runs {
        match out.last_mut() {
            Some((p, f, n)) if *p == partition && run_end(*f, *n) == first => *n += count,
            _ => out.push((partition, first, count)),
        }
    }
    out
}

/// What a sink instance records in a checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub pending: Vec<Pending>,
}

/// The checkpoint a run restores, as far as markers are concerned.
pub struct Point<'a> {
    pub id: u64,
    /// Its past ([`crate::checkpoint::metadata::Metadata::past`]).
    pub past: &'a [(u64, u64)],
}

/// A producer's marker in one topic: the number of the last checkpoint
/// its last committed transaction covered (`None`: it never committed, or
/// a fresh start reset it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marker {
    pub producer: String,
    pub topic: String,
    pub value: Option<u64>,
}

/// Why a restore cannot go on.
#[derive(Debug, PartialEq, Eq)]
pub struct Newer {
    /// The producer whose marker is outside the restored checkpoint's past.
    pub producer: String,
    pub marker: u64,
}

/// Which of the checkpoint's pending transactions must be written again,
/// oldest first, given the producers' markers: in `topic`, the sink's
/// topic now, for every producer it may have had; in each pending
/// transaction's topic for its producer.
///
/// A marker in `topic` outside the restored checkpoint's past means the
/// topic holds output of a later checkpoint, or of another branch of the
/// job's history: a restore would write it again, and Kafka cannot take
/// messages back, so it is refused. Otherwise a transaction committed if
/// and only if its producer's marker in its topic reached the checkpoint
/// it covered when recorded: a producer's transactions commit in order,
/// each with the number of its last barrier, and the next one begins
/// after that barrier. Oldest first: a key's records are written again
/// in the order they were first written.
pub fn to_write_again<'p>(
    point: &Point,
    topic: &str,
    markers: &[Marker],
    pending: &'p [Pending],
) -> Result<Vec<&'p Pending>, Newer> {
    // Checkpoint numbers grow across a job's runs: a marker below the
    // first of the past is output from before it began (a run the one
    // that led here did not restore), which its records came after.
    let first = point.past.first().map_or(0, |(from, _)| *from);
    let value = |m: &Marker| m.value.filter(|v| *v >= first);
    for marker in markers.iter().filter(|m| m.topic == topic) {
        if let Some(v) = value(marker) {
            if v > point.id || !in_history(point.past, v) {
                return Err(Newer {
                    producer: marker.producer.clone(),
                    marker: v,
                });
            }
        }
    }
    let committed = |p: &Pending| {
        markers
            .iter()
            .find(|m| m.producer == p.producer && m.topic == p.topic)
            .and_then(value)
            .is_some_and(|v| v >= p.covers)
    };
    let mut again: Vec<&Pending> = pending.iter().filter(|p| !committed(p)).collect();
    again.sort_by_key(|p| p.covers);
    Ok(again)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(producer: &str, covers: u64) -> Pending {
        Pending {
            producer: producer.into(),
            topic: "t".into(),
            tag: None,
            covers,
            partitions: vec![(0, 10, 3)],
        }
    }

    const PAST: &[(u64, u64)] = &[(1, 4), (9, 12)];

    fn markers(of: &[(&str, Option<u64>)]) -> Vec<Marker> {
        of.iter()
            .map(|(producer, value)| Marker {
                producer: (*producer).into(),
                topic: "t".into(),
                value: *value,
            })
            .collect()
    }

    #[test]
    fn a_transaction_whose_marker_reached_its_checkpoint_committed() {
        let p = [pending("x-0-0", 11), pending("x-1-0", 12)];
        let markers = markers(&[("x-0-0", Some(11)), ("x-1-0", Some(10))]);
        let point = Point { id: 12, past: PAST };
        let again = to_write_again(&point, "t", &markers, &p).unwrap();
        assert_eq!(again, vec![&p[1]]);
    }

    #[test]
    fn a_producer_that_never_committed_writes_again() {
        let p = [pending("x-0-1", 3)];
        let markers = markers(&[("x-0-1", None)]);
        let point = Point { id: 4, past: PAST };
        assert_eq!(
            to_write_again(&point, "t", &markers, &p).unwrap(),
            vec![&p[0]]
        );
    }

    #[test]
    fn a_marker_after_the_checkpoint_is_newer_output() {
        let markers = markers(&[("x-0-0", Some(13))]);
        let point = Point { id: 12, past: PAST };
        assert_eq!(
            to_write_again(&point, "t", &markers, &[]),
            Err(Newer {
                producer: "x-0-0".into(),
                marker: 13
            })
        );
    }

    #[test]
    fn a_marker_of_another_branch_is_newer_output_too() {
        // Checkpoints 5 to 8 were taken by a run this checkpoint's past
        // does not include (the restore that led here started from 4).
        let markers = markers(&[("x-0-0", Some(6))]);
        let point = Point { id: 12, past: PAST };
        assert!(to_write_again(&point, "t", &markers, &[]).is_err());
    }

    #[test]
    fn a_marker_from_before_the_past_began_is_older_output() {
        // A fresh run took checkpoints 9 to 12 over a topic an earlier
        // run had written up to its checkpoint 6.
        let past = [(9, 12)];
        let p = [pending("x-0-1", 12)];
        let markers = markers(&[("x-0-1", Some(6))]);
        let point = Point {
            id: 12,
            past: &past,
        };
        assert_eq!(
            to_write_again(&point, "t", &markers, &p).unwrap(),
            vec![&p[0]]
        );
    }

    #[test]
    fn transactions_are_written_again_oldest_first() {
        let p = [pending("x-0-0", 12), pending("x-0-1", 11)];
        let point = Point { id: 12, past: PAST };
        let again = to_write_again(&point, "t", &[], &p).unwrap();
        assert_eq!(again, vec![&p[1], &p[0]]);
    }

    #[test]
    fn markers_of_another_topic_judge_only_its_transactions() {
        // The sink writes to `u` now; chk-12 recorded a transaction of `t`.
        let p = [pending("x-0-0", 12)];
        let old = markers(&[("x-0-0", Some(12))]);
        let point = Point { id: 12, past: PAST };
        assert!(to_write_again(&point, "u", &old, &p).unwrap().is_empty());
        // A newer marker in the old topic refuses nothing in the new one.
        let newer = markers(&[("x-0-0", Some(15))]);
        assert!(to_write_again(&point, "u", &newer, &[]).is_ok());
    }

    #[test]
    fn runs_that_continue_one_another_join() {
        let runs = vec![(1, 20, 2), (0, 5, 3), (0, 0, 5), (0, 9, 1), (1, 22, 1)];
        assert_eq!(joined(runs), vec![(0, 0, 8), (0, 9, 1), (1, 20, 3)]);
    }

    #[test]
    fn runs_group_by_partition_in_offset_order() {
        let mut p = pending("x-0-0", 3);
        p.partitions = vec![(2, 40, 1), (0, 9, 2), (2, 10, 4)];
        let runs = p.runs();
        assert_eq!(runs[&0], vec![(9, 2)]);
        assert_eq!(runs[&2], vec![(10, 4), (40, 1)]);
    }

    #[test]
    fn a_checkpoint_of_tagged_transactions_reads_back() {
        let json = serde_json::json!({"pending": [{"producer": "x-0-0", "topic": "t",
            "tag": "abc.1", "covers": 4, "partitions": [[0, 10, 3]]}]});
        let recorded: Recorded = serde_json::from_value(json).unwrap();
        assert_eq!(recorded.pending[0].tag.as_deref(), Some("abc.1"));
        assert_eq!(recorded.pending[0].partitions, vec![(0, 10, 3)]);
    }

    #[test]
    fn recorded_transactions_read_back_as_written() {
        let recorded = Recorded {
            pending: vec![pending("x-0-0", 7)],
        };
        let json = serde_json::to_value(&recorded).unwrap();
        assert_eq!(serde_json::from_value::<Recorded>(json).unwrap(), recorded);
    }
}
