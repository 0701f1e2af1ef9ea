//! The randomized lifecycle test: the real binary driven through random
//! sequences of what happens to a job over its life (kill -9 at any
//! moment, SIGTERM, SIGINT, `--from latest`, `--from chk-N` of any retained
//! checkpoint, an injected failure and its automatic restart, a change of
//! parallelism, a savepoint, stop-with-savepoint, a restore from a
//! savepoint copied elsewhere, the S3 store stopped and started mid-run,
//! more input arriving), with the committed output checked after every
//! step against what it must be.
//!
//! The model: whatever the sequence, each word's committed counts are
//! exactly `1..=m` (no count twice, none missing below the highest), with
//! `m` at most the word's occurrences in the input; after a run that
//! finished, `m` is every word's full count. The job is a word count over
//! several files read by two sources into one node of two inputs (so
//! barriers are aligned), keyed sums in sled with a small cache (so state
//! goes to disk and the job runs long enough to be hit mid-flight).
//!
//! Five seeds of 20 steps run in CI. `DATAFLOW_LIFECYCLE_SEED` replays a
//! seed (the sequence of steps; the moments of the kills are the clock's),
//! `DATAFLOW_LIFECYCLE_STEPS` sets the number of steps (the long mode of
//! docs/recovery.md is 2,000).

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::harness::bin;
use crate::recovery::Prng;
use crate::s3::S3Server;

const JOB: &str = "life";
/// Lines per input file.
const LINES: usize = 50_000;
/// The inputs' words are `w0` to `w299`.
const WORDS: u64 = 300;
/// A committed record's count sits in the low bits of its packed form.
const COUNT_BITS: u32 = 40;

/// How a run ended, as far as the model is concerned.
#[derive(Debug, PartialEq)]
enum End {
    /// Exit 0 after reading all its input.
    Finished,
    /// Stopped with a savepoint, cancelled (SIGTERM, SIGINT).
    Interrupted,
    /// Killed (SIGKILL, or a signal before its handlers were set up): a
    /// checkpoint may have completed with only some sink instances having
    /// committed their part of it, which the next run commits (two-phase
    /// commit, as in Flink). Until then a word may miss counts in the
    /// middle, but never has one twice.
    Killed,
}

struct Life {
    dir: tempfile::TempDir,
    server: S3Server,
    rng: Prng,
    seed: u64,
    /// Occurrences of each word in the inputs so far, by word number.
    truth: Vec<u64>,
    /// Input files written so far, by source.
    files: [usize; 2],
    /// Parallelism of `counts`.
    parallelism: u64,
    /// Folders holding a savepoint taken with `--to` or `--savepoint-to`
    /// (the newest few: the user deletes older ones).
    savepoints: Vec<PathBuf>,
    /// Savepoints taken so far.
    taken: usize,
    /// The steps so far, for a failure's message.
    steps: Vec<String>,
    /// Runs started so far.
    runs: usize,
    /// The committed part files read so far, with the length and time
    /// they had: a committed file does not change, so each step reads only
    /// the new ones, and a long run's checks do not grow with its length.
    parsed: RefCell<HashMap<PathBuf, Parsed>>,
}

/// One committed part file's lines, as read: word number and count packed
/// in one `u64` (`word << COUNT_BITS | count`), so that a long run's cache of
/// hundreds of millions of records stays a few GB.
struct Parsed {
    seen: (u64, Option<std::time::SystemTime>),
    records: Vec<u64>,
}

impl Life {
    fn new(seed: u64) -> Life {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("in")).unwrap();
        let mut life = Life {
            dir,
            server: S3Server::start(),
            rng: Prng(seed),
            seed,
            truth: vec![0; WORDS as usize],
            files: [0, 0],
            parallelism: 2,
            savepoints: Vec::new(),
            taken: 0,
            steps: Vec::new(),
            runs: 0,
            parsed: RefCell::new(HashMap::new()),
        };
        life.add_input(0);
        life.add_input(0);
        life.add_input(1);
        life
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A new input file for source `a` (0) or `b` (1).
    fn add_input(&mut self, source: usize) {
        let name = format!("{}{}.txt", ["a", "b"][source], self.files[source]);
        self.files[source] += 1;
        let mut text = String::new();
        for _ in 0..LINES {
            for i in 0..self.rng.range(1, 6) {
                let word = self.rng.range(0, WORDS - 1);
                if i > 0 {
                    text.push(',');
                }
                text.push_str(&format!("w{word}"));
                self.truth[word as usize] += 1;
            }
            text.push('\n');
        }
        std::fs::write(self.path("in").join(name), text).unwrap();
    }

    fn spec(&self) -> PathBuf {
        let path = self.path("life.yaml");
        let text = format!(
            r#"name: {JOB}
checkpoint:
  interval: 100ms
  incremental: true
  max_chain: 3
  retain: 2
  timeout: 3s
  tolerable_failures: 1000
  store: "{store}"
restart: {{strategy: fixed_delay, attempts: 5, delay: 300ms}}
state: {{backend: sled, dir: "{state}", cache_entries: 64}}
sources:
  a: {{type: file, path: "{input}/a*.txt", parallelism: 2}}
  b: {{type: file, path: "{input}/b*.txt", parallelism: 1}}
transforms:
  words: {{type: flat_map, inputs: [a, b], split: ","}}
  pairs: {{type: map, inputs: [words], expr: '{{"word": this, "count": 1}}'}}
  counts: {{type: sum, inputs: [pairs], key: word, field: count, parallelism: {p}}}
sinks:
  out: {{type: file, inputs: [counts], path: "{out}", format: json, parallelism: 2}}
"#,
            store = self.server.store_url("ck"),
            state = self.path("state").display(),
            input = self.path("in").display(),
            out = self.path("out").display(),
            p = self.parallelism,
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The complete checkpoints in the store, oldest first.
    fn checkpoints(&self) -> Vec<u64> {
        let Ok(entries) = std::fs::read_dir(self.server.dir("ck").join(JOB)) else {
            return Vec::new();
        };
        let mut ids: Vec<u64> = entries
            .flatten()
            .filter(|e| e.path().join("_metadata").exists())
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("chk-")?.parse().ok())
            .collect();
        ids.sort_unstable();
        ids
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(bin());
        command
            .args(args)
            .env("DATAFLOW_RUN_DIR", self.path("runs"))
            .env_remove("DATAFLOW_INJECT_FAILURE");
        command
    }

    fn start(&mut self, from: Option<String>, inject: Option<u64>) -> Child {
        if std::env::var_os("DATAFLOW_LIFECYCLE_KEEP").is_some() {
            // Every checkpoint's `_metadata` a run could restore, before
            // retention deletes it, for a post-mortem.
            let kept = self.path("metadata");
            std::fs::create_dir_all(&kept).unwrap();
            for id in self.checkpoints() {
                let from = self
                    .server
                    .dir("ck")
                    .join(JOB)
                    .join(format!("chk-{id}/_metadata"));
                let _ = std::fs::copy(from, kept.join(format!("chk-{id}.json")));
            }
        }
        let spec = self.spec();
        let mut args = vec!["run".to_owned(), spec.display().to_string()];
        if let Some(from) = &from {
            args.extend(["--from".to_owned(), from.clone()]);
        }
        let mut command = self.command(&args.iter().map(String::as_str).collect::<Vec<_>>());
        if let Some(records) = inject {
            command.env("DATAFLOW_INJECT_FAILURE", format!("counts:{records}"));
        }
        self.runs += 1;
        let log = std::fs::File::create(self.run_log(self.runs)).unwrap();
        self.note(format!(
            "run p={} from={} inject={inject:?}",
            self.parallelism,
            from.as_deref().unwrap_or("-")
        ));
        command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("dataflow starts")
    }

    /// Each run's log is kept, for a failure to be read back.
    fn run_log(&self, run: usize) -> PathBuf {
        self.path(&format!("run-{run}.log"))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.run_log(self.runs)).unwrap_or_default()
    }

    fn note(&mut self, step: String) {
        self.steps.push(step);
    }

    /// Panics with the seed, the steps so far and the last run's log.
    fn fail(&self, why: &str) -> ! {
        let steps: Vec<String> = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| format!("  {i}: {s}"))
            .collect();
        // With DATAFLOW_LIFECYCLE_KEEP set, a copy of the folder (inputs,
        // output, every run's log) and of the store is kept for a post-mortem.
        let kept = if std::env::var_os("DATAFLOW_LIFECYCLE_KEEP").is_some() {
            let copy = std::env::temp_dir().join(format!(
                "lifecycle-{}-{}",
                self.seed,
                std::process::id()
            ));
            let _ = Command::new("cp")
                .arg("-r")
                .arg(self.dir.path())
                .arg(&copy)
                .status();
            let _ = Command::new("cp")
                .arg("-r")
                .arg(self.server.dir("ck"))
                .arg(copy.join("store"))
                .status();
            format!("\nkept in {}", copy.display())
        } else {
            String::new()
        };
        panic!(
            "{why}\nseed {} (replay with DATAFLOW_LIFECYCLE_SEED={}); steps:\n{}\nlast run's log:\n{}{kept}",
            self.seed,
            self.seed,
            steps.join("\n"),
            self.log()
        )
    }

    /// Waits for the child to end, up to `limit`.
    fn wait(&self, child: &mut Child, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                // Where every thread waits, for the post-mortem of a hang.
                let stacks = stacks(child.id());
                let _ = std::fs::write(self.dir.path().join("stacks.txt"), &stacks);
                let _ = child.kill();
                let _ = child.wait();
                self.fail(&format!(
                    "the run did not end within {limit:?}; its threads:\n{stacks}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Lets the run go on for a random while, then ends it one of the
    /// ways a run ends: a signal, or its natural end.
    fn end_somehow(&mut self, mut child: Child) -> End {
        match self.rng.range(0, 5) {
            0 | 1 => {
                let status = self.wait(&mut child, Duration::from_secs(180));
                self.judge(status, None)
            }
            k => {
                let signal = ["KILL", "KILL", "TERM", "INT"][k as usize - 2];
                std::thread::sleep(Duration::from_millis(self.rng.range(50, 1500)));
                self.note(format!("  SIG{signal}"));
                let _ = Command::new("kill")
                    .args([&format!("-{signal}"), &child.id().to_string()])
                    .status();
                let status = self.wait(&mut child, Duration::from_secs(60));
                self.judge(status, Some(signal))
            }
        }
    }

    /// What a run's exit status means; anything unexpected fails the test.
    fn judge(&mut self, status: ExitStatus, signal: Option<&str>) -> End {
        let log = self.log();
        if log.contains("panicked") {
            self.fail("a run panicked");
        }
        let finished = status.success() && log.contains(&format!("{JOB} finished in"));
        self.note(format!(
            "  ended: {status}{}",
            if finished { ", finished" } else { "" }
        ));
        if finished {
            return End::Finished;
        }
        // A SIGTERM or SIGINT that comes before the run has set up its
        // handlers (while it verifies the checkpoint it restores) ends it
        // as the signal's default does, as a SIGKILL would.
        use std::os::unix::process::ExitStatusExt;
        if status.signal().is_some() && signal.is_some() {
            return End::Killed;
        }
        // A run that could not stop cleanly within the time a signal
        // allows ends as a SIGKILL would: what its last checkpoint covers
        // may not be committed yet (the next restore commits it).
        if signal.is_some() && log.contains("did not stop within") {
            return End::Killed;
        }
        let expected = match signal {
            _ if status.success() => log.contains(&format!("{JOB} stopped in")),
            Some("TERM") => status.code() == Some(143),
            Some("INT") => status.code() == Some(130),
            _ => false,
        };
        if !expected {
            self.fail(&format!("the run ended with {status}"));
        }
        End::Interrupted
    }

    /// Checks the committed output against the model.
    fn check(&self, end: &End) {
        // Per word, the counts seen so far as a bitset over 1..=occurrences:
        // a count seen twice is a duplicate, a count below the highest one
        // that is missing is a gap.
        let mut seen: Vec<Vec<u64>> = self
            .truth
            .iter()
            .map(|total| vec![0; (*total as usize).div_ceil(64)])
            .collect();
        let mut got = vec![0u64; WORDS as usize];
        let mut highest = vec![0u64; WORDS as usize];
        let mut twice = vec![0u64; WORDS as usize];
        let out = self.path("out");
        if let Ok(entries) = std::fs::read_dir(&out) {
            let mut parsed = self.parsed.borrow_mut();
            // Files a restore moved aside are read no more: forget them.
            let mut present = std::collections::HashSet::new();
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with('.') {
                    continue;
                }
                let path = entry.path();
                let meta = entry.metadata().unwrap();
                let stamp = (meta.len(), meta.modified().ok());
                if parsed.get(&path).is_none_or(|p| p.seen != stamp) {
                    let records = std::fs::read_to_string(&path)
                        .unwrap()
                        .lines()
                        .map(|line| self.parse_line(line))
                        .collect();
                    parsed.insert(
                        path.clone(),
                        Parsed {
                            seen: stamp,
                            records,
                        },
                    );
                }
                for packed in &parsed[&path].records {
                    let word = (packed >> COUNT_BITS) as usize;
                    let count = packed & ((1 << COUNT_BITS) - 1);
                    let total = self.truth[word];
                    if count == 0 || count > total {
                        self.fail(&format!(
                            "`w{word}` is committed with count {count}, but it occurs {total} times"
                        ));
                    }
                    let (slot, bit) = ((count - 1) as usize / 64, (count - 1) % 64);
                    if seen[word][slot] & (1 << bit) != 0 {
                        twice[word] += 1;
                    } else {
                        seen[word][slot] |= 1 << bit;
                        got[word] += 1;
                    }
                    highest[word] = highest[word].max(count);
                }
                present.insert(path);
            }
            parsed.retain(|path, _| present.contains(path));
        }
        for word in 0..WORDS as usize {
            // Killed: the sink instances that had not committed their part
            // of the last checkpoint leave gaps the next run fills.
            let gaps = *end != End::Killed && got[word] != highest[word];
            if twice[word] > 0 || gaps {
                self.fail(&format!(
                    "`w{word}`'s committed counts are not 1..={}: {} duplicated, {} missing",
                    highest[word],
                    twice[word],
                    highest[word] - got[word]
                ));
            }
            if *end == End::Finished && got[word] != self.truth[word] {
                self.fail(&format!(
                    "after a finished run `w{word}` is committed {} times, not {}",
                    got[word], self.truth[word]
                ));
            }
        }
    }

    /// A committed line `{"word": "w7", "count": 12}`, packed.
    fn parse_line(&self, line: &str) -> u64 {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| self.fail(&format!("a committed line is not JSON ({e}): {line}")));
        let word = v["word"]
            .as_str()
            .and_then(|w| w.strip_prefix('w'))
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|n| *n < WORDS);
        let count = v["count"].as_u64().filter(|c| *c < 1 << COUNT_BITS);
        match (word, count) {
            (Some(word), Some(count)) => word << COUNT_BITS | count,
            _ => self.fail(&format!(
                "a committed line is not a word of the inputs with its count: {line}"
            )),
        }
    }

    /// Where the next run starts from: the latest checkpoint if there is
    /// one (a fresh start into the same output would count everything
    /// twice, by design), else the beginning.
    fn latest(&self) -> Option<String> {
        (!self.checkpoints().is_empty()).then(|| "latest".to_owned())
    }

    /// Waits until a checkpoint newer than `after` is complete; false if
    /// the run ended first.
    fn await_checkpoint_after(&self, after: u64, child: &mut Child) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                return false;
            }
            if self.checkpoints().last().is_some_and(|id| *id > after) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.fail("the run completed no checkpoint within 60 s");
    }

    /// Waits until the run answers on its control endpoint; false if it
    /// ended first.
    fn await_endpoint(&self, child: &mut Child) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                return false;
            }
            let out = self
                .command(&["list", "--format", "json"])
                .output()
                .unwrap();
            if serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .is_ok_and(|v| v.as_array().is_some_and(|a| !a.is_empty()))
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(30));
        }
        self.fail("the run never showed up in `dataflow list`");
    }

    /// `dataflow savepoint` or `stop` into a new folder; records it.
    fn savepoint(&mut self, child: &mut Child, stop: bool) {
        if !self.await_endpoint(child) {
            return;
        }
        std::thread::sleep(Duration::from_millis(self.rng.range(0, 600)));
        let folder = self.path("savepoints").join(self.steps.len().to_string());
        let folder_text = folder.display().to_string();
        let args = if stop {
            ["stop", JOB, "--savepoint-to", &folder_text]
        } else {
            ["savepoint", JOB, "--to", &folder_text]
        };
        let out = self.command(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        self.note(format!("  {}: {}", args[0], stderr.trim()));
        if out.status.success() {
            self.savepoints.push(folder);
            self.taken += 1;
        } else if !["finish", "ended", "ending", "no job"]
            .iter()
            .any(|why| stderr.contains(why))
        {
            // Refusals as the job comes to its end are expected; nothing else.
            self.fail(&format!("`dataflow {}` failed: {stderr}", args[0]));
        }
    }

    fn step(&mut self) {
        let action = self.rng.range(0, 99);
        let end = match action {
            // A run from the latest checkpoint, ended somehow.
            0..=29 => {
                let child = self.start(self.latest(), None);
                self.end_somehow(child)
            }
            // From any retained checkpoint.
            30..=39 => {
                let ids = self.checkpoints();
                let from = (!ids.is_empty()).then(|| {
                    format!(
                        "chk-{}",
                        ids[self.rng.range(0, ids.len() as u64 - 1) as usize]
                    )
                });
                let child = self.start(from, None);
                self.end_somehow(child)
            }
            // An injected failure, recovered by an automatic restart.
            40..=49 => {
                let records = self.rng.range(1_000, 60_000);
                let child = self.start(self.latest(), Some(records));
                self.end_somehow(child)
            }
            // Another parallelism.
            50..=59 => {
                self.parallelism = self.rng.range(1, 3);
                let child = self.start(self.latest(), None);
                self.end_somehow(child)
            }
            // A savepoint while running.
            60..=66 => {
                let mut child = self.start(self.latest(), None);
                self.savepoint(&mut child, false);
                self.end_somehow(child)
            }
            // Stop with a savepoint, then restore from it.
            67..=73 => {
                let mut child = self.start(self.latest(), None);
                let before = self.savepoints.len();
                self.savepoint(&mut child, true);
                let status = self.wait(&mut child, Duration::from_secs(60));
                let end = self.judge(status, None);
                self.check(&end);
                match self.savepoints.get(before).cloned() {
                    Some(folder) => {
                        let child = self.start(Some(folder.display().to_string()), None);
                        self.end_somehow(child)
                    }
                    None => end,
                }
            }
            // A restore from a savepoint copied to another folder.
            74..=80 if !self.savepoints.is_empty() => {
                let k = self.rng.range(0, self.savepoints.len() as u64 - 1) as usize;
                let copy = self.path("copies").join(self.steps.len().to_string());
                copy_dir(&self.savepoints[k], &copy);
                let child = self.start(Some(copy.display().to_string()), None);
                self.end_somehow(child)
            }
            // The store goes away for a while, mid-run.
            81..=87 => {
                let before = self.checkpoints().last().copied().unwrap_or(0);
                let mut child = self.start(self.latest(), None);
                // Once the run has loaded its state and completed a
                // checkpoint of its own: a store that fails while a run
                // loads its state fails that run (it would fail a restart
                // the same way), as documented.
                let started = self.await_checkpoint_after(before, &mut child);
                std::thread::sleep(Duration::from_millis(self.rng.range(0, 600)));
                if started && child.try_wait().unwrap().is_none() {
                    self.note("  store down".into());
                    self.server.stop();
                    std::thread::sleep(Duration::from_millis(self.rng.range(200, 1000)));
                    self.server.restart();
                    self.note("  store back".into());
                }
                self.end_somehow(child)
            }
            // The user tidies up: prunes the store down to its newest
            // checkpoints (whichever run took them, with the shared files
            // only the deleted ones need), and deletes old savepoints. A
            // long life's restore points stay recent this way, as a real
            // job's do, so a step's cost does not grow with the steps.
            88..=90 => {
                let keep = self.rng.range(1, 4);
                let spec = self.spec().display().to_string();
                let out = self
                    .command(&["checkpoints", &spec, "--prune", "--keep", &keep.to_string()])
                    .output()
                    .unwrap();
                let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
                self.note(format!("prune, keep {keep}: {}", out.status));
                if !out.status.success() {
                    self.fail(&format!("`dataflow checkpoints --prune` failed: {stderr}"));
                }
                while self.savepoints.len() > 6 {
                    let old = self.savepoints.remove(0);
                    std::fs::remove_dir_all(&old).unwrap();
                }
                return;
            }
            // More input arrives.
            _ => {
                let source = self.rng.range(0, 1) as usize;
                self.add_input(source);
                self.note(format!("new input file for source {}", ["a", "b"][source]));
                return;
            }
        };
        self.check(&end);
    }
}

/// Copies a savepoint's files (`_metadata` and snapshots; the store's
/// empty staging folder is left behind).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        if entry.path().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

fn run_life(default_seed: u64) {
    let seed = std::env::var("DATAFLOW_LIFECYCLE_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default_seed);
    let steps: usize = std::env::var("DATAFLOW_LIFECYCLE_STEPS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(20);
    let started = Instant::now();
    let mut life = Life::new(seed);
    for step in 1..=steps {
        life.step();
        if step % 100 == 0 {
            eprintln!(
                "lifecycle seed {seed}: {step} steps, {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    // Whatever happened, the job can be brought to its end, exactly-once.
    let child = life.start(life.latest(), None);
    let mut child = child;
    let status = life.wait(&mut child, Duration::from_secs(300));
    let end = life.judge(status, None);
    if end != End::Finished {
        life.fail("the final run did not finish");
    }
    life.check(&end);
    let count = |what: &str| life.steps.iter().filter(|s| s.contains(what)).count();
    eprintln!(
        "lifecycle seed {seed}: {steps} steps, {} runs ({} finished, {} SIGKILL, {} SIGTERM, {} SIGINT, {} stopped), {} with an injected failure, {} from an older checkpoint, {} savepoints taken, {} restores from a savepoint, {} store outages, {} new input files, {} prunes, {:.1} s",
        count("run p="),
        count(", finished"),
        count("SIGKILL"),
        count("SIGTERM"),
        count("SIGINT"),
        count("stopped with savepoint"),
        count("inject=Some"),
        count("from=chk-"),
        life.taken,
        count("from=/"),
        count("store down"),
        count("new input file"),
        count("prune, keep"),
        started.elapsed().as_secs_f64()
    );
    if std::env::var_os("DATAFLOW_LIFECYCLE_VERBOSE").is_some() {
        eprintln!("{}", life.steps.join("\n"));
    }
}

#[test]
fn lifecycle_seed_1() {
    run_life(1);
}

#[test]
fn lifecycle_seed_2() {
    run_life(2);
}

#[test]
fn lifecycle_seed_3() {
    run_life(3);
}

#[test]
fn lifecycle_seed_4() {
    run_life(4);
}

#[test]
fn lifecycle_seed_5() {
    run_life(5);
}

/// Every thread's stack in process `pid`, by gdb where the machine has it.
fn stacks(pid: u32) -> String {
    match Command::new("timeout")
        .args([
            "60",
            "gdb",
            "-p",
            &pid.to_string(),
            "-batch",
            "-ex",
            "thread apply all bt",
        ])
        .output()
    {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(e) => format!("(no stacks: {e})"),
    }
}
