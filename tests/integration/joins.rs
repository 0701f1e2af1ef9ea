//! Interval and window joins through the real binary, against an
//! independent model: every pair of a left and a right record with the
//! same key and the right's time within the bounds of the left's (or in a
//! window with it), and (left join) every left record without one; at
//! parallelism 1, 2 and 4, in memory and in sled, and through SIGKILLs
//! with restores at other parallelisms.
//!
//! Each stream is generated on time with respect to its own watermark, so
//! no record is late whatever the two sources' relative speeds, and which
//! pairs join does not depend on when records arrive.

use std::path::Path;

use crate::harness::{bin, campaign, printed, text};
use crate::recovery::Prng;

const OOO: i64 = 1_000;
const LOWER: i64 = -2_000;
const UPPER: i64 = 5_000;

struct Record {
    ts: i64,
    key: u64,
    seq: usize,
}

/// `n` records of `keys` keys, each at most `OOO - 1` ms behind the newest before it.
fn stream(n: usize, keys: u64, seed: u64) -> Vec<Record> {
    let mut rng = Prng(seed);
    let mut newest = 1_714_557_600_000i64;
    (0..n)
        .map(|seq| {
            let ts = newest - OOO + 1 + rng.range(0, OOO as u64 + 400) as i64;
            newest = newest.max(ts);
            Record {
                ts,
                key: rng.range(0, keys - 1),
                seq,
            }
        })
        .collect()
}

fn jsonl(records: &[Record], key_field: &str) -> String {
    records
        .iter()
        .map(|r| {
            format!(
                "{{\"ts\": {}, \"{key_field}\": {}, \"seq\": {}}}\n",
                r.ts, r.key, r.seq
            )
        })
        .collect()
}

/// The results as sorted `(left seq, right seq)`, right `None` for an unjoined left.
fn model(left: &[Record], right: &[Record], outer: bool) -> Vec<(u64, Option<u64>)> {
    let mut out = Vec::new();
    for l in left {
        let mut joined = false;
        for r in right {
            if r.key == l.key && (LOWER..=UPPER).contains(&(r.ts - l.ts)) {
                out.push((l.seq as u64, Some(r.seq as u64)));
                joined = true;
            }
        }
        if outer && !joined {
            out.push((l.seq as u64, None));
        }
    }
    out.sort();
    out
}

fn pairs(records: &[serde_json::Value]) -> Vec<(u64, Option<u64>)> {
    let mut out: Vec<(u64, Option<u64>)> = records
        .iter()
        .map(|r| {
            (
                r["lefts"]["seq"].as_u64().unwrap(),
                r["rights"]["seq"].as_u64(),
            )
        })
        .collect();
    out.sort();
    out
}

/// How the interval join of these tests joins.
const BETWEEN: &str = "between: {lower: -2000ms, upper: 5000ms}";

fn spec(dir: &Path, parallelism: u32, backend: &str, kind: &str, sink: &str) -> String {
    spec_joining(dir, parallelism, backend, kind, sink, BETWEEN)
}

/// [`spec`] with `joining`: `between: ...` or a window.
fn spec_joining(
    dir: &Path,
    parallelism: u32,
    backend: &str,
    kind: &str,
    sink: &str,
    joining: &str,
) -> String {
    format!(
        r#"name: joins
batch_size: 64
checkpoint: {{interval: 50ms, store: "file://{dir}/store", incremental: true, retain: 2}}
state: {{backend: {backend}, dir: "{dir}/state", cache_entries: 100}}
sources:
  lefts:
    type: file
    path: "{dir}/left.jsonl"
    format: json
    event_time: {{timestamp: ts, max_out_of_orderness: {OOO}ms}}
  rights:
    type: file
    path: "{dir}/right.jsonl"
    format: json
    event_time: {{timestamp: ts, max_out_of_orderness: {OOO}ms}}
transforms:
  joined:
    type: join
    inputs: [lefts, rights]
    key: {{lefts: k, rights: key}}
    {joining}
    kind: {kind}
    parallelism: {parallelism}
sinks:
  out: {sink}
"#,
        dir = dir.display(),
    )
}

/// Runs the spec `text` in `dir`: what it printed, checked to have ended
/// well with no record late.
fn run_printed(dir: &Path, text_: &str) -> Vec<serde_json::Value> {
    std::fs::write(dir.join("job.yaml"), text_).unwrap();
    let out = std::process::Command::new(bin())
        .arg("run")
        .arg(dir.join("job.yaml"))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains(" late)"), "no record is late: {stderr}");
    printed(&stdout)
}

fn write_streams(dir: &Path, n: usize, seed: u64) -> (Vec<Record>, Vec<Record>) {
    let left = stream(n, 300, seed);
    let right = stream(n, 300, seed ^ 0x5eed);
    std::fs::write(dir.join("left.jsonl"), jsonl(&left, "k")).unwrap();
    std::fs::write(dir.join("right.jsonl"), jsonl(&right, "key")).unwrap();
    (left, right)
}

#[test]
fn interval_joins_match_the_model_at_every_parallelism_and_backend() {
    let (_, seed) = campaign("JOINS", 1);
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (left, right) = write_streams(dir, 8_000, seed);
    for kind in ["inner", "left"] {
        let want = model(&left, &right, kind == "left");
        assert!(want.len() > 1_000, "{} results", want.len());
        for backend in ["memory", "sled"] {
            for parallelism in [1, 2, 4] {
                let _ = std::fs::remove_dir_all(dir.join("store"));
                let text_ = spec(
                    dir,
                    parallelism,
                    backend,
                    kind,
                    "{type: print, inputs: [joined]}",
                );
                let got = pairs(&run_printed(dir, &text_));
                assert!(
                    got == want,
                    "{kind} join at parallelism {parallelism} in {backend}, seed {seed}: {} results, want {}",
                    got.len(),
                    want.len()
                );
            }
        }
    }
}

/// A left join killed with SIGKILL at random moments and restored with
/// `--from latest` at a random parallelism: every result committed once.
#[test]
fn interval_joins_survive_kills_and_rescales() {
    let (_, seed) = campaign("JOIN_KILLS", 1);
    let mut rng = Prng(seed);
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (left, right) = write_streams(dir, 400_000, seed);
    let want = model_by_key(&left, &right);
    let sink = format!(
        "{{type: file, inputs: [joined], path: \"{}/out\", format: json, parallelism: 2}}",
        dir.display()
    );
    let write_spec = |parallelism: u32, backend: &str| {
        std::fs::write(
            dir.join("job.yaml"),
            spec(dir, parallelism, backend, "left", &sink),
        )
        .unwrap();
    };
    let (_, killed) = crate::recovery::kill_restore_rescale(dir, "joins", &mut rng, 10, write_spec);
    let got = pairs(&crate::stored::committed_records(&dir.join("out")));
    assert!(
        got == want,
        "seed {seed}: {} results after {killed} kills, want {}",
        got.len(),
        want.len()
    );
    eprintln!(
        "interval_joins_survive_kills: {killed} kills, {} results, seed {seed}",
        want.len()
    );
}

/// [`model`] of a left join, by key: fast enough for large streams.
fn model_by_key(left: &[Record], right: &[Record]) -> Vec<(u64, Option<u64>)> {
    let mut by_key: std::collections::HashMap<u64, Vec<&Record>> = std::collections::HashMap::new();
    for r in right {
        by_key.entry(r.key).or_default().push(r);
    }
    let mut out = Vec::new();
    for l in left {
        let mut joined = false;
        for r in by_key.get(&l.key).map_or(&[][..], Vec::as_slice) {
            if (LOWER..=UPPER).contains(&(r.ts - l.ts)) {
                out.push((l.seq as u64, Some(r.seq as u64)));
                joined = true;
            }
        }
        if !joined {
            out.push((l.seq as u64, None));
        }
    }
    out.sort();
    out
}

/// specs/orders_payments.yaml: every order once, with its payment when
/// that came within 15 minutes of it, alone otherwise.
#[test]
fn the_orders_and_payments_example_joins_each_order_once() {
    let out = crate::harness::dataflow(&["run", "specs/orders_payments.yaml"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let read = |path: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(crate::harness::root().join(path))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let ms = |v: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    let payments = read("specs/data/payments.jsonl");
    let mut got: Vec<(String, Option<String>)> = printed(&stdout)
        .iter()
        .map(|r| {
            (
                r["orders"]["id"].as_str().unwrap().to_owned(),
                r["payments"]["order_id"].as_str().map(str::to_owned),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, Option<String>)> = read("specs/data/shop_orders.jsonl")
        .iter()
        .map(|o| {
            let paid = payments.iter().find(|p| {
                p["order_id"] == o["id"]
                    && (0..=15 * 60_000).contains(&(ms(&p["paid_at"]) - ms(&o["placed_at"])))
            });
            (
                o["id"].as_str().unwrap().to_owned(),
                paid.map(|p| p["order_id"].as_str().unwrap().to_owned()),
            )
        })
        .collect();
    want.sort();
    assert_eq!(got, want);
    assert!(got.iter().any(|(_, p)| p.is_none()) && got.iter().any(|(_, p)| p.is_some()));
}

/// The start of each window of `size` every `slide` that holds `time`.
fn windows_of(time: i64, size: i64, slide: i64) -> Vec<i64> {
    let last = time - time.rem_euclid(slide);
    (0..)
        .map(|i| last - i * slide)
        .take_while(|start| start + size > time)
        .collect()
}

/// A window join's results, as [`model`]'s: for each window (of `size`,
/// one every `slide`) each pair of a left and a right record of one key
/// in it, and (outer) each left record alone in it.
fn window_model(
    left: &[Record],
    right: &[Record],
    size: i64,
    slide: i64,
    outer: bool,
) -> Vec<(u64, Option<u64>)> {
    let mut by_window: std::collections::HashMap<(u64, i64), Vec<&Record>> =
        std::collections::HashMap::new();
    for r in right {
        for start in windows_of(r.ts, size, slide) {
            by_window.entry((r.key, start)).or_default().push(r);
        }
    }
    let mut out = Vec::new();
    for l in left {
        for start in windows_of(l.ts, size, slide) {
            let rights = by_window
                .get(&(l.key, start))
                .map_or(&[][..], Vec::as_slice);
            if rights.is_empty() && outer {
                out.push((l.seq as u64, None));
            }
            out.extend(rights.iter().map(|r| (l.seq as u64, Some(r.seq as u64))));
        }
    }
    out.sort();
    out
}

/// Window joins (tumbling and sliding, inner and left) match the model at
/// parallelism 1, 2 and 4 in both backends; results carry their window.
#[test]
fn window_joins_match_the_model_at_every_parallelism_and_backend() {
    let (_, seed) = campaign("WINDOW_JOINS", 1);
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (left, right) = write_streams(dir, 8_000, seed);
    for (joining, size, slide) in [
        ("tumbling: 3s", 3_000, 3_000),
        ("sliding: 4s\n    slide: 2s", 4_000, 2_000),
    ] {
        for kind in ["inner", "left"] {
            let want = window_model(&left, &right, size, slide, kind == "left");
            assert!(want.len() > 1_000, "{} results", want.len());
            for backend in ["memory", "sled"] {
                for parallelism in [1, 2, 4] {
                    let _ = std::fs::remove_dir_all(dir.join("store"));
                    let sink = "{type: print, inputs: [joined]}";
                    let text_ = spec_joining(dir, parallelism, backend, kind, sink, joining);
                    let records = run_printed(dir, &text_);
                    assert!(records
                        .iter()
                        .all(|r| r["window_start"].is_string() && r["window_end"].is_string()));
                    let got = pairs(&records);
                    assert!(
                        got == want,
                        "{kind} window join ({joining}) at parallelism {parallelism} in {backend}, seed {seed}: {} results, want {}",
                        got.len(),
                        want.len()
                    );
                }
            }
        }
    }
}

/// A left window join killed with SIGKILL at random moments and restored
/// with `--from latest` at a random parallelism: every result committed
/// once.
#[test]
fn window_joins_survive_kills_and_rescales() {
    let (_, seed) = campaign("WINDOW_JOIN_KILLS", 1);
    let mut rng = Prng(seed);
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (left, right) = write_streams(dir, 200_000, seed);
    let want = window_model(&left, &right, 3_000, 3_000, true);
    let sink = format!(
        "{{type: file, inputs: [joined], path: \"{}/out\", format: json, parallelism: 2}}",
        dir.display()
    );
    let write_spec = |parallelism: u32, backend: &str| {
        let text = spec_joining(dir, parallelism, backend, "left", &sink, "tumbling: 3s");
        std::fs::write(dir.join("job.yaml"), text).unwrap();
    };
    let (_, killed) = crate::recovery::kill_restore_rescale(dir, "joins", &mut rng, 6, write_spec);
    let got = pairs(&crate::stored::committed_records(&dir.join("out")));
    assert!(
        got == want,
        "seed {seed}: {} results after {killed} kills, want {}",
        got.len(),
        want.len()
    );
}
