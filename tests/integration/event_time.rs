//! Event time through the real binary: records stamped at the source,
//! those without a usable time handled by `on_error`, and where each
//! instance was in event time recorded in checkpoints and resumed by a
//! restore.

use std::path::Path;

use dataflow::checkpoint::metadata::{Metadata, TimeState};

use crate::harness::{bin, text};
use crate::stored::completed;

fn spec(dir: &Path) -> String {
    format!(
        r#"name: times
checkpoint: {{interval: 50ms, store: "file://{store}", retain: 3}}
sources:
  events:
    type: file
    path: "{dir}/in/*.jsonl"
    format: json
    on_error: skip
    event_time: {{timestamp: ts, max_out_of_orderness: 10ms}}
transforms:
  sums: {{type: sum, inputs: [events], key: k, field: n, parallelism: 2}}
sinks:
  out: {{type: file, inputs: [sums], path: "{dir}/out", format: json}}
"#,
        store = dir.join("store").display(),
        dir = dir.display(),
    )
}

/// `n` records stamped `from`, `from + 1`, ... (some as RFC 3339 text),
/// every tenth without a time.
fn events(from: i64, n: i64) -> String {
    (0..n)
        .map(|i| {
            let ts = from + i;
            match i % 10 {
                9 => format!("{{\"k\": \"k{}\", \"n\": 1}}\n", i % 7),
                3 => {
                    let t = chrono::DateTime::from_timestamp_millis(ts).unwrap();
                    format!(
                        "{{\"ts\": \"{}\", \"k\": \"k{}\", \"n\": 1}}\n",
                        t.to_rfc3339(),
                        i % 7
                    )
                }
                _ => format!("{{\"ts\": {ts}, \"k\": \"k{}\", \"n\": 1}}\n", i % 7),
            }
        })
        .collect()
}

fn last_checkpoint(dir: &Path) -> Metadata {
    completed(&dir.join("store/times"))
        .pop()
        .expect("a completed checkpoint")
}

fn time_of(m: &Metadata, instance: &str) -> Option<TimeState> {
    m.instances[instance].event_time
}

fn committed_lines(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .map(|p| std::fs::read_to_string(p).unwrap().lines().count())
        .sum()
}

/// `dataflow <args> <spec>`: its stdout, and stderr after it exited 0.
fn dataflow_on(spec: &Path, args: &[&str]) -> (String, String) {
    let out = std::process::Command::new(bin())
        .arg(args[0])
        .arg(spec)
        .args(&args[1..])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    (stdout, stderr)
}

#[test]
fn event_times_are_checkpointed_and_a_restore_goes_on_from_them() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::create_dir_all(dir.join("in")).unwrap();
    let start = 1_714_558_530_000;
    std::fs::write(dir.join("in/a.jsonl"), events(start, 5_000)).unwrap();
    std::fs::write(dir.join("times.yaml"), spec(dir)).unwrap();
    let (summary, _) = dataflow_on(&dir.join("times.yaml"), &["check"]);
    assert!(
        summary.contains("[event time `ts`, watermark 10ms behind]"),
        "{summary}"
    );
    let run = |from: Option<&str>| match from {
        Some(from) => dataflow_on(&dir.join("times.yaml"), &["run", "--from", from]).1,
        None => dataflow_on(&dir.join("times.yaml"), &["run"]).1,
    };
    let stderr = run(None);
    assert!(stderr.contains("(500 dropped)"), "{stderr}");
    assert_eq!(committed_lines(dir), 4_500);
    let m = last_checkpoint(dir);
    let newest = start + 4_998;
    assert_eq!(time_of(&m, "events#0"), Some(TimeState::NewestRead(newest)));
    // The end of the input closed event time, but a checkpoint keeps the
    // watermark the records made: a restore with more input goes on from it.
    for sums in ["sums#0", "sums#1"] {
        assert_eq!(
            time_of(&m, sums),
            Some(TimeState::Watermark(newest - 10 - 1)),
            "{sums}"
        );
    }

    std::fs::write(dir.join("in/b.jsonl"), events(start + 10_000, 1_000)).unwrap();
    run(Some("latest"));
    assert_eq!(committed_lines(dir), 5_400);
    let m = last_checkpoint(dir);
    let newest = start + 10_998;
    assert_eq!(time_of(&m, "events#0"), Some(TimeState::NewestRead(newest)));
    assert_eq!(
        time_of(&m, "sums#1"),
        Some(TimeState::Watermark(newest - 11))
    );
}

/// A union of a source with event time and one without has none: its
/// node passed on the times of the records that had one, and a batch's
/// times no longer matched its records.
#[test]
fn a_union_with_a_source_without_event_time_carries_no_times() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::create_dir_all(dir.join("in")).unwrap();
    // Enough records that batches of the two sources meet in one output
    // buffer of `sums`.
    std::fs::write(dir.join("in/a.jsonl"), events(0, 200_000)).unwrap();
    std::fs::write(dir.join("plain.jsonl"), events(0, 200_000)).unwrap();
    let spec = format!(
        r#"name: mixed
sources:
  timed:
    type: file
    path: "{dir}/in/a.jsonl"
    format: json
    on_error: skip
    event_time: {{timestamp: ts}}
  plain: {{type: file, path: "{dir}/plain.jsonl", format: json}}
transforms:
  sums: {{type: sum, inputs: [timed, plain], key: k, field: n, parallelism: 2}}
sinks:
  out: {{type: file, inputs: [sums], path: "{dir}/out", format: json, parallelism: 3}}
"#,
        dir = dir.display(),
    );
    std::fs::write(dir.join("mixed.yaml"), spec).unwrap();
    dataflow_on(&dir.join("mixed.yaml"), &["run"]);
    assert_eq!(committed_lines(dir), 180_000 + 200_000);
}
