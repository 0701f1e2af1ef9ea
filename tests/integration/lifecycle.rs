//! Sequences of runs of one job, as a user makes them: run, restore,
//! restore again, a fresh run over a store an earlier run left; the
//! committed output is checked against what it must be after each.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::{bin, campaign, text};
use crate::recovery::Prng;
use crate::restart::committed;

/// Three files of 2,000 lines of 5 words over 50, read by two instances.
fn inputs(dir: &Path) -> usize {
    let mut state = 7u64;
    let mut words = 0;
    for f in 0..3 {
        let mut text = String::new();
        for _ in 0..2000 {
            let line: Vec<String> = (0..5)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    format!("w{}", (state >> 33) % 50)
                })
                .collect();
            words += line.len();
            text.push_str(&line.join(","));
            text.push('\n');
        }
        std::fs::write(dir.join(format!("in{f}.txt")), text).unwrap();
    }
    words
}

/// The word count over the inputs, into the folder `out`, checkpointing
/// into `dir/store` under one job name whatever `out` is.
fn spec(dir: &Path, out: &str) -> PathBuf {
    spec_retaining(dir, out, 3)
}

fn spec_retaining(dir: &Path, out: &str, retain: u32) -> PathBuf {
    let path = dir.join(format!("{out}.yaml"));
    std::fs::write(
        &path,
        format!(
            r#"name: wc
checkpoint: {{interval: 50ms, store: "file://{store}", retain: {retain}}}
restart: {{strategy: fixed_delay, attempts: 2, delay: 50ms}}
sources:
  lines: {{type: file, path: "{inputs}/in*.txt", parallelism: 2}}
transforms:
  words: {{type: flat_map, inputs: [lines], split: ","}}
  counts: {{type: count, inputs: [words], key: this}}
sinks:
  out: {{type: file, inputs: [counts], path: "{out}"}}
"#,
            store = dir.join("store").display(),
            inputs = dir.display(),
            out = dir.join(out).display(),
        ),
    )
    .unwrap();
    path
}

fn run(spec: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(bin());
    command.arg("run").arg(spec).args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", text(&out).1);
    out
}

/// Each word's counts 1..=n exactly once, n summing to `words`.
pub fn assert_exactly_once(lines: &[String], words: usize) {
    assert_eq!(lines.len(), words, "records committed");
    let mut seen = std::collections::HashSet::new();
    for l in lines {
        assert!(seen.insert(l), "committed twice: {l}");
    }
}

/// Issue 13, item 1: the checkpoint taken after a restore forgot the files
/// the restored one had finished, so a second restore read them again.
#[test]
fn restore_after_restore_reads_no_file_again() {
    let dir = tempfile::tempdir().unwrap();
    let words = inputs(dir.path());
    let spec = spec(dir.path(), "out");
    run(&spec, &[], &[]);
    let out = dir.path().join("out");
    assert_exactly_once(&committed(&out), words);
    for round in 0..3 {
        run(&spec, &["--from", "latest"], &[]);
        let lines = committed(&out);
        assert_eq!(lines.len(), words, "after restore {}", round + 1);
        assert_exactly_once(&lines, words);
    }
}

/// Issue 13, item 2: a fresh run's automatic restart restored the latest
/// checkpoint in the store, an earlier run's, and committed nothing.
#[test]
fn a_fresh_runs_restart_never_restores_another_runs_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let words = inputs(dir.path());
    run(&spec(dir.path(), "first"), &[], &[]);
    assert_exactly_once(&committed(&dir.path().join("first")), words);
    // The same job, over the same store, into a new folder, failing once
    // after 100 records of `counts`: it restarts from its own checkpoint,
    // or from the beginning, and commits every record once.
    let out = run(
        &spec(dir.path(), "second"),
        &[],
        &[("DATAFLOW_INJECT_FAILURE", "counts:100")],
    );
    let stderr = text(&out).1;
    assert!(stderr.contains("restart 1 of 2"), "{stderr}");
    assert_exactly_once(&committed(&dir.path().join("second")), words);
}

/// The complete checkpoints in `dir/store/wc`, by number.
fn checkpoints(dir: &Path) -> Vec<u64> {
    let mut ids: Vec<u64> = std::fs::read_dir(dir.join("store/wc"))
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let id = e.file_name().to_str()?.strip_prefix("chk-")?.parse().ok()?;
            e.path().join("_metadata").exists().then_some(id)
        })
        .collect();
    ids.sort_unstable();
    ids
}

/// Issue 13, item 3: a run started without `--from` numbered on in the
/// same folder and, with `retain: 1`, deleted the checkpoint an earlier
/// run left for the user to restore.
#[test]
fn a_fresh_run_never_deletes_an_earlier_runs_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let words = inputs(dir.path());
    run(&spec_retaining(dir.path(), "first", 1), &[], &[]);
    let kept = checkpoints(dir.path());
    assert_eq!(kept.len(), 1, "retain: 1 keeps one: {kept:?}");
    let second = run(&spec_retaining(dir.path(), "second", 1), &[], &[]);
    let stderr = text(&second).1;
    assert!(
        stderr.contains(&format!(
            "the store holds 1 checkpoint of earlier runs (the newest: chk-{})",
            kept[0]
        )),
        "{stderr}"
    );
    let now = checkpoints(dir.path());
    assert_eq!(now.len(), 2, "the earlier run's and this run's: {now:?}");
    assert_eq!(now[0], kept[0]);
    // The first run's checkpoint still restores, by name: its input is
    // all read, so nothing more is committed.
    let name = format!("chk-{}", kept[0]);
    run(
        &spec_retaining(dir.path(), "first", 1),
        &["--from", &name],
        &[],
    );
    assert_exactly_once(&committed(&dir.path().join("first")), words);
}

/// Earlier runs' checkpoints stay until the user prunes them:
/// `checkpoints --prune --dry-run` says what would go and deletes nothing;
/// `--prune` keeps the newest intact checkpoints of any run, and the
/// one kept still restores.
#[test]
fn checkpoints_prune_removes_earlier_runs_checkpoints_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let words = inputs(dir.path());
    let spec = spec_retaining(dir.path(), "first", 1);
    run(&spec, &[], &[]);
    run(&spec_retaining(dir.path(), "second", 1), &[], &[]);
    // An aborted checkpoint's folder, as a crash leaves it.
    std::fs::create_dir_all(dir.path().join("store/wc/chk-999")).unwrap();
    let before = checkpoints(dir.path());
    assert_eq!(before.len(), 2, "{before:?}");
    let prune = |args: &[&str]| {
        let out = Command::new(bin())
            .args(["checkpoints", spec.to_str().unwrap(), "--prune"])
            .args(args)
            .env("DATAFLOW_RUN_DIR", dir.path().join("runs"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out).1);
        text(&out).0
    };
    let dry = prune(&["--dry-run"]);
    assert!(
        dry.contains(&format!(
            "--dry-run: would delete chk-{}, chk-999",
            before[0]
        )),
        "{dry}"
    );
    assert_eq!(checkpoints(dir.path()), before);
    assert!(dir.path().join("store/wc/chk-999").exists());
    let done = prune(&[]);
    assert!(
        done.contains(&format!("deleted chk-{}, chk-999", before[0])),
        "{done}"
    );
    assert!(done.contains(&format!("kept chk-{}", before[1])), "{done}");
    assert_eq!(checkpoints(dir.path()), [before[1]]);
    assert!(!dir.path().join("store/wc/chk-999").exists());
    // The kept one restores: the second run's input is all read.
    let name = format!("chk-{}", before[1]);
    run(
        &spec_retaining(dir.path(), "second", 1),
        &["--from", &name],
        &[],
    );
    assert_exactly_once(&committed(&dir.path().join("second")), words);
}

/// A generated job slow enough to take a dozen checkpoints, each
/// committing a part of the output.
fn slow_spec(dir: &Path) -> PathBuf {
    let path = dir.join("slow.yaml");
    std::fs::write(
        &path,
        format!(
            r#"name: wc
checkpoint: {{interval: 100ms, min_pause: 0ms, store: "file://{store}", retain: 50}}
sources:
  lines: {{type: generate, mode: lines, count: 2400, rate: 2000, words_per_line: 4, vocabulary: 30}}
transforms:
  words: {{type: flat_map, inputs: [lines], split: ","}}
  counts: {{type: count, inputs: [words], key: this}}
sinks:
  out: {{type: file, inputs: [counts], path: "{out}"}}
"#,
            store = dir.join("store").display(),
            out = dir.join("out").display(),
        ),
    )
    .unwrap();
    path
}

fn hidden_dirs(out: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect()
}

/// Issue 13, item 4: a restore from an older checkpoint (named, or a
/// fallback past a damaged newer one) left the output committed after it
/// in place, and the restored job committed those records again.
#[test]
fn a_restore_from_an_older_checkpoint_duplicates_no_committed_output() {
    let dir = tempfile::tempdir().unwrap();
    let spec = slow_spec(dir.path());
    let words = 2400 * 4;
    let out = dir.path().join("out");
    run(&spec, &[], &[]);
    assert_exactly_once(&committed(&out), words);
    let ids = checkpoints(dir.path());
    assert!(
        ids.len() >= 5,
        "too few checkpoints to choose from: {ids:?}"
    );
    let older = format!("chk-{}", ids[ids.len() / 2]);

    // Refused on request: nothing changes, and the files are named.
    let before = committed(&out);
    let refused = Command::new(bin())
        .args([
            "run",
            spec.to_str().unwrap(),
            "--from",
            &older,
            "--newer-output",
            "refuse",
        ])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused).1);
    assert!(
        text(&refused).1.contains("holds output that is not in"),
        "{}",
        text(&refused).1
    );
    assert_eq!(committed(&out), before);
    assert!(hidden_dirs(&out).is_empty());

    // By default the newer output is moved aside, and said so.
    let restored = run(&spec, &["--from", &older], &[]);
    let stderr = text(&restored).1;
    assert!(
        stderr.contains(&format!("not in {older}'s past")),
        "{stderr}"
    );
    assert_exactly_once(&committed(&out), words);
    assert_eq!(hidden_dirs(&out).len(), 1, "one folder of moved output");

    // A fallback: the newest checkpoint's snapshot is truncated, so
    // `latest` restores an older one, and the output is still exactly-once.
    let ids = checkpoints(dir.path());
    let metadata: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            dir.path()
                .join(format!("store/wc/chk-{}/_metadata", ids[ids.len() - 1])),
        )
        .unwrap(),
    )
    .unwrap();
    let written = metadata["instances"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|i| i["files"].as_array()?.last()?["path"].as_str())
        .next()
        .expect("the newest checkpoint has a snapshot file")
        .to_owned();
    let snapshot = dir.path().join("store").join(written);
    std::fs::write(&snapshot, b"").unwrap();
    let fallback = run(&spec, &["--from", "latest"], &[]);
    assert!(
        text(&fallback).1.contains("trying an older one"),
        "{}",
        text(&fallback).1
    );
    assert_exactly_once(&committed(&out), words);
}

/// Issue 14, item 2: two runs of one job at once corrupted each other's
/// checkpoints and output. The second is refused, naming the first, and
/// the first ends exactly-once.
/// Starts `dataflow run spec` with its run files under `dir`, its
/// stderr kept for the test.
fn start_run(spec: &Path, dir: &Path) -> std::process::Child {
    Command::new(bin())
        .arg("run")
        .arg(spec)
        .env("DATAFLOW_RUN_DIR", dir.join("runs"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_second_run_of_a_running_job_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let spec = slow_spec(dir.path());
    let mut first = start_run(&spec, dir.path());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !dir.path().join("store/wc").exists() || checkpoints(dir.path()).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no checkpoint");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = Command::new(bin())
        .arg("run")
        .arg(&spec)
        .env("DATAFLOW_RUN_DIR", dir.path().join("runs"))
        .output()
        .unwrap();
    let stderr = text(&second).1;
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another run of job `wc` is running: run "),
        "{stderr}"
    );
    assert!(stderr.contains("stop that run first"), "{stderr}");
    let status = first.wait().unwrap();
    assert!(status.success());
    let lines = committed(&dir.path().join("out"));
    assert_exactly_once(&lines, 2400 * 4);
    // Once the first has ended, a run may start again.
    let third = Command::new(bin())
        .args(["run", spec.to_str().unwrap(), "--from", "latest"])
        .env("DATAFLOW_RUN_DIR", dir.path().join("runs"))
        .output()
        .unwrap();
    assert!(third.status.success(), "{}", text(&third).1);
}

/// Issue 14, item 2, as a campaign: three runs of one job (same store,
/// state folder and sink) started within a random 0–300 ms of each other,
/// so that some start in the same instant. Exactly one runs, the others
/// are refused naming it, and the output is exactly-once. Short in CI;
/// `DATAFLOW_CONCURRENT_TRIALS` sets the trials, `DATAFLOW_CONCURRENT_SEED`
/// replays a sequence of delays.
#[test]
fn of_runs_started_together_one_runs_and_the_others_are_refused() {
    let (trials, seed) = campaign("CONCURRENT", 4);
    let mut rng = Prng(seed);
    let mut delay = || std::time::Duration::from_millis(rng.range(0, 299));
    let mut refused = 0;
    for trial in 0..trials {
        let dir = tempfile::tempdir().unwrap();
        let spec = slow_spec(dir.path());
        let mut delays = [std::time::Duration::ZERO, delay(), delay()];
        delays.sort();
        let started = std::time::Instant::now();
        let runs: Vec<_> = delays
            .iter()
            .map(|at| {
                std::thread::sleep(at.saturating_sub(started.elapsed()));
                start_run(&spec, dir.path())
            })
            .collect();
        let outputs: Vec<Output> = runs
            .into_iter()
            .map(|r| r.wait_with_output().unwrap())
            .collect();
        let ran = outputs.iter().filter(|o| o.status.success()).count();
        let context = format!("seed {seed}, trial {trial}, delays {delays:?}");
        assert_eq!(ran, 1, "{context}: {} ran", ran);
        for o in outputs.iter().filter(|o| !o.status.success()) {
            let stderr = text(o).1;
            assert_eq!(o.status.code(), Some(1), "{context}: {stderr}");
            assert!(
                stderr.contains("another run of job `wc` is running: run "),
                "{context}: {stderr}"
            );
            refused += 1;
        }
        assert_exactly_once(&committed(&dir.path().join("out")), 2400 * 4);
    }
    eprintln!("runs started together: {trials} trials, {refused} runs refused, 0 outputs wrong");
}
