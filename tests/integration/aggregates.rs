//! What `count`, `min` and `max` emit, through the real binary: `count`
//! names its key after the field it is keyed by, `min` and `max` emit the
//! whole record holding the extreme, through checkpoints and restores too.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::harness::{bin, dataflow, printed, run_fed, text};
use crate::restart::committed;

#[test]
fn count_names_the_key_by_its_field_and_max_emits_the_record_holding_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.jsonl");
    let orders = [
        json!({"id": 1, "user": "ann", "amount": 5, "place": {"city": "Oslo"}}),
        json!({"id": 2, "user": "bob", "amount": 7, "place": {"city": "Oslo"}}),
        json!({"id": 3, "user": "ann", "amount": 9, "place": {"city": "Rome"}}),
        json!({"id": 4, "user": "ann", "amount": 2, "place": {"city": "Oslo"}}),
        json!({"id": 5, "user": "ann", "amount": 9, "place": {"city": "Bern"}}),
    ];
    let lines: Vec<String> = orders.iter().map(Value::to_string).collect();
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let spec = dir.path().join("aggregates.yaml");
    std::fs::write(
        &spec,
        format!(
            r#"name: aggregates
parallelism: 1
sources:
  orders: {{type: file, path: "{}", format: json}}
transforms:
  per_user: {{type: count, inputs: [orders], key: user}}
  per_city: {{type: count, inputs: [orders], key: place.city}}
  per_record: {{type: count, inputs: [orders], key: this}}
  largest: {{type: max, inputs: [orders], key: user, field: amount}}
sinks:
  out: {{type: print, inputs: [per_user, per_city, per_record, largest]}}
"#,
            input.display()
        ),
    )
    .unwrap();
    let out = dataflow(&["run", spec.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let records = printed(&stdout);
    // Each node's records arrive in order; the nodes interleave.
    let with = |field: &str| -> Vec<Value> {
        records
            .iter()
            .filter(|r| r.get(field).is_some())
            .cloned()
            .collect()
    };
    assert_eq!(
        with("user")
            .into_iter()
            .filter(|r| r.get("count").is_some())
            .collect::<Vec<_>>(),
        [
            json!({"user": "ann", "count": 1}),
            json!({"user": "bob", "count": 1}),
            json!({"user": "ann", "count": 2}),
            json!({"user": "ann", "count": 3}),
            json!({"user": "ann", "count": 4}),
        ]
    );
    assert_eq!(
        with("city"),
        [
            json!({"city": "Oslo", "count": 1}),
            json!({"city": "Oslo", "count": 2}),
            json!({"city": "Rome", "count": 1}),
            json!({"city": "Oslo", "count": 3}),
            json!({"city": "Bern", "count": 1}),
        ]
    );
    // Keyed by `this`, the key keeps the name `key`.
    let by_record = with("key");
    assert_eq!(by_record.len(), 5);
    assert_eq!(by_record[2], json!({"key": orders[2], "count": 1}));
    // The largest order of each user so far, whole; on the tie (id 5),
    // the earlier order (id 3) stays.
    assert_eq!(with("amount"), [0, 1, 2, 2, 2].map(|i| orders[i].clone()));
}

/// Runs `dataflow run spec`, with a failure injected if given; asserts it
/// succeeds and returns its stderr.
fn run_ok(spec: &Path, failure: Option<&str>) -> String {
    let mut cmd = Command::new(bin());
    cmd.arg("run").arg(spec);
    if let Some(failure) = failure {
        cmd.env("DATAFLOW_INJECT_FAILURE", failure);
    }
    let out = cmd.output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn min_and_max_restored_from_a_checkpoint_emit_what_a_straight_run_does() {
    let dir = tempfile::tempdir().unwrap();
    for backend in ["memory", "sled"] {
        let spec = |name: &str| {
            let at = |what: &str| {
                dir.path()
                    .join(format!("{what}-{name}"))
                    .display()
                    .to_string()
            };
            let yaml = format!(
                r#"name: {name}
checkpoint:
  interval: 100ms
  incremental: true
  store: "file://{store}"
restart: {{strategy: fixed_delay, attempts: 2, delay: 100ms}}
state: {{backend: {backend}, dir: "{state}", cache_entries: 16}}
sources:
  numbers: {{type: generate, seed: 5, count: 40000, rate: 40000}}
transforms:
  lowest: {{type: min, inputs: [numbers], key: 'this.seq % 100', field: value}}
  highest: {{type: max, inputs: [numbers], key: 'this.seq % 100', field: value}}
sinks:
  low: {{type: file, inputs: [lowest], path: "{low}", format: json}}
  high: {{type: file, inputs: [highest], path: "{high}", format: json}}
"#,
                store = at("store"),
                state = at("state"),
                low = at("low"),
                high = at("high"),
            );
            let path = dir.path().join(format!("{name}.yaml"));
            std::fs::write(&path, yaml).unwrap();
            path
        };
        let clean = format!("clean-{backend}");
        let failing = format!("failing-{backend}");
        run_ok(&spec(&clean), None);
        let stderr = run_ok(&spec(&failing), Some("highest:20000"));
        assert!(
            stderr.contains("restoring from"),
            "{backend}: the restart did not restore a checkpoint: {stderr}"
        );
        for sink in ["low", "high"] {
            let expected = committed(&dir.path().join(format!("{sink}-{clean}")));
            assert_eq!(expected.len(), 40000, "{backend} {sink}");
            // Records other than the extreme's are emitted: the state holds
            // whole records, not just the value.
            let distinct: std::collections::BTreeSet<&String> = expected.iter().collect();
            assert!(distinct.len() < 40000, "{backend} {sink}");
            assert!(
                committed(&dir.path().join(format!("{sink}-{failing}"))) == expected,
                "{backend} {sink}: the output after a restore differs from a straight run"
            );
        }
    }
}

/// A checkpoint from before `min` and `max` kept whole records holds the
/// bare extreme; a `sum` of one record per key leaves exactly that state,
/// in a checkpoint made to look like one of format version 1 (which did
/// not record each node's aggregate: a restore now refuses a `sum`'s state
/// for a `max`). Restored into a `max`, it is the extreme with the other
/// fields unknown:
/// the current record is emitted with the field set to it, until a new
/// extreme is kept whole.
#[test]
fn max_restored_from_a_bare_number_emits_the_current_record_until_a_new_extreme() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    let spec = |kind: &str| {
        let path = dir.path().join(format!("{kind}.yaml"));
        std::fs::write(
            &path,
            format!(
                r#"name: old-state
parallelism: 1
checkpoint:
  interval: 1s
  store: "file://{store}"
sources:
  orders: {{type: file, path: "{inputs}/*.jsonl", format: json}}
transforms:
  largest: {{type: {kind}, inputs: [orders], key: k, field: n}}
sinks:
  out: {{type: print, inputs: [largest]}}
"#,
                store = dir.path().join("store").display(),
                inputs = inputs.display(),
            ),
        )
        .unwrap();
        path
    };
    std::fs::write(
        inputs.join("1.jsonl"),
        "{\"k\": \"a\", \"n\": 4, \"id\": 1}\n{\"k\": \"b\", \"n\": 2, \"id\": 2}\n",
    )
    .unwrap();
    let first = dataflow(&["run", spec("sum").to_str().unwrap()]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first).1);
    for entry in std::fs::read_dir(dir.path().join("store/old-state")).unwrap() {
        let path = entry.unwrap().path().join("_metadata");
        if let Ok(bytes) = std::fs::read(&path) {
            let mut metadata: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            metadata["format_version"] = json!(1);
            metadata.as_object_mut().unwrap().remove("nodes");
            metadata.as_object_mut().unwrap().remove("checksum");
            std::fs::write(&path, serde_json::to_vec(&metadata).unwrap()).unwrap();
        }
    }
    std::fs::write(
        inputs.join("2.jsonl"),
        "{\"k\": \"a\", \"n\": 3, \"id\": 3}\n{\"k\": \"a\", \"n\": 6, \"id\": 4}\n\
         {\"k\": \"a\", \"n\": 5, \"id\": 5}\n{\"k\": \"b\", \"n\": 2, \"id\": 6}\n",
    )
    .unwrap();
    let out = dataflow(&["run", spec("max").to_str().unwrap(), "--from", "latest"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        printed(&stdout),
        [
            json!({"k": "a", "n": 4, "id": 3}),
            json!({"k": "a", "n": 6, "id": 4}),
            json!({"k": "a", "n": 6, "id": 4}),
            json!({"k": "b", "n": 2, "id": 6}),
        ]
    );
}

/// `ttl`: a key left alone for longer than its time to live counts from
/// one again; within it, the count goes on across a restore; and a
/// checkpoint of a count with a ttl is refused by name for one without.
#[test]
fn a_count_with_a_ttl_forgets_idle_keys_and_keeps_the_rest_across_a_restore() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let write_spec = |ttl: &str| {
        let spec = dir.path().join("ttl.yaml");
        std::fs::write(
            &spec,
            format!(
                "name: ttl\ncheckpoint: {{interval: 1s, store: \"file://{}\"}}\nsources:\n  \
                 lines: {{type: stdin}}\ntransforms:\n  counts: {{type: count, inputs: [lines], \
                 key: this{ttl}}}\nsinks:\n  out: {{type: print, inputs: [counts]}}\n",
                dir.path().join("store").display()
            ),
        )
        .unwrap();
        spec
    };
    let next_count = |rx: &crossbeam_channel::Receiver<String>| {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("a count");
        printed(&line)[0]["count"].as_i64().unwrap()
    };

    // 300 ms to live: a second `a` a second later is a first one again.
    let spec = write_spec(", ttl: 300ms");
    let (mut child, mut stdin, rx) = run_fed(&spec, &[], &runs);
    stdin.write_all(b"a\n").unwrap();
    stdin.flush().unwrap();
    assert_eq!(next_count(&rx), 1);
    stdin.write_all(b"a\n").unwrap();
    stdin.flush().unwrap();
    assert_eq!(next_count(&rx), 2);
    std::thread::sleep(std::time::Duration::from_secs(1));
    stdin.write_all(b"a\n").unwrap();
    drop(stdin);
    assert_eq!(next_count(&rx), 1, "`a` outlived its ttl");
    assert!(child.wait().unwrap().success());

    // An hour to live: restored, `a` goes on from where it was.
    let spec = write_spec(", ttl: 1h");
    let (mut child, mut stdin, rx) = run_fed(&spec, &["--from", "latest"], &runs);
    stdin.write_all(b"a\n").unwrap();
    drop(stdin);
    assert_eq!(next_count(&rx), 2);
    assert!(child.wait().unwrap().success());

    // Without a ttl, the state is of another kind.
    let spec = write_spec("");
    let out = Command::new(bin())
        .args(["run", spec.to_str().unwrap(), "--from", "latest"])
        .env("DATAFLOW_RUN_DIR", &runs)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = text(&out).1;
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("it was a `count with ttl` and is now a `count`"),
        "{stderr}"
    );
}
