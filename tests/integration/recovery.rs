//! Crash recovery with real processes and real signals: a job is killed
//! with SIGKILL again and again and restored with `--from latest`; the
//! committed output must still be exactly-once. Also rescaling across
//! restores, and the restores that must be refused.
//!
//! The kill moments come from a seed printed by every test; set
//! `DATAFLOW_CRASH_SEED` to replay one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::harness::{bin, dataflow, root, text};
use crate::s3::S3Server;
use crate::stored::{completed, files_under};

const JOB: &str = "wc";

/// splitmix64: small, deterministic, good enough for test data and timing.
pub struct Prng(pub u64);

impl Prng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// The seed of this test's randomness: `DATAFLOW_CRASH_SEED`, else the clock.
fn seed(test: &str) -> u64 {
    let seed = std::env::var("DATAFLOW_CRASH_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("{test}: seed {seed} (replay with DATAFLOW_CRASH_SEED={seed})");
    seed
}

/// Writes `lines` lines of 1 to 8 comma-separated words over 2,000
/// distinct words; returns each word's true count.
fn write_input(path: &Path, lines: usize, seed: u64) -> BTreeMap<String, u64> {
    let mut rng = Prng(seed);
    let mut truth = BTreeMap::new();
    let mut text = String::with_capacity(lines * 40);
    for _ in 0..lines {
        for i in 0..rng.range(1, 8) {
            let word = format!("w{}", rng.range(0, 1999));
            if i > 0 {
                text.push(',');
            }
            text.push_str(&word);
            *truth.entry(word).or_insert(0) += 1;
        }
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
    truth
}

/// What a test's job looks like.
struct Job {
    dir: tempfile::TempDir,
    input: PathBuf,
    out: PathBuf,
    state: String,
    store: String,
    /// Extra lines of the `checkpoint:` section, each indented by two spaces.
    checkpoint: String,
    /// The local folder holding the job's checkpoints (s3s-fs keeps objects as files).
    store_dir: PathBuf,
    /// Parallelism of the keyed node and the sink.
    parallelism: u32,
    truth: BTreeMap<String, u64>,
}

impl Job {
    fn new(lines: usize, seed: u64) -> Job {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("input.txt");
        let truth = write_input(&input, lines, seed);
        let state = dir.path().join("state").display().to_string();
        let store = format!("file://{}", dir.path().join("store").display());
        Job {
            out: dir.path().join("out"),
            input,
            state,
            store,
            store_dir: dir.path().join("store").join(JOB),
            checkpoint: String::new(),
            parallelism: 1,
            truth,
            dir,
        }
    }

    /// The 2,000 words overflow a 64-key state cache, so kills, restores
    /// and rescales meet entries written back to sled; going to sled that
    /// often also keeps the job slow enough to be killed many times.
    fn spec_text(&self) -> String {
        format!(
            r#"name: {JOB}
checkpoint:
  interval: 200ms
  incremental: true
  max_chain: 5
  retain: 2
  store: "{store}"
{checkpoint}
state: {{backend: sled, dir: "{state}", cache_entries: 64}}
sources:
  lines: {{type: file, path: "{input}", parallelism: 1}}
transforms:
  words: {{type: flat_map, inputs: [lines], split: ",", parallelism: 1}}
  pairs: {{type: map, inputs: [words], expr: '{{"word": this, "count": 1}}', parallelism: 1}}
  counts: {{type: sum, inputs: [pairs], key: word, field: count, parallelism: {p}}}
sinks:
  out: {{type: file, inputs: [counts], path: "{out}", format: json, parallelism: {p}}}
"#,
            store = self.store,
            checkpoint = self.checkpoint,
            state = self.state,
            input = self.input.display(),
            out = self.out.display(),
            p = self.parallelism,
        )
    }

    /// Writes the spec as it is now; returns its path.
    fn spec(&self) -> PathBuf {
        let path = self.dir.path().join("job.yaml");
        std::fs::write(&path, self.spec_text()).unwrap();
        path
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("stderr.txt")
    }

    /// Starts `dataflow run`, restoring from `from` if given; stderr goes to a file.
    fn start(&self, from: Option<&str>) -> Child {
        self.start_with(from, &[])
    }

    /// [`Job::start`], with environment variables set.
    fn start_with(&self, from: Option<&str>, env: &[(&str, &str)]) -> Child {
        let spec = self.spec();
        let mut cmd = Command::new(bin());
        cmd.envs(env.iter().copied());
        cmd.arg("run").arg(&spec);
        if let Some(from) = from {
            cmd.args(["--from", from]);
        }
        let stderr = std::fs::File::create(self.stderr_path()).unwrap();
        cmd.current_dir(root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("dataflow starts")
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    /// Runs to the end (restoring from the latest checkpoint if there is
    /// one); panics unless it finishes with status 0 within `limit`.
    fn finish(&self, limit: Duration) {
        let from = has_checkpoint(&self.store_dir).then_some("latest");
        let mut child = self.start(from);
        let status = wait_for(&mut child, limit).unwrap_or_else(|| {
            kill9(&mut child);
            panic!(
                "the final run did not end within {limit:?}: {}",
                self.stderr()
            )
        });
        assert!(status.success(), "the final run failed: {}", self.stderr());
    }
}

pub fn kill9(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -KILL failed");
    child.wait().unwrap();
}

/// Waits up to `limit` for the child to exit.
pub fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn has_checkpoint(job_dir: &Path) -> bool {
    !completed(job_dir).is_empty()
}

/// Exactly `retain` complete checkpoints, and every file in the store is
/// one of their `_metadata` files or listed in one of them.
fn assert_store_clean(job_dir: &Path, retain: usize) {
    let metas = completed(job_dir);
    assert_eq!(
        metas.len(),
        retain,
        "complete checkpoints: {:?}",
        metas.iter().map(|m| m.checkpoint_id).collect::<Vec<_>>()
    );
    let mut needed: BTreeSet<String> = metas
        .iter()
        .flat_map(|m| m.instances.values())
        .flat_map(|i| i.files.iter().map(|f| f.path.clone()))
        .collect();
    needed.extend(
        metas
            .iter()
            .map(|m| format!("{JOB}/chk-{}/_metadata", m.checkpoint_id)),
    );
    let present = files_under(job_dir, JOB);
    let orphans: Vec<&String> = present.difference(&needed).collect();
    assert!(orphans.is_empty(), "orphan files in the store: {orphans:?}");
    let missing: Vec<&String> = needed.difference(&present).collect();
    assert!(
        missing.is_empty(),
        "files a checkpoint needs are gone: {missing:?}"
    );
}

/// The committed output: every word's emitted counts, in no particular order.
fn committed(out: &Path) -> BTreeMap<String, Vec<u64>> {
    let mut counts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(out) else {
        return counts;
    };
    for e in entries {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("{}: bad line {line:?}: {err}", e.path().display()));
            let word = v["word"].as_str().expect("a word").to_owned();
            let n = v["count"].as_u64().expect("a count");
            counts.entry(word).or_default().push(n);
        }
    }
    counts
}

fn hidden_files(out: &Path) -> Vec<String> {
    std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// Each word's counts are exactly 1..=n once each, n its true count; no other word.
fn assert_exactly_once(out: &Path, truth: &BTreeMap<String, u64>) {
    let mut got = committed(out);
    let extra: Vec<&String> = got.keys().filter(|w| !truth.contains_key(*w)).collect();
    assert!(extra.is_empty(), "words not in the input: {extra:?}");
    for (word, &n) in truth {
        let mut counts = got.remove(word).unwrap_or_default();
        counts.sort_unstable();
        let expected: Vec<u64> = (1..=n).collect();
        if counts != expected {
            let seen: BTreeSet<u64> = counts.iter().copied().collect();
            let missing: Vec<u64> = (1..=n).filter(|c| !seen.contains(c)).take(10).collect();
            panic!(
                "`{word}` (true count {n}): {} counts emitted, max {:?}, missing {missing:?}, {} duplicates",
                counts.len(),
                counts.last(),
                counts.len() - seen.len()
            );
        }
    }
}

/// At least once: each word's counts 1..=n are all there. Returns the
/// number of emitted records beyond one per (word, count).
fn assert_at_least_once(out: &Path, truth: &BTreeMap<String, u64>) -> (u64, u64) {
    let got = committed(out);
    let extra: Vec<&String> = got.keys().filter(|w| !truth.contains_key(*w)).collect();
    assert!(extra.is_empty(), "words not in the input: {extra:?}");
    let (mut duplicates, mut overcounted) = (0, 0);
    for (word, &n) in truth {
        let counts = got.get(word).cloned().unwrap_or_default();
        let seen: BTreeSet<u64> = counts.iter().copied().collect();
        let missing: Vec<u64> = (1..=n).filter(|c| !seen.contains(c)).take(10).collect();
        assert!(
            missing.is_empty(),
            "`{word}` (true count {n}) lost {missing:?}"
        );
        duplicates += (counts.len() - seen.len()) as u64;
        overcounted += seen.iter().filter(|&&c| c > n).count() as u64;
    }
    (duplicates, overcounted)
}

/// What a kill loop did.
#[derive(Debug, Default)]
struct Crashes {
    kills: u32,
    /// `--from latest` refused because there was no checkpoint yet.
    fresh_starts: u32,
    /// Kills made early because the job was ahead of schedule.
    early: u32,
}

/// How far through its input the latest complete checkpoint is, 0 to 1.
fn progress(job: &Job) -> f64 {
    let Some(m) = completed(&job.store_dir).pop() else {
        return 0.0;
    };
    let size = std::fs::metadata(&job.input).unwrap().len() as f64;
    m.instances
        .values()
        .filter_map(|i| i.source_position.as_ref())
        .map(|p| match p["reading"]["offset"].as_u64() {
            Some(offset) => offset as f64 / size,
            None => 1.0,
        })
        .fold(0.0, f64::max)
}

/// Starts the job, SIGKILLs it `delay_ms` (a range) after it started, and
/// restarts it with `--from latest`, until it has been killed `kills`
/// times. `during` runs on each iteration while the job runs (before the kill).
fn kill_loop(
    job: &Job,
    rng: &mut Prng,
    kills: u32,
    delay_ms: (u64, u64),
    mut during: impl FnMut(u32),
) -> Crashes {
    let mut crashes = Crashes::default();
    let mut first = true;
    while crashes.kills < kills {
        let from = (!first).then_some("latest");
        first = false;
        let mut child = job.start(from);
        // Ahead of schedule (a fast machine), kill before the next
        // checkpoint can complete, so the job is still running at the last kill.
        let ahead = progress(job) > 0.7 * f64::from(crashes.kills + 1) / f64::from(kills + 1);
        let delay = if ahead {
            crashes.early += 1;
            rng.range(20, 150)
        } else {
            rng.range(delay_ms.0, delay_ms.1)
        };
        let delay = Duration::from_millis(delay);
        during(crashes.kills);
        match wait_for(&mut child, delay) {
            None => {
                kill9(&mut child);
                crashes.kills += 1;
            }
            Some(status) if status.success() => {
                panic!(
                    "the job finished on its own after {} kills: the input is too small for this machine",
                    crashes.kills
                )
            }
            Some(status) => {
                let stderr = job.stderr();
                assert!(
                    from.is_some() && stderr.contains("no intact checkpoint to restore"),
                    "the job failed ({status}): {stderr}"
                );
                assert!(!stderr.contains("panicked"), "{stderr}");
                // No checkpoint yet: starting afresh is the right thing.
                crashes.fresh_starts += 1;
                first = true;
            }
        }
    }
    crashes
}

/// Lines of input for the kill loops: enough that a job killed every few
/// hundred milliseconds is still running after 20 kills.
const LINES: usize = 300_000;

fn exactly_once_loop(test: &str, job: &Job, kills: u32) {
    let started = Instant::now();
    let mut rng = Prng(seed(test));
    let crashes = kill_loop(job, &mut rng, kills, (150, 700), |_| {});
    job.finish(Duration::from_secs(120));
    eprintln!(
        "{test}: {} kills ({} early), {} fresh starts, {:.1} s",
        crashes.kills,
        crashes.early,
        crashes.fresh_starts,
        started.elapsed().as_secs_f64()
    );
    assert_exactly_once(&job.out, &job.truth);
    assert_eq!(
        hidden_files(&job.out),
        Vec::<String>::new(),
        "leftover hidden files"
    );
}

#[test]
fn kill_loop_exactly_once() {
    let job = Job::new(LINES, 1);
    exactly_once_loop("kill_loop_exactly_once", &job, 20);
    assert_store_clean(&job.store_dir, 2);
}

#[test]
fn kill_loop_at_least_once_loses_nothing() {
    let test = "kill_loop_at_least_once_loses_nothing";
    let mut job = Job::new(LINES, 2);
    job.checkpoint = "  mode: at_least_once".into();
    let started = Instant::now();
    let mut rng = Prng(seed(test));
    let crashes = kill_loop(&job, &mut rng, 20, (150, 700), |_| {});
    job.finish(Duration::from_secs(120));
    let (duplicates, overcounted) = assert_at_least_once(&job.out, &job.truth);
    eprintln!(
        "{test}: {} kills ({} early), {} fresh starts, {duplicates} duplicate records, {overcounted} counts above the true count, {:.1} s",
        crashes.kills,
        crashes.early,
        crashes.fresh_starts,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        hidden_files(&job.out),
        Vec::<String>::new(),
        "leftover hidden files"
    );
    assert_store_clean(&job.store_dir, 2);
}

fn s3_job(server: &S3Server, lines: usize, seed: u64) -> Job {
    let mut job = Job::new(lines, seed);
    job.store = server.store_url("ck");
    job.store_dir = server.dir("ck").join(JOB);
    job
}

#[test]
fn kill_loop_exactly_once_on_s3() {
    let server = S3Server::start();
    let job = s3_job(&server, LINES, 3);
    exactly_once_loop("kill_loop_exactly_once_on_s3", &job, 8);
    assert_store_clean(&job.store_dir, 2);
}

/// Polls until `job_dir` holds a complete checkpoint newer than `after`.
fn wait_for_checkpoint(job_dir: &Path, after: u64, child: &mut Child, job: &Job) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(m) = completed(job_dir).last() {
            if m.checkpoint_id > after {
                return m.checkpoint_id;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the job ended ({status}) before checkpoint {after} + 1: {}",
                job.stderr()
            );
        }
        assert!(Instant::now() < deadline, "no checkpoint after {after}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn s3_outages_while_running_fail_checkpoints_but_not_the_job() {
    let test = "s3_outages_while_running_fail_checkpoints_but_not_the_job";
    let started = Instant::now();
    let mut rng = Prng(seed(test));
    let mut server = S3Server::start();
    // Processing goes on during an outage: twice the usual input, so the
    // job is still running in the last round.
    let mut job = s3_job(&server, 2 * LINES, 4);
    job.checkpoint = "  tolerable_failures: 1000\n  timeout: 1s".into();
    let mut from = None;
    let mut last = 0;
    for round in 0..2 {
        // Wait for a checkpoint of this run, so it has restored before the store goes.
        last = completed(&job.store_dir)
            .last()
            .map_or(last, |m| m.checkpoint_id);
        let mut child = job.start(from);
        last = wait_for_checkpoint(&job.store_dir, last, &mut child, &job);
        server.stop();
        std::thread::sleep(Duration::from_millis(rng.range(300, 700)));
        assert!(
            child.try_wait().unwrap().is_none(),
            "round {round}: the job ended while the store was down: {}",
            job.stderr()
        );
        server.restart();
        // A checkpoint completes again once the store is back.
        last = wait_for_checkpoint(&job.store_dir, last, &mut child, &job);
        let stderr = job.stderr();
        assert!(
            stderr.contains("failed: ") && stderr.contains("tolerated"),
            "round {round}: no checkpoint failed while the store was down: {stderr}"
        );
        std::thread::sleep(Duration::from_millis(rng.range(0, 300)));
        kill9(&mut child);
        from = Some("latest");
    }
    job.finish(Duration::from_secs(120));
    let stderr = job.stderr();
    eprintln!(
        "{test}: 2 outages, 2 kills, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_exactly_once(&job.out, &job.truth);
    assert_eq!(hidden_files(&job.out), Vec::<String>::new(), "{stderr}");
    assert_store_clean(&job.store_dir, 2);
}

#[test]
fn restore_at_another_parallelism() {
    let test = "restore_at_another_parallelism";
    let started = Instant::now();
    let mut rng = Prng(seed(test));
    let mut job = Job::new(LINES, 5);
    let mut last = 0;
    let mut from = None;
    for p in [1, 4] {
        job.parallelism = p;
        let mut child = job.start(from);
        last = wait_for_checkpoint(&job.store_dir, last, &mut child, &job);
        std::thread::sleep(Duration::from_millis(rng.range(0, 200)));
        kill9(&mut child);
        from = Some("latest");
    }
    job.parallelism = 2;
    job.finish(Duration::from_secs(120));
    eprintln!(
        "{test}: 1 → 4 → 2, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_exactly_once(&job.out, &job.truth);
    assert_eq!(
        hidden_files(&job.out),
        Vec::<String>::new(),
        "leftover hidden files"
    );
    let last = completed(&job.store_dir).pop().unwrap();
    assert_eq!(last.instances["counts#1"].parallelism, 2);
    assert_store_clean(&job.store_dir, 2);
}

/// Runs `dataflow run spec --from <from> [extra]`; returns status and stderr.
fn restore(spec: &Path, from: &str, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["run", spec.to_str().unwrap(), "--from", from];
    args.extend_from_slice(extra);
    let out = dataflow(&args);
    let (_, stderr) = text(&out);
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code(), stderr)
}

#[test]
fn restores_that_must_be_refused() {
    let job = Job::new(100_000, 6);
    let spec = job.spec();
    let first = dataflow(&["run", spec.to_str().unwrap()]);
    assert!(first.status.success(), "{}", text(&first).1);
    let metas = completed(&job.store_dir);
    let ids: Vec<u64> = metas.iter().map(|m| m.checkpoint_id).collect();
    assert_eq!(ids.len(), 2, "{}", text(&first).1);
    let (older, newest) = (ids[0], ids[1]);

    // A checkpoint that does not exist: the message lists the complete ones.
    let (code, stderr) = restore(&spec, "chk-999", &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("there is no checkpoint chk-999")
            && stderr.contains(&format!("the complete ones are: chk-{older}, chk-{newest}")),
        "{stderr}"
    );

    // Paths that climb out of the store.
    let (code, stderr) = restore(&spec, "../x", &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("`../x` is not a checkpoint"), "{stderr}");
    let climbing = format!("{}/../store/{JOB}/chk-{newest}", job.store);
    let (code, stderr) = restore(&spec, &climbing, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot restore") && stderr.contains(".."),
        "{stderr}"
    );

    // Another max_parallelism.
    let other = job.dir.path().join("maxp.yaml");
    std::fs::write(
        &other,
        job.spec_text()
            .replacen("name: wc\n", "name: wc\nmax_parallelism: 64\n", 1),
    )
    .unwrap();
    let (code, stderr) = restore(&other, "latest", &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("max_parallelism 128 and the spec has 64"),
        "{stderr}"
    );

    // A damaged snapshot file of the newest checkpoint.
    let metas = completed(&job.store_dir);
    let (older, newest) = (metas[0].checkpoint_id, metas[1].checkpoint_id);
    let own = metas[1].instances["counts#0"]
        .files
        .iter()
        .find(|f| f.checkpoint == newest)
        .expect("the newest checkpoint wrote a file")
        .path
        .clone();
    let on_disk = job.store_dir.parent().unwrap().join(&own);
    let len = std::fs::metadata(&on_disk).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&on_disk)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let (code, stderr) = restore(&spec, &format!("chk-{newest}"), &[]);
    // Damage at rest is an outside failure, not the user's.
    assert_eq!(code, Some(69), "{stderr}");
    assert!(
        stderr.contains(&own) && stderr.contains("damaged"),
        "{stderr}"
    );
    let (code, stderr) = restore(&spec, "latest", &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("chk-{newest} is damaged"))
            && stderr.contains(&format!(
                "restoring from chk-{older}, the newest intact checkpoint"
            )),
        "{stderr}"
    );

    // A stateful node renamed: refused, unless its state may be dropped.
    let renamed = job.dir.path().join("renamed.yaml");
    std::fs::write(
        &renamed,
        job.spec_text()
            .replace("counts: {", "totals: {")
            .replace("inputs: [counts]", "inputs: [totals]"),
    )
    .unwrap();
    let (code, stderr) = restore(&renamed, "latest", &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("`counts`") && stderr.contains("--allow-non-restored-state"),
        "{stderr}"
    );
    let (code, stderr) = restore(&renamed, "latest", &["--allow-non-restored-state"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("is not restored"), "{stderr}");
}

#[test]
fn an_unwritable_state_dir_fails_clearly_and_keeps_the_output() {
    let mut job = Job::new(20_000, 7);
    let spec = job.spec();
    let first = dataflow(&["run", spec.to_str().unwrap()]);
    assert!(first.status.success(), "{}", text(&first).1);
    let before = committed_files(&job.out);
    assert!(!before.is_empty());
    let file = job.dir.path().join("not-a-folder");
    std::fs::write(&file, "x").unwrap();
    job.state = file.display().to_string();
    let spec = job.spec();
    for from in [None, Some("latest")] {
        let mut args = vec!["run", spec.to_str().unwrap()];
        if let Some(from) = from {
            args.extend(["--from", from]);
        }
        let out = dataflow(&args);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("cannot open the sled state") && stderr.contains("not-a-folder"),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(
            committed_files(&job.out),
            before,
            "committed output changed"
        );
    }
}

/// Committed files and their contents.
fn committed_files(out: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_fresh_start_removes_the_hidden_files_of_a_killed_attempt() {
    let job = Job::new(100_000, 8);
    let mut child = job.start(None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&job.out).map_or(true, |d| d.count() == 0) {
        assert!(
            Instant::now() < deadline,
            "no output file: {}",
            job.stderr()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    kill9(&mut child);
    assert!(!hidden_files(&job.out).is_empty());
    // Killed before any checkpoint completed: the rerun starts afresh.
    let out = dataflow(&["run", job.spec().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(
        hidden_files(&job.out),
        Vec::<String>::new(),
        "leftover hidden files"
    );
    assert_exactly_once(&job.out, &job.truth);
}

/// Sends `signal` (`TERM`, `INT`) to the child.
fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} failed");
}

/// Issue 14, item 3: with the store frozen (connections accepted, nothing
/// answered), each checkpoint still times out after its `timeout`, and
/// past `tolerable_failures` the job fails and exits, instead of hanging.
#[test]
fn a_frozen_store_times_checkpoints_out_and_fails_the_job() {
    let server = S3Server::start();
    let mut job = s3_job(&server, 4 * LINES, 6);
    job.checkpoint = "  timeout: 1s\n  tolerable_failures: 1\nrestart: {strategy: none}".into();
    let mut child = job.start(None);
    wait_for_checkpoint(&job.store_dir, 0, &mut child, &job);
    server.freeze();
    let frozen = Instant::now();
    let status = wait_for(&mut child, Duration::from_secs(60)).unwrap_or_else(|| {
        kill9(&mut child);
        panic!(
            "the job still ran 60 s after the store froze: {}",
            job.stderr()
        )
    });
    let took = frozen.elapsed();
    let stderr = job.stderr();
    eprintln!("frozen store: the job failed {took:?} after the store froze");
    assert!(!status.success(), "{stderr}");
    assert_eq!(
        stderr.matches("failed: not complete after 1s").count(),
        3,
        "two checkpoints time out, and the job fails with the second: {stderr}"
    );
    assert!(
        stderr.contains("more than tolerable_failures (1)"),
        "{stderr}"
    );
    // `checkpoints` too answers, within its 10 s deadline per call.
    let asked = Instant::now();
    let out = dataflow(&["checkpoints", job.spec().to_str().unwrap()]);
    let took = asked.elapsed();
    let (stdout, stderr) = text(&out);
    eprintln!("frozen store: `checkpoints` answered in {took:?}");
    assert_eq!(out.status.code(), Some(69), "{stdout}{stderr}");
    assert!(
        stderr.contains("timeout") && stderr.contains("s3://checkpoints/ck"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Issue 14, item 3: with the store frozen, SIGTERM ends the job within
/// the 1.5 s it allows a clean stop, and a second Ctrl-C ends it at once.
/// Nothing is lost: the run that follows, with the store back, is
/// exactly-once. `DATAFLOW_FROZEN_ROUNDS` repeats the pair of signals (the
/// long form).
#[test]
fn signals_end_a_job_whose_store_is_frozen() {
    let rounds: usize = std::env::var("DATAFLOW_FROZEN_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    let mut server = S3Server::start();
    let mut job = s3_job(&server, LINES * rounds, 7);
    job.checkpoint = "  timeout: 20s".into();
    let mut last = 0;
    let pairs = [["TERM", ""], ["INT", "INT"]];
    for (round, signals) in pairs.iter().cycle().take(2 * rounds).enumerate() {
        let mut child = job.start((round > 0).then_some("latest"));
        last = wait_for_checkpoint(&job.store_dir, last, &mut child, &job);
        server.freeze();
        // A checkpoint is under way, stuck in the store.
        std::thread::sleep(Duration::from_millis(500));
        signal(&child, signals[0]);
        let sent = Instant::now();
        if !signals[1].is_empty() {
            std::thread::sleep(Duration::from_millis(100));
            signal(&child, signals[1]);
        }
        let status = wait_for(&mut child, Duration::from_secs(30)).unwrap_or_else(|| {
            kill9(&mut child);
            panic!("SIG{} did not end the job: {}", signals[0], job.stderr())
        });
        let took = sent.elapsed();
        eprintln!(
            "frozen store: SIG{} {} ended the job in {took:?}",
            signals[0], signals[1]
        );
        let expected = if signals[0] == "TERM" { 143 } else { 130 };
        assert_eq!(status.code(), Some(expected), "{}", job.stderr());
        // The allowance, plus what a loaded machine adds to starting a
        // process and delivering a signal.
        let limit = if signals[1].is_empty() { 3000 } else { 1500 };
        assert!(
            took < Duration::from_millis(limit),
            "SIG{} {} took {took:?}: {}",
            signals[0],
            signals[1],
            job.stderr()
        );
        // The store comes back, with no request left hanging.
        server.stop();
        server.set_delay_ms(0);
        server.restart();
    }
    job.finish(Duration::from_secs(120) * rounds as u32);
    assert_exactly_once(&job.out, &job.truth);
}

/// Polls the job's stderr until it contains `text`; panics if the job
/// ends first or a minute passes.
fn wait_for_log(job: &Job, child: &mut Child, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !job.stderr().contains(text) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the job ended ({status}) before logging `{text}`: {}",
                job.stderr()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no `{text}` in a minute: {}",
            job.stderr()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Issue 14, item 5: a restart that cannot start because the store is
/// down for a moment counts as one attempt, and the next follows after the
/// delay; it used to give up with `cannot restart: cannot list …` with
/// attempts left.
#[test]
fn a_restart_that_cannot_reach_the_store_is_followed_by_the_next() {
    let mut server = S3Server::start();
    let mut job = s3_job(&server, LINES, 8);
    job.checkpoint = "restart: {strategy: fixed_delay, attempts: 3, delay: 1s}".into();
    let mut child = job.start_with(None, &[("DATAFLOW_INJECT_FAILURE", "counts:400000")]);
    wait_for_log(&job, &mut child, "restart 1 of 3");
    // Down for the first restart's start, back for the second's.
    server.stop();
    wait_for_log(&job, &mut child, "restart 2 of 3");
    server.restart();
    let status = wait_for(&mut child, Duration::from_secs(120)).unwrap_or_else(|| {
        kill9(&mut child);
        panic!("the job did not end: {}", job.stderr())
    });
    let stderr = job.stderr();
    assert!(status.success(), "{stderr}");
    let second = stderr
        .lines()
        .find(|l| l.contains("restart 2 of 3"))
        .unwrap_or_default();
    assert!(
        second.contains("s3://checkpoints/ck"),
        "the second restart follows the first's failure to reach the store: {stderr}"
    );
    assert!(!stderr.contains("restart 3 of 3"), "{stderr}");
    assert_exactly_once(&job.out, &job.truth);
}

/// Runs the job `dir/job.yaml` and SIGKILLs it at random moments, up to
/// `kills` times, restoring with `--from latest` once a checkpoint of job
/// `job` is complete; before each run, `write_spec` writes the spec for a
/// random parallelism (1 to 4) and backend, so restores rescale. Then runs
/// it to the end, and returns its stderr and the kills made. A run that
/// ends before its kill (a fast machine) is the last one; at least half
/// the kills must have happened.
pub fn kill_restore_rescale(
    dir: &Path,
    job: &str,
    rng: &mut Prng,
    kills: u32,
    write_spec: impl Fn(u32, &str),
) -> (String, u32) {
    let start = |from: bool| {
        let mut cmd = Command::new(bin());
        cmd.arg("run").arg(dir.join("job.yaml"));
        if from {
            cmd.args(["--from", "latest"]);
        }
        cmd.stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr.txt")).unwrap())
            .spawn()
            .unwrap()
    };
    let stderr = || std::fs::read_to_string(dir.join("stderr.txt")).unwrap_or_default();
    let (mut killed, mut restored, mut finished) = (0, false, false);
    while killed < kills && !finished {
        write_spec(
            rng.range(1, 4) as u32,
            ["memory", "sled"][rng.range(0, 1) as usize],
        );
        let mut child = start(restored);
        match wait_for(&mut child, Duration::from_millis(rng.range(50, 400))) {
            None => {
                kill9(&mut child);
                killed += 1;
                restored = has_checkpoint(&dir.join("store").join(job));
            }
            Some(status) => {
                assert!(status.success(), "{}", stderr());
                finished = true;
            }
        }
    }
    assert!(
        killed >= kills / 2,
        "only {killed} kills before the job ended"
    );
    if !finished {
        write_spec(rng.range(1, 4) as u32, "memory");
        let mut child = start(restored);
        let status = wait_for(&mut child, Duration::from_secs(300));
        assert!(status.is_some_and(|s| s.success()), "{}", stderr());
    }
    (stderr(), killed)
}
