//! Windows through the real binary, checked against the independent
//! model of [`crate::window_model`]: tumbling (with allowed lateness),
//! sliding and session windows over out-of-order streams with late
//! records, at parallelism 1, 2 and 4, in memory and in sled.

use std::path::Path;

use crate::harness::{bin, campaign, printed, run_fed, text};
use crate::window_model::{compare, expected, generate, jsonl, Fate, Kind, Setup, AGGREGATES};

const OOO: i64 = 2_000;
const BATCH: usize = 64;

fn spec(dir: &Path, setup: &Setup, parallelism: u32, backend: &str) -> String {
    format!(
        r#"name: windows
batch_size: {BATCH}
checkpoint: {{interval: 20ms, store: "file://{dir}/store", incremental: true}}
state: {{backend: {backend}, dir: "{dir}/state", cache_entries: 100}}
sources:
  events:
    type: file
    path: "{dir}/in.jsonl"
    format: json
    parallelism: 1
    event_time: {{timestamp: ts, max_out_of_orderness: {OOO}ms}}
transforms:
  windows:
    type: window
    inputs: [events]
    key: k
    {kind}
    allowed_lateness: {lateness}ms
    aggregates: {AGGREGATES}
    late: output
    parallelism: {parallelism}
sinks:
  out: {{type: print, inputs: [windows, windows.late], parallelism: 1}}
"#,
        dir = dir.display(),
        kind = setup.kind.yaml(),
        lateness = setup.lateness,
    )
}

/// Runs the job on `events`; returns what it printed and its late count.
fn run(dir: &Path, spec_text: &str) -> (Vec<serde_json::Value>, u64) {
    let _ = std::fs::remove_dir_all(dir.join("store"));
    std::fs::write(dir.join("job.yaml"), spec_text).unwrap();
    let out = std::process::Command::new(bin())
        .arg("run")
        .arg(dir.join("job.yaml"))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    (printed(&stdout), late_count(&stderr))
}

/// Window results apart from late records (which have no `window_start`),
/// those as sorted JSON text.
fn split_late(records: Vec<serde_json::Value>) -> (Vec<serde_json::Value>, Vec<String>) {
    let (results, late): (Vec<_>, Vec<_>) = records
        .into_iter()
        .partition(|r| r.get("window_start").is_some());
    let mut late: Vec<String> = late.iter().map(|r| r.to_string()).collect();
    late.sort();
    (results, late)
}

/// The late events of a stream, as [`split_late`] gives them.
fn late_events(events: &[crate::window_model::Event]) -> Vec<String> {
    let line: Vec<serde_json::Value> = jsonl(events)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut late: Vec<String> = events
        .iter()
        .zip(line)
        .filter(|(e, _)| e.fate == Fate::Late)
        .map(|(_, l)| l.to_string())
        .collect();
    late.sort();
    late
}

/// The `(N late)` of the run's summary, 0 when absent.
pub fn late_count(stderr: &str) -> u64 {
    stderr
        .split(" late)")
        .next()
        .filter(|before| before.len() < stderr.len())
        .and_then(|before| before.rsplit('(').next())
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[test]
fn windows_match_the_reference_model_at_every_parallelism_and_backend() {
    let (trials, seed) = campaign("WINDOWS", 1);
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let setups = [
        Setup {
            kind: Kind::Tumbling(10_000),
            ooo: OOO,
            batch: BATCH,
            lateness: 30_000,
            keys: 40,
        },
        Setup {
            kind: Kind::Sliding(9_000, 2_000),
            ooo: OOO,
            batch: BATCH,
            lateness: 0,
            keys: 30,
        },
        Setup {
            kind: Kind::Session(1_500),
            ooo: OOO,
            batch: BATCH,
            lateness: 0,
            keys: 60,
        },
    ];
    for trial in 0..trials {
        for (i, setup) in setups.iter().enumerate() {
            let events = generate(
                setup,
                6_000,
                1_714_557_600_000,
                4,
                seed + trial * 7 + i as u64,
            );
            std::fs::write(dir.join("in.jsonl"), jsonl(&events)).unwrap();
            let (want, late) = expected(setup, &events);
            let allowed = events.iter().filter(|e| e.fate == Fate::Allowed).count();
            eprintln!(
                "{:?}: {} windows, {late} late records, {allowed} late but allowed",
                setup.kind,
                want.len()
            );
            assert!(late > 50, "the stream has late records ({late})");
            for backend in ["memory", "sled"] {
                for parallelism in [1, 2, 4] {
                    let (records, counted) = run(dir, &spec(dir, setup, parallelism, backend));
                    let (records, late_records) = split_late(records);
                    assert_eq!(late_records, late_events(&events), "the late output");
                    let problems = compare(&want, &records);
                    assert!(
                        problems.is_empty(),
                        "{:?} at parallelism {parallelism} in {backend}, seed {seed}: {} problems, first: {:#?}",
                        setup.kind,
                        problems.len(),
                        &problems[..problems.len().min(5)]
                    );
                    assert_eq!(counted, late as u64, "{:?}: late records", setup.kind);
                }
            }
        }
    }
}

/// A window job killed with SIGKILL at random moments and restored with
/// `--from latest` at a random parallelism each time: every window's
/// results are committed exactly once (no emission lost or repeated),
/// and the final run reports the late count of an uninterrupted run.
fn windows_survive_kills(test: &str, setup: &Setup, events: usize, kills: u32) {
    let (_, seed) = campaign("WINDOW_KILLS", 1);
    let mut rng = crate::recovery::Prng(seed);
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let stream = generate(setup, events, 1_714_557_600_000, 3, seed);
    std::fs::write(dir.join("in.jsonl"), jsonl(&stream)).unwrap();
    let (want, late) = expected(setup, &stream);
    let spec_at = |parallelism: u32, backend: &str| {
        let text = spec(dir, setup, parallelism, backend)
            .replace(
                "sinks:\n  out: {type: print, inputs: [windows, windows.late], parallelism: 1}",
                &format!(
                    "sinks:\n  out: {{type: file, inputs: [windows, windows.late], path: \"{}/out\", format: json, parallelism: 2}}",
                    dir.display()
                ),
            )
            .replace("interval: 20ms", "interval: 50ms, retain: 2");
        std::fs::write(dir.join("job.yaml"), text).unwrap();
    };
    let (stderr, killed) =
        crate::recovery::kill_restore_rescale(dir, "windows", &mut rng, kills, spec_at);
    let (results, late_records) = split_late(crate::stored::committed_records(&dir.join("out")));
    assert_eq!(
        late_records,
        late_events(&stream),
        "{test}: the late output"
    );
    let problems = compare(&want, &results);
    assert!(
        problems.is_empty(),
        "{test}, seed {seed}: {} problems, first: {:#?}",
        problems.len(),
        &problems[..problems.len().min(5)]
    );
    assert_eq!(late_count(&stderr), late as u64, "{test}: late records");
    eprintln!(
        "{test}: {killed} kills, {} windows, {late} late records, seed {seed}",
        want.len()
    );
}

#[test]
fn tumbling_windows_with_late_firings_survive_kills_and_rescales() {
    let setup = Setup {
        kind: Kind::Tumbling(10_000),
        ooo: OOO,
        batch: BATCH,
        lateness: 30_000,
        keys: 500,
    };
    windows_survive_kills("tumbling_windows_survive_kills", &setup, 600_000, 10);
}

#[test]
fn session_windows_survive_kills_and_rescales() {
    let setup = Setup {
        kind: Kind::Session(1_500),
        ooo: OOO,
        batch: BATCH,
        lateness: 0,
        keys: 500,
    };
    windows_survive_kills("session_windows_survive_kills", &setup, 600_000, 10);
}

/// The window examples in specs/: every error line is in exactly one
/// per-minute count, and every click in exactly one session, whose pages
/// are in the order they were visited.
#[test]
fn the_window_examples_count_every_record_once() {
    let run = |spec: &str| {
        let out = crate::harness::dataflow(&["run", spec]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{spec}: {stderr}");
        printed(&stdout)
    };
    let lines = |path: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(crate::harness::root().join(path))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let errors = lines("specs/data/logs.jsonl")
        .iter()
        .filter(|l| l["level"] == "error")
        .count();
    let minutes = run("specs/error_counts.yaml");
    let counted: u64 = minutes.iter().map(|m| m["errors"].as_u64().unwrap()).sum();
    assert_eq!(counted, errors as u64);
    assert!(minutes
        .iter()
        .all(|m| m["window_start"].as_str().unwrap().ends_with(":00Z")));

    let clicks = lines("specs/data/clicks.jsonl");
    let sessions = run("specs/sessions.yaml");
    let counted: u64 = sessions.iter().map(|s| s["clicks"].as_u64().unwrap()).sum();
    assert_eq!(counted, clicks.len() as u64);
    for s in &sessions {
        let mut visits: Vec<(i64, String)> = clicks
            .iter()
            .filter(|c| c["user"] == s["user"])
            .map(|c| {
                (
                    c["ts"].as_i64().unwrap(),
                    c["page"].as_str().unwrap().to_owned(),
                )
            })
            .filter(|(ts, _)| {
                let ms = |f: &str| {
                    chrono::DateTime::parse_from_rfc3339(s[f].as_str().unwrap())
                        .unwrap()
                        .timestamp_millis()
                };
                *ts >= ms("window_start") && *ts < ms("window_end")
            })
            .collect();
        visits.sort_by_key(|(ts, _)| *ts);
        let pages: Vec<&str> = visits.iter().map(|(_, p)| p.as_str()).collect();
        assert_eq!(s["pages"], serde_json::json!(pages), "{s}");
    }
}

/// Windows of processing time over records without event time: every
/// record in exactly one window, the windows closed by the clock while
/// the input is still open, and the last ones at its end.
#[test]
fn processing_time_windows_close_by_the_clock_and_at_the_end_of_input() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("clock.yaml");
    std::fs::write(
        &spec,
        "name: clock\nsources:\n  lines: {type: stdin}\ntransforms:\n  \
         per_second:\n    type: window\n    inputs: [lines]\n    key: this\n    time: processing\n    \
         tumbling: 300ms\n    aggregates: {n: count}\nsinks:\n  out: {type: print, inputs: [per_second]}\n",
    )
    .unwrap();
    let (mut child, mut stdin, rx) = run_fed(&spec, &[], &dir.path().join("runs"));
    stdin.write_all(b"a\nb\na\n").unwrap();
    stdin.flush().unwrap();
    // The input is still open: only the clock can close these windows.
    let first = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("a window closed by the clock");
    let mut results = vec![first];
    std::thread::sleep(std::time::Duration::from_millis(200));
    results.extend(rx.try_iter());
    stdin.write_all(b"c\na\n").unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success());
    results.extend(rx.iter());
    let mut counts = std::collections::BTreeMap::new();
    for r in printed(&results.join("\n")) {
        *counts
            .entry(r["key"].as_str().unwrap().to_owned())
            .or_insert(0) += r["n"].as_u64().unwrap();
    }
    assert_eq!(
        counts,
        [("a", 3), ("b", 1), ("c", 1)]
            .into_iter()
            .map(|(k, n)| (k.to_owned(), n))
            .collect()
    );
}

/// `early`: an open window's result so far comes out while the window is
/// still open (by the clock), and the final one when it closes.
#[test]
fn early_results_come_out_by_the_clock_before_the_window_closes() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("early.yaml");
    std::fs::write(
        &spec,
        "name: early\nsources:\n  events:\n    type: stdin\n    format: json\n    \
         event_time: {timestamp: ts}\ntransforms:\n  hourly:\n    type: window\n    \
         inputs: [events]\n    key: k\n    tumbling: 1h\n    early: 200ms\n    \
         aggregates: {n: count}\nsinks:\n  out: {type: print, inputs: [hourly]}\n",
    )
    .unwrap();
    let (mut child, mut stdin, rx) = run_fed(&spec, &[], &dir.path().join("runs"));
    let event = |ms: i64| format!("{{\"ts\": {}, \"k\": \"a\"}}\n", 1_714_557_600_000 + ms);
    for ms in [1_000, 2_000, 3_000] {
        stdin.write_all(event(ms).as_bytes()).unwrap();
    }
    stdin.flush().unwrap();
    let early = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("an early result while the hour is open");
    assert_eq!(printed(&early)[0]["n"], 3, "{early}");
    stdin.write_all(event(4_000).as_bytes()).unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success());
    let rest: Vec<String> = rx.iter().collect();
    let last = printed(rest.last().expect("the final result"));
    assert_eq!(last[0]["n"], 4, "{rest:?}");
}

/// `dataflow stop` without `--drain` ends no event time: the windows still
/// open stay in the savepoint, unfired, and close after the restore; with
/// `--drain` they close before it. A plain stop used to close every open
/// window after the savepoint's barrier, as if the input had ended: a
/// print or at-least-once sink showed results the restored run gives again.
#[test]
fn a_plain_stop_leaves_windows_open_in_the_savepoint_and_drain_closes_them() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let spec = dir.path().join("stopped.yaml");
    std::fs::write(
        &spec,
        format!(
            "name: stopped\ncheckpoint: {{interval: 1s, store: \"file://{}\"}}\nsources:\n  \
             events:\n    type: stdin\n    format: json\n    event_time: {{timestamp: ts}}\n\
             transforms:\n  hourly: {{type: window, inputs: [events], key: k, tumbling: 1h, \
             aggregates: {{n: count}}, parallelism: 2}}\nsinks:\n  out: {{type: print, inputs: [hourly]}}\n",
            dir.path().join("store").display()
        ),
    )
    .unwrap();
    let event =
        |k: &str, ms: i64| format!("{{\"ts\": {}, \"k\": \"{k}\"}}\n", 1_714_557_600_000 + ms);
    let hour = 3_600_000;
    let stop = |args: &[&str]| {
        let out = std::process::Command::new(bin())
            .arg("stop")
            .arg("stopped")
            .args(args)
            .env("DATAFLOW_RUN_DIR", &runs)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out).1);
        text(&out).0.trim().to_owned()
    };
    let next = |rx: &crossbeam_channel::Receiver<String>| {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("a result");
        printed(&line).remove(0)
    };

    let (mut child, mut stdin, rx) = run_fed(&spec, &[], &runs);
    for e in [event("a", 0), event("a", 1_000), event("b", 2 * hour)] {
        stdin.write_all(e.as_bytes()).unwrap();
    }
    stdin.flush().unwrap();
    // `b`'s record closed `a`'s hour: the job has read everything.
    let first = next(&rx);
    assert_eq!(
        (&first["k"], &first["n"]),
        (&"a".into(), &2.into()),
        "{first}"
    );
    let savepoint = stop(&[]);
    assert!(child.wait().unwrap().success());
    let after: Vec<String> = rx.iter().collect();
    assert!(after.is_empty(), "a plain stop closed windows: {after:?}");

    // Restored, `b`'s window still holds its record; a drain closes it.
    let (mut child, mut stdin, rx) = run_fed(&spec, &["--from", &savepoint], &runs);
    stdin
        .write_all(event("b", 2 * hour + 1_000).as_bytes())
        .unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    stop(&["--drain"]);
    let drained = next(&rx);
    assert_eq!(
        (&drained["k"], &drained["n"]),
        (&"b".into(), &2.into()),
        "{drained}"
    );
    assert!(child.wait().unwrap().success());
    drop(stdin);
    assert_eq!(rx.iter().count(), 0);
}
