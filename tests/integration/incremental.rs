//! Incremental snapshots at scale, through the library's own uploader and
//! store: 1,000,000 keys, then 1,000 of them changed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dataflow::checkpoint::metadata::FileRef;
use dataflow::checkpoint::restore::load_chain;
use dataflow::checkpoint::store::{CheckpointStore, OpendalStore};
use dataflow::checkpoint::uploader::{self, UploadTask, UploaderConfig};
use dataflow::checkpoint::{Ack, Report};
use dataflow::plan::StoreLocation;
use dataflow::state::memory::MemoryState;
use dataflow::state::{encode_key, key_group, KeyedState};
use dataflow::value::Value;

use crate::s3::S3Server;

const KEYS: i64 = 1_000_000;

fn put(state: &mut MemoryState, key: i64, value: i64) {
    let mut k = Vec::new();
    encode_key(&Value::Int(key), &mut k);
    *state.value_mut(key_group(&k, 128), &k).unwrap() = Some(Value::Int(value));
}

struct Snapshotter {
    tasks: crossbeam_channel::Sender<UploadTask>,
    reports: crossbeam_channel::Receiver<Report>,
}

impl Snapshotter {
    fn new(store: Arc<dyn CheckpointStore>, job: &str, incremental: bool) -> Snapshotter {
        let (tx, reports) = crossbeam_channel::bounded(4);
        let config = UploaderConfig {
            job: job.into(),
            node: "sums".into(),
            index: 0,
            incremental,
            max_chain: 10,
        };
        Snapshotter {
            tasks: uploader::spawn(config, store, tx, 1).unwrap(),
            reports,
        }
    }

    /// Takes checkpoint `id` of `state` and returns its chain.
    fn checkpoint(&self, id: u64, state: &mut MemoryState) -> (Vec<FileRef>, Duration) {
        let taken = self.snapshot(id, state);
        self.tasks.send(UploadTask::Completed(id)).unwrap();
        taken
    }

    /// Writes checkpoint `id` of `state`, not yet completed.
    fn snapshot(&self, id: u64, state: &mut MemoryState) -> (Vec<FileRef>, Duration) {
        let started = Instant::now();
        let changes = state.take_changes().unwrap();
        let sync = started.elapsed();
        let ack = Ack {
            id,
            instance: "sums#0".into(),
            node: "sums".into(),
            index: 0,
            parallelism: 1,
            files: Vec::new(),
            source_position: None,
            sink_pending: None,
            event_time: None,
            sync,
            alignment: Duration::ZERO,
            upload: Duration::ZERO,
        };
        self.tasks
            .send(UploadTask::Snapshot {
                changes,
                ack: Box::new(ack),
            })
            .unwrap();
        match self.reports.recv().unwrap() {
            Report::Ack(ack) => (ack.files, sync),
            Report::Declined { cause, .. } => panic!("snapshot {id} failed: {cause}"),
            Report::InputEnded { .. } => unreachable!("no source here"),
        }
    }
}

fn check(store: Arc<dyn CheckpointStore>, name: &str) {
    let mut state = MemoryState::new(true);
    for k in 0..KEYS {
        put(&mut state, k, k);
    }
    let snapshots = Snapshotter::new(Arc::clone(&store), "inc", true);
    let (first, _) = snapshots.checkpoint(1, &mut state);
    assert_eq!(first.len(), 1);
    for k in (0..KEYS).step_by((KEYS / 1000) as usize) {
        put(&mut state, k, k + 1);
    }
    let (second, sync) = snapshots.checkpoint(2, &mut state);
    assert_eq!(second.len(), 2, "a full snapshot and one delta");
    let (full, delta) = (second[0].size, second[1].size);
    eprintln!(
        "{name}: full {full} bytes, delta after 1,000 of 1,000,000 keys changed {delta} bytes ({:.3}%), synchronous part {:?}",
        100.0 * delta as f64 / full as f64,
        sync
    );
    assert!((delta as f64) < 0.02 * full as f64);

    // The chain restores to what a full snapshot of the same state holds.
    let restored = load_chain(&*store, &second, 128, |_| true).unwrap();
    let mut same = MemoryState::new(true);
    for k in 0..KEYS {
        put(&mut same, k, if k % (KEYS / 1000) == 0 { k + 1 } else { k });
    }
    let (full_chain, _) =
        Snapshotter::new(Arc::clone(&store), "inc-full", false).checkpoint(1, &mut same);
    let expected = load_chain(&*store, &full_chain, 128, |_| true).unwrap();
    assert_eq!(restored.len(), KEYS as usize);
    assert!(
        restored == expected,
        "{name}: the restored chain differs from a full snapshot"
    );
    // Only some key groups: a restore at another parallelism reads just its share.
    let half = load_chain(&*store, &second, 128, |kg| kg < 64).unwrap();
    assert!(half.keys().all(|(kg, _)| *kg < 64) && !half.is_empty() && half.len() < restored.len());
}

#[test]
fn an_incremental_checkpoint_writes_under_2_percent_and_restores_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let file = StoreLocation::parse(&format!("file://{}", dir.path().display())).unwrap();
    check(Arc::new(OpendalStore::open(&file).unwrap()), "file");
    let server = S3Server::start();
    let s3 = StoreLocation::parse(&server.store_url("inc")).unwrap();
    check(Arc::new(OpendalStore::open(&s3).unwrap()), "s3");
}

#[test]
fn a_delta_over_checkpoints_in_flight_keeps_the_latest_value() {
    // Checkpoints 1, 2 and 3 in flight, key 7 changed in 2 and in 3; 1
    // completes, then 4 writes a delta over 1 holding 2's and 3's changes.
    let dir = tempfile::tempdir().unwrap();
    let location = StoreLocation::parse(&format!("file://{}", dir.path().display())).unwrap();
    let store: Arc<dyn CheckpointStore> = Arc::new(OpendalStore::open(&location).unwrap());
    let snapshots = Snapshotter::new(Arc::clone(&store), "inflight", true);
    let mut state = MemoryState::new(true);
    put(&mut state, 7, 1);
    snapshots.snapshot(1, &mut state);
    put(&mut state, 7, 2);
    snapshots.snapshot(2, &mut state);
    put(&mut state, 7, 3);
    snapshots.snapshot(3, &mut state);
    snapshots.tasks.send(UploadTask::Completed(1)).unwrap();
    put(&mut state, 8, 1);
    let (chain, _) = snapshots.checkpoint(4, &mut state);
    assert_eq!(chain.len(), 2, "checkpoint 1 and a delta");
    let restored = load_chain(&*store, &chain, 128, |_| true).unwrap();
    let value_of = |key: i64| {
        let mut k = Vec::new();
        encode_key(&Value::Int(key), &mut k);
        let v = &restored[&(key_group(&k, 128), k.into_boxed_slice())];
        String::from_utf8_lossy(v).into_owned()
    };
    assert_eq!((value_of(7), value_of(8)), ("3".to_owned(), "1".to_owned()));
}
