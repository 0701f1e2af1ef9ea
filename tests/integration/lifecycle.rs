//! Sequences of runs of one job, as a user makes them: run, restore,
//! restore again, a fresh run over a store an earlier run left; the
//! committed output is checked against what it must be after each.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::{bin, text};
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
    let path = dir.join(format!("{out}.yaml"));
    std::fs::write(
        &path,
        format!(
            r#"name: wc
checkpoint: {{interval: 50ms, store: "file://{store}", retain: 3}}
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
fn assert_exactly_once(lines: &[String], words: usize) {
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
