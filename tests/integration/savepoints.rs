//! Savepoints and stop, through the real binary and its control endpoint:
//! `dataflow list`, `savepoint`, `stop`, and restoring a savepoint that
//! was moved to another folder.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{bin, text};
use crate::lifecycle::assert_exactly_once;
use crate::restart::committed;

/// A command of the binary, with the run files in `runs`.
fn dataflow(runs: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("DATAFLOW_RUN_DIR", runs)
        .output()
        .unwrap()
}

/// 16,000 generated lines of 4 words at 2,000 lines/s: eight seconds, long
/// enough to be reached while it runs.
fn spec(dir: &Path, checkpoint: bool) -> PathBuf {
    let path = dir.join("job.yaml");
    let checkpoint = if checkpoint {
        format!(
            "checkpoint: {{interval: 200ms, store: \"file://{}\", retain: 1, incremental: true}}\n",
            dir.join("store").display()
        )
    } else {
        String::new()
    };
    std::fs::write(
        &path,
        format!(
            r#"name: sp
{checkpoint}sources:
  lines: {{type: generate, mode: lines, count: 16000, rate: 2000, words_per_line: 4, vocabulary: 40}}
transforms:
  words: {{type: flat_map, inputs: [lines], split: ","}}
  counts: {{type: count, inputs: [words], key: this, parallelism: 2}}
sinks:
  out: {{type: file, inputs: [counts], path: "{out}", parallelism: 2}}
"#,
            out = dir.join("out").display(),
        ),
    )
    .unwrap();
    path
}

const WORDS: usize = 16_000 * 4;

fn start(runs: &Path, spec: &Path, args: &[&str]) -> Child {
    Command::new(bin())
        .arg("run")
        .arg(spec)
        .args(args)
        .env("DATAFLOW_RUN_DIR", runs)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `dataflow list` shows job `sp` answering.
fn await_listed(runs: &Path) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = dataflow(runs, &["list", "--format", "json"]);
        let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if let Some(run) = listed.as_array().and_then(|a| a.first()) {
            assert_eq!(run["answers"], true, "{run}");
            return run.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the job never appeared in `dataflow list`"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn savepoint_then_stop_then_restore_a_moved_savepoint_is_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let spec = spec(dir.path(), true);
    let child = start(&runs, &spec, &[]);
    let listed = await_listed(&runs);
    assert_eq!(listed["job"], "sp");
    let table = text(&dataflow(&runs, &["list"])).0;
    assert!(table.contains(listed["run"].as_str().unwrap()), "{table}");

    // A savepoint into the store's default folder, by job name.
    let taken = dataflow(&runs, &["savepoint", "sp"]);
    let (stdout, stderr) = text(&taken);
    assert!(taken.status.success(), "{stderr}");
    let default_location = stdout.trim().to_owned();
    assert!(default_location.contains("/sp/savepoints/sp-"), "{stdout}");
    let sp_name = default_location.rsplit('/').next().unwrap().to_owned();

    // `checkpoints --prune` leaves a running job alone.
    let spec_text = spec.to_str().unwrap();
    let refused = dataflow(&runs, &["checkpoints", spec_text, "--prune"]);
    let stderr = text(&refused).1;
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another run of job `sp` is running: run "),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was deleted"), "{stderr}");

    // Stop with a savepoint into a folder of our own, by run id.
    let target = dir.path().join("savepoint");
    let stopped = dataflow(
        &runs,
        &[
            "stop",
            listed["run"].as_str().unwrap(),
            "--savepoint-to",
            target.to_str().unwrap(),
        ],
    );
    let (stdout, stderr) = text(&stopped);
    assert!(stopped.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), format!("file://{}", target.display()));
    assert!(stderr.contains("stopped with savepoint"), "{stderr}");
    let out = child.wait_with_output().unwrap();
    let run_log = text(&out).1;
    assert_eq!(out.status.code(), Some(0), "{run_log}");
    assert!(run_log.contains("sp stopped in"), "{run_log}");
    let before = committed(&dir.path().join("out"));
    assert!(
        !before.is_empty() && before.len() < WORDS,
        "stopped part way: {} of {WORDS}",
        before.len()
    );
    assert_eq!(
        text(&dataflow(&runs, &["list"])).0.trim(),
        "no jobs are running on this machine"
    );

    // Retention (retain: 1) never touched the default savepoint.
    let default_folder = default_location.trim_start_matches("file://");
    assert!(Path::new(default_folder).join("_metadata").exists());
    // `checkpoints` lists it, checked whole.
    let listed = dataflow(&runs, &["checkpoints", spec_text, "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let savepoints = json["savepoints"].as_array().unwrap();
    assert_eq!(savepoints.len(), 1, "{json}");
    assert_eq!(savepoints[0]["name"], sp_name.as_str());
    assert_eq!(savepoints[0]["status"], "complete");
    let table = text(&dataflow(&runs, &["checkpoints", spec_text])).0;
    assert!(table.contains(&format!("  {sp_name} ")), "{table}");

    // The savepoint is self-contained: moved elsewhere, it restores, and the
    // output ends exactly-once.
    let moved = dir.path().join("elsewhere").join("copy");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&target, &moved).unwrap();
    let restored = start(&runs, &spec, &["--from", moved.to_str().unwrap()]);
    let out = restored.wait_with_output().unwrap();
    let log = text(&out).1;
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&format!("restores file://{}", moved.display())),
        "{log}"
    );
    assert_exactly_once(&committed(&dir.path().join("out")), WORDS);
}

#[test]
fn savepoint_and_stop_say_why_they_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let listed = dataflow(&runs, &["list"]);
    assert!(listed.status.success());
    assert_eq!(
        text(&listed).0.trim(),
        "no jobs are running on this machine"
    );
    for command in ["savepoint", "stop"] {
        let out = dataflow(&runs, &[command, "nothing-here"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out)
                .1
                .contains("no job or run named `nothing-here` is running"),
            "{}",
            text(&out).1
        );
    }
    // A job without checkpoints has no store for a savepoint.
    let spec = spec(dir.path(), false);
    let child = start(&runs, &spec, &[]);
    await_listed(&runs);
    let out = dataflow(&runs, &["savepoint", "sp"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out)
            .1
            .contains("the spec has no `checkpoint:` section"),
        "{}",
        text(&out).1
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out).1);
}
