//! Checkpoints through the real binary, against `file://` and the
//! in-process S3 server: settings, retention, alignment, failures, damage.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dataflow::checkpoint::metadata::Metadata;
use dataflow::checkpoint::snapshot::{self, Entries};

use crate::harness::{bin, dataflow, text};
use crate::s3::S3Server;
use crate::stored::{completed, files_under};

/// Where a test's checkpoints go.
enum Store {
    File(tempfile::TempDir),
    S3(S3Server),
}

impl Store {
    fn file() -> Store {
        Store::File(tempfile::tempdir().unwrap())
    }

    fn all() -> Vec<Store> {
        vec![Store::file(), Store::S3(S3Server::start())]
    }

    fn url(&self) -> String {
        match self {
            Store::File(dir) => format!("file://{}", dir.path().display()),
            Store::S3(server) => server.store_url("ck"),
        }
    }

    /// The local folder holding the job's files (s3s-fs keeps objects as files).
    fn job_dir(&self, job: &str) -> PathBuf {
        match self {
            Store::File(dir) => dir.path().join(job),
            Store::S3(server) => server.dir("ck").join(job),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Store::File(_) => "file",
            Store::S3(_) => "s3",
        }
    }
}

fn write_spec(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    path
}

/// A keyed count over `count` generated records at `rate` per second.
fn keyed_job(job: &str, store: &str, checkpoint: &str, count: u64, rate: u64) -> String {
    format!(
        r#"name: {job}
checkpoint:
  store: "{store}"
{checkpoint}
sources:
  gen: {{type: generate, seed: 3, count: {count}, rate: {rate}}}
transforms:
  pairs: {{type: map, inputs: [gen], expr: '{{"k": this.seq % 5000, "n": 1}}'}}
  sums: {{type: sum, inputs: [pairs], key: k, field: n}}
sinks:
  out: {{type: blackhole, inputs: [sums]}}
"#
    )
}

/// Checkpoint folders holding at least one file (an object store has no
/// empty folders; s3s-fs leaves them on disk).
fn checkpoint_dirs(job_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(job_dir) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("chk-"))
        .filter(|p| !files_under(p, "").is_empty())
        .collect()
}

/// Every file in the store belongs to a retained, complete checkpoint.
fn assert_no_orphans(store: &Store, job: &str) {
    let dir = store.job_dir(job);
    let metas = completed(&dir);
    let mut needed: BTreeSet<String> = metas
        .iter()
        .flat_map(|m| m.files().map(|f| f.path.clone()))
        .collect();
    needed.extend(
        metas
            .iter()
            .map(|m| format!("{job}/chk-{}/_metadata", m.checkpoint_id)),
    );
    let present = files_under(&dir, job);
    let orphans: Vec<&String> = present.difference(&needed).collect();
    assert!(
        orphans.is_empty(),
        "{}: files no retained checkpoint needs: {orphans:?}",
        store.name()
    );
    let missing: Vec<&String> = needed.difference(&present).collect();
    assert!(
        missing.is_empty(),
        "{}: files a retained checkpoint needs are gone: {missing:?}",
        store.name()
    );
}

fn run(spec: &Path) -> Output {
    let out = dataflow(&["run", spec.to_str().unwrap()]);
    eprintln!("{}", text(&out).1.lines().last().unwrap_or_default());
    out
}

#[test]
fn retention_keeps_exactly_retain_checkpoints_and_no_orphan_file() {
    for store in Store::all() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = "  interval: 100ms\n  incremental: true\n  max_chain: 3\n  retain: 2";
        let spec = write_spec(
            dir.path(),
            "ret",
            &keyed_job("ret", &store.url(), checkpoint, 40_000, 25_000),
        );
        let out = run(&spec);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{}: {stderr}", store.name());
        let metas = completed(&store.job_dir("ret"));
        assert_eq!(metas.len(), 2, "{}: {stderr}", store.name());
        assert_eq!(
            checkpoint_dirs(&store.job_dir("ret")).len(),
            2,
            "{}: an incomplete folder is left",
            store.name()
        );
        assert!(
            metas[1].checkpoint_id >= 5,
            "{}: too few checkpoints to test retention: {stderr}",
            store.name()
        );
        for m in &metas {
            let chain = &m.instances["sums#0"].files;
            assert!(
                chain.len() <= 4,
                "{}: a chain longer than max_chain + 1: {chain:?}",
                store.name()
            );
            assert_eq!(
                chain[0].kind,
                dataflow::checkpoint::layout::SnapshotKind::Full
            );
        }
        assert_no_orphans(&store, "ret");
        let listing = dataflow(&["checkpoints", spec.to_str().unwrap()]);
        let (stdout, stderr) = text(&listing);
        assert_eq!(listing.status.code(), Some(0), "{stdout}{stderr}");
        assert!(
            stdout.contains(&format!("chk-{}", metas[1].checkpoint_id))
                && stdout.contains("(latest)"),
            "{stdout}"
        );
    }
}

#[test]
fn checkpoints_honour_interval_min_pause_and_max_concurrent() {
    for store in Store::all() {
        schedule_on(&store);
    }
}

fn schedule_on(store: &Store) {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = "  interval: 40ms\n  min_pause: 120ms\n  max_concurrent: 1\n  retain: 1000";
    let spec = write_spec(
        dir.path(),
        "pause",
        &keyed_job("pause", &store.url(), checkpoint, 30_000, 20_000),
    );
    assert_eq!(run(&spec).status.code(), Some(0));
    let metas = completed(&store.job_dir("pause"));
    assert!(metas.len() >= 4, "only {} checkpoints", metas.len());
    for pair in metas.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        // Timestamps are whole milliseconds: allow 1 ms of rounding.
        assert!(
            b.triggered_at_ms + 1 >= a.completed_at_ms + 120,
            "min_pause: {} ended {}, {} started {}",
            a.checkpoint_id,
            a.completed_at_ms,
            b.checkpoint_id,
            b.triggered_at_ms
        );
        assert!(b.triggered_at_ms + 1 >= a.triggered_at_ms + 40, "interval");
    }

    let checkpoint = "  interval: 20ms\n  max_concurrent: 2\n  retain: 1000";
    let spec = write_spec(
        dir.path(),
        "conc",
        &keyed_job("conc", &store.url(), checkpoint, 30_000, 20_000),
    );
    assert_eq!(run(&spec).status.code(), Some(0));
    let metas = completed(&store.job_dir("conc"));
    assert!(metas.len() >= 4);
    // The most in flight at any instant: a checkpoint counts from its
    // trigger to its completion (at equal milliseconds, ends go first).
    let mut events: Vec<(u64, i32)> = metas
        .iter()
        .flat_map(|m| [(m.triggered_at_ms, 1), (m.completed_at_ms, -1)])
        .collect();
    events.sort();
    let (mut now, mut most) = (0, 0);
    for (_, step) in events {
        now += step;
        most = most.max(now);
    }
    assert!(most <= 2, "{most} checkpoints were in flight at once");
}

#[test]
fn timeouts_abort_leave_nothing_and_fail_after_tolerable_failures() {
    let server = S3Server::start();
    server.set_delay_ms(400);
    let store = Store::S3(server);
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = "  interval: 50ms\n  timeout: 150ms\n  tolerable_failures: 2";
    let spec = write_spec(
        dir.path(),
        "slow",
        &keyed_job("slow", &store.url(), checkpoint, 10_000_000, 20_000),
    );
    let out = run(&spec);
    let (_, stderr) = text(&out);
    // A store too slow for the timeout is an outside failure: status 69.
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(stderr.contains("it may pass if tried again"), "{stderr}");
    assert!(stderr.contains("not complete after 150ms"), "{stderr}");
    assert!(
        stderr.contains("3 failed checkpoints in a row, more than tolerable_failures (2)"),
        "{stderr}"
    );
    assert!(
        files_under(&store.job_dir("slow"), "slow").is_empty(),
        "aborted checkpoints left files: {:?}",
        files_under(&store.job_dir("slow"), "slow")
    );
}

#[test]
fn a_store_outage_within_tolerable_failures_is_survived() {
    let mut server = S3Server::start();
    let url = server.store_url("ck");
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = "  interval: 100ms\n  timeout: 2s\n  tolerable_failures: 1000\n  incremental: true\n  retain: 2";
    let spec = write_spec(
        dir.path(),
        "outage",
        &keyed_job("outage", &url, checkpoint, 45_000, 15_000),
    );
    let child = Command::new(bin())
        .args(["run", spec.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    server.stop();
    std::thread::sleep(Duration::from_millis(1000));
    let restarted_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    server.restart();
    let out = child.wait_with_output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("failed:"),
        "no checkpoint failed while the store was down: {stderr}"
    );
    let store = Store::S3(server);
    let metas = completed(&store.job_dir("outage"));
    assert!(
        metas.iter().any(|m| m.triggered_at_ms >= restarted_ms),
        "no checkpoint completed after the store came back: {stderr}"
    );
    assert_no_orphans(&store, "outage");
}

/// The count of records per source kept in a checkpoint's state.
fn counts_in(store: &Store, m: &Metadata) -> std::collections::HashMap<String, i64> {
    let mut entries = Entries::new();
    for file in &m.instances["counts#0"].files {
        let path = match store {
            Store::File(dir) => dir.path().join(&file.path),
            Store::S3(server) => server.dir("ck").join(&file.path),
        };
        snapshot::decode_into(&std::fs::read(path).unwrap(), 128, |_| true, &mut entries).unwrap();
    }
    entries
        .iter()
        .map(|((_, key), value)| {
            let key = String::from_utf8_lossy(&key[1..]).into_owned();
            let count: i64 = serde_json::from_slice(value).unwrap();
            (key, count)
        })
        .collect()
}

/// The two-speed job with `mode` checkpoints every 100 ms.
fn two_speed_job(job: &str, store: &str, mode: &str) -> String {
    two_speed_job_with(job, store, &format!("interval: 100ms\n  mode: {mode}"))
}

/// Two sources, one of them slowed by interpreted CEL, into one `count`;
/// `settings` are the checkpoint settings besides the store.
fn two_speed_job_with(job: &str, store: &str, settings: &str) -> String {
    format!(
        r#"name: {job}
checkpoint:
  store: "{store}"
  {settings}
  retain: 1000
sources:
  fast: {{type: generate, seed: 1, count: 2000000}}
  slow: {{type: generate, seed: 2, count: 400000}}
transforms:
  tag_fast: {{type: map, inputs: [fast], expr: '{{"src": "fast"}}'}}
  # Interpreted CEL makes this path slow: batches queue up ahead of its
  # barrier, so the fast input's barrier always arrives first, with records
  # right behind it.
  tag_slow: {{type: map, inputs: [slow], expr: '{{"src": "slow", "v": this.value * 2 + this.seq % 7 + 1}}'}}
  counts: {{type: count, inputs: [tag_fast, tag_slow], key: src, parallelism: 1}}
sinks:
  out: {{type: blackhole, inputs: [counts]}}
"#
    )
}

#[test]
fn exactly_once_alignment_snapshots_exactly_the_records_before_the_barriers() {
    for store in Store::all() {
        aligned_on(&store);
    }
}

fn aligned_on(store: &Store) {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "align",
        &two_speed_job("align", &store.url(), "exactly_once"),
    );
    assert_eq!(run(&spec).status.code(), Some(0));
    let metas = completed(&store.job_dir("align"));
    assert!(metas.len() >= 3, "only {} checkpoints", metas.len());
    for m in &metas {
        let counts = counts_in(store, m);
        for src in ["fast", "slow"] {
            let position = m.instances[&format!("{src}#0")]
                .source_position
                .as_ref()
                .unwrap()["next"]
                .as_i64()
                .unwrap();
            assert_eq!(
                counts.get(src).copied().unwrap_or(0),
                position,
                "checkpoint {}: `{src}`",
                m.checkpoint_id
            );
        }
    }
}

#[test]
fn at_least_once_reads_past_a_barrier_while_waiting_for_the_other() {
    let store = Store::file();
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        "unaligned",
        &two_speed_job("unaligned", &store.url(), "at_least_once"),
    );
    assert_eq!(run(&spec).status.code(), Some(0));
    let metas = completed(&store.job_dir("unaligned"));
    assert!(metas.len() >= 3);
    let position = |m: &Metadata, src: &str| {
        m.instances[&format!("{src}#0")]
            .source_position
            .as_ref()
            .unwrap()["next"]
            .as_i64()
            .unwrap()
    };
    let mut ahead = 0;
    for m in &metas {
        let counts = counts_in(&store, m);
        for src in ["fast", "slow"] {
            let counted = counts.get(src).copied().unwrap_or(0);
            // Never less than what came before the barrier: nothing is lost.
            assert!(
                counted >= position(m, src),
                "checkpoint {}: `{src}` lost records",
                m.checkpoint_id
            );
            if counted > position(m, src) {
                ahead += 1;
            }
        }
    }
    eprintln!(
        "at_least_once: {ahead} of {} checkpoints counted records after a barrier",
        metas.len()
    );
    // Records after a barrier were counted before the snapshot: the input
    // that delivered its barrier first was not blocked.
    assert!(
        ahead > 0,
        "no input ever ran past its barrier: at_least_once blocked like exactly_once"
    );
}

#[test]
fn at_least_once_completes_every_concurrent_checkpoint() {
    // Up to 4 checkpoints in flight and a slow input: the fast one delivers
    // barrier N+1 before the slow one delivers N. None may be left behind
    // while newer ones complete: it would stay in flight until the job
    // ends (the timeout is far away), and be abandoned then.
    let store = Store::file();
    let dir = tempfile::tempdir().unwrap();
    let job = two_speed_job_with(
        "concurrent",
        &store.url(),
        "mode: at_least_once\n  interval: 1ms\n  min_pause: 0ms\n  max_concurrent: 4\n  \
         timeout: 60s\n  tolerable_failures: 1000",
    );
    let out = run(&write_spec(dir.path(), "concurrent", &job));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let summary = stderr
        .lines()
        .find(|l| l.contains(" finished in "))
        .unwrap_or_else(|| panic!("no summary in {stderr}"));
    let number_after = |text: &str, marker: &str| -> u64 {
        text.split(marker)
            .nth(1)
            .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no `{marker}` in {text}"))
    };
    let completed = number_after(summary, "checkpoints: ");
    let last = number_after(summary, "(last chk-");
    assert!(completed >= 10, "{summary}");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert!(summary.contains(", 0 failed"), "{summary}\n{warnings:#?}");
    for line in stderr.lines().filter(|l| l.contains(" abandoned")) {
        let id = number_after(line, "checkpoint ");
        assert!(
            id > last,
            "checkpoint {id} was left behind by {last}: {line}"
        );
    }
}

#[test]
fn damaged_checkpoints_are_reported_by_name() {
    for store in Store::all() {
        damage_on(&store);
    }
}

fn damage_on(store: &Store) {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = "  interval: 100ms\n  incremental: false\n  retain: 3";
    let spec = write_spec(
        dir.path(),
        "dmg",
        &keyed_job("dmg", &store.url(), checkpoint, 30_000, 20_000),
    );
    assert_eq!(run(&spec).status.code(), Some(0));
    let metas = completed(&store.job_dir("dmg"));
    assert_eq!(metas.len(), 3);
    let store_root = store.job_dir("dmg").parent().unwrap().to_owned();
    let file_of = |m: &Metadata| store_root.join(&m.instances["sums#0"].files[0].path);
    // A truncated file, a flipped byte, a missing _metadata.
    let truncated = file_of(&metas[0]);
    let len = std::fs::metadata(&truncated).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&truncated)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let flipped = file_of(&metas[1]);
    let mut bytes = std::fs::read(&flipped).unwrap();
    bytes[20] ^= 0x40;
    std::fs::write(&flipped, bytes).unwrap();
    std::fs::remove_file(
        store
            .job_dir("dmg")
            .join(format!("chk-{}/_metadata", metas[2].checkpoint_id)),
    )
    .unwrap();

    let out = dataflow(&["checkpoints", spec.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let line = |id: u64| {
        stdout
            .lines()
            .find(|l| l.contains(&format!("chk-{id} ")))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        line(metas[0].checkpoint_id).contains("DAMAGED")
            && line(metas[0].checkpoint_id).contains("bytes, but the checkpoint recorded"),
        "{stdout}"
    );
    assert!(
        line(metas[1].checkpoint_id).contains("DAMAGED")
            && line(metas[1].checkpoint_id).contains("checksum"),
        "{stdout}"
    );
    assert!(
        line(metas[2].checkpoint_id).contains("incomplete"),
        "{stdout}"
    );
    let json = dataflow(&["checkpoints", spec.to_str().unwrap(), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let statuses: Vec<&str> = v["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["damaged", "damaged", "incomplete"]);
}
