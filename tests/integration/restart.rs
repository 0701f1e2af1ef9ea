//! Automatic restart: a failed job restores from its latest checkpoint in
//! the same process and goes on; its committed output stays exactly-once.

use std::path::Path;
use std::process::Command;

use crate::harness::{bin, text};

/// The word-count job's source and the parallelism of `counts`.
struct Shape {
    interval: &'static str,
    lines: &'static str,
    parallelism: u32,
}

/// 40,000 lines of 8 words over 500, in a second, all in one thread.
const SMALL: Shape = Shape {
    interval: "100ms",
    lines: "{type: generate, mode: lines, seed: 7, count: 40000, rate: 40000, vocabulary: 500}",
    parallelism: 1,
};

fn spec(dir: &Path, name: &str, restart: &str, map: &str) -> std::path::PathBuf {
    spec_of(dir, name, restart, map, &SMALL)
}

fn spec_of(dir: &Path, name: &str, restart: &str, map: &str, shape: &Shape) -> std::path::PathBuf {
    let yaml = format!(
        r#"name: {name}
checkpoint:
  interval: {interval}
  incremental: true
  store: "file://{store}"
{restart}
sources:
  lines: {lines}
transforms:
  words: {{type: flat_map, inputs: [lines], split: ","}}
  pairs: {{type: map, inputs: [words], expr: '{map}'}}
  counts: {{type: sum, inputs: [pairs], key: word, field: count, parallelism: {p}}}
sinks:
  out: {{type: file, inputs: [counts], path: "{out}"}}
"#,
        store = dir.join("store").display(),
        out = dir.join(format!("out-{name}")).display(),
        interval = shape.interval,
        lines = shape.lines,
        p = shape.parallelism,
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Every committed line of a file sink's folder, sorted.
pub fn committed(dir: &Path) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .flat_map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    lines.sort();
    lines
}

/// Runs the job of `shape` once cleanly and once with `failure` injected
/// (restarting in-process); asserts both succeed, the restart restored a
/// checkpoint and the committed output is the same `lines` lines. Returns
/// the stderr of the run with the failure.
fn assert_recovers_exactly_once(shape: &Shape, failure: &str, lines: usize) -> String {
    let dir = tempfile::tempdir().unwrap();
    let restart = "restart: {strategy: fixed_delay, attempts: 2, delay: 100ms}";
    let pairs = r#"{"word": this, "count": 1}"#;
    let run = |name: &str, failure: Option<&str>| {
        let mut cmd = Command::new(bin());
        cmd.arg("run")
            .arg(spec_of(dir.path(), name, restart, pairs, shape));
        if let Some(failure) = failure {
            cmd.env("DATAFLOW_INJECT_FAILURE", failure);
        }
        let out = cmd.output().unwrap();
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        stderr
    };
    run("clean", None);
    let stderr = run("failing", Some(failure));
    assert!(
        stderr.contains("restoring from"),
        "the restart did not restore a checkpoint: {stderr}"
    );
    let expected = committed(&dir.path().join("out-clean"));
    assert_eq!(expected.len(), lines);
    assert!(
        committed(&dir.path().join("out-failing")) == expected,
        "the output after a restart differs from a run without failure"
    );
    stderr
}

#[test]
fn an_injected_failure_is_recovered_from_the_latest_checkpoint_exactly_once() {
    let stderr = assert_recovers_exactly_once(&SMALL, "counts:150000", 320_000);
    assert!(
        stderr
            .contains("restart 1 of 2 in 100ms: counts#0 (node `counts`) failed: injected failure"),
        "{stderr}"
    );
}

/// Snapshots of many changed keys are copied a few thousand entries per
/// batch while records keep coming (the memory backend's copy-on-write):
/// a restore from them must still give exactly the output of a clean run.
#[test]
fn a_restore_from_snapshots_copied_while_running_is_exactly_once() {
    // Unthrottled, with counts in instances of their own behind a
    // shuffle, so their input is rarely empty while a snapshot is copied.
    let shape = Shape {
        interval: "20ms",
        lines: "{type: generate, mode: lines, seed: 11, count: 100000, vocabulary: 100000}",
        parallelism: 2,
    };
    let stderr = assert_recovers_exactly_once(&shape, "counts:300000", 800_000);
    assert!(stderr.contains("restart 1 of 2"), "{stderr}");
}

#[test]
fn a_persistent_failure_uses_up_the_attempts_and_fails_with_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let restart = "restart: {strategy: fixed_delay, attempts: 2, delay: 10ms}";
    // Fails on every run, at the same word: no restart can get past it.
    let pairs = r#"{"word": this, "count": this == "w3" ? 1 / 0 : 1}"#;
    let out = Command::new(bin())
        .args([
            "run",
            spec(dir.path(), "doomed", restart, pairs).to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("restart 2 of 2"), "{stderr}");
    assert!(
        stderr.contains("pairs#0 (node `pairs`) failed") && stderr.contains("(after 2 restarts)"),
        "{stderr}"
    );

    let none = "restart: {strategy: none}";
    let out = Command::new(bin())
        .args([
            "run",
            spec(dir.path(), "once", none, pairs).to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("restart 1"), "{stderr}");
}
