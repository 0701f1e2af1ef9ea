//! `check --against` and `run --drop-state`: whether a checkpoint's state
//! fits a changed spec, node by node, before anything runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::{bin, text};

/// A word count keeping two states (`counts` by word, `sums` by `w`),
/// with `edit` applied to the spec's text.
fn spec(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let text = format!(
        r#"name: compat
checkpoint: {{interval: 100ms, store: "file://{store}"}}
sources:
  lines: {{type: generate, mode: lines, count: 2000, words_per_line: 4, vocabulary: 30}}
transforms:
  words: {{type: flat_map, inputs: [lines], split: ","}}
  counts: {{type: count, inputs: [words], key: this, parallelism: 2}}
  pairs: {{type: map, inputs: [words], expr: '{{"w": this, "n": 1}}'}}
  sums: {{type: sum, inputs: [pairs], key: w, field: n}}
sinks:
  out: {{type: blackhole, inputs: [counts, sums]}}
"#,
        store = dir.join("store").display()
    );
    let path = dir.join(name);
    std::fs::write(&path, edit(text)).unwrap();
    path
}

fn dataflow(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().unwrap()
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn check_against_reports_each_node_and_run_refuses_what_cannot_restore() {
    let dir = tempfile::tempdir().unwrap();
    let original = spec(dir.path(), "original.yaml", |t| t);
    let first = dataflow(&["run", "-q", arg(&original)]);
    assert!(first.status.success(), "{}", text(&first).1);

    // The same spec restores, node by node.
    let same = dataflow(&["check", arg(&original), "--against", "latest"]);
    let (stdout, stderr) = text(&same);
    assert_eq!(same.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("lines   line 4, column 3      position restored, 1 instance"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "counts  line 7, column 3      state restored: count keyed by `this`, 2 instances"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("restorable: `run --from` would start from it"),
        "{stdout}"
    );

    // Rescaled `counts`, `sums` keyed differently, a new stateful node
    // `top`: one restorable change, one refused, one new.
    let changed = spec(dir.path(), "changed.yaml", |t| {
        t.replace("key: this, parallelism: 2", "key: this, parallelism: 3")
            .replace(
                "key: w, field: n}",
                "key: this.w, field: n}\n  top: {type: max, inputs: [pairs], key: w, field: n}",
            )
            .replace("inputs: [counts, sums]", "inputs: [counts, sums, top]")
    });
    let checked = dataflow(&["check", arg(&changed), "--against", "latest"]);
    let (stdout, _) = text(&checked);
    assert_eq!(checked.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("rescaled from 2 instances to 3"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sums    line 9, column 3      cannot be restored: it was keyed by `w` and is now keyed by `this.w`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("top     line 10, column 3     new: starts with empty state"),
        "{stdout}"
    );
    assert!(stdout.contains("refused: the state of `sums`"), "{stdout}");
    let json = dataflow(&[
        "check",
        arg(&changed),
        "--against",
        "latest",
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let against = &report["files"][0]["against"];
    assert_eq!(against["restorable"], false, "{against}");
    let verdict = |node: &str| {
        against["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == node)
            .map(|n| n["verdict"].as_str().unwrap().to_owned())
    };
    assert_eq!(verdict("sums").as_deref(), Some("incompatible"));
    assert_eq!(verdict("top").as_deref(), Some("new"));
    assert_eq!(verdict("counts").as_deref(), Some("restored"));

    // `run` refuses the same way, before anything runs.
    let refused = dataflow(&["run", "-q", arg(&changed), "--from", "latest"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused).1.contains("--drop-state sums"),
        "{}",
        text(&refused).1
    );
    // A name that holds no state is an error, not silently ignored.
    let typo = dataflow(&[
        "run",
        "-q",
        arg(&changed),
        "--from",
        "latest",
        "--drop-state",
        "sum",
    ]);
    assert_eq!(typo.status.code(), Some(1));
    assert!(
        text(&typo).1.contains("--drop-state sum: chk-"),
        "{}",
        text(&typo).1
    );
    // Dropping `sums` on purpose restores the rest.
    let dropped = dataflow(&[
        "run",
        arg(&changed),
        "--from",
        "latest",
        "--drop-state",
        "sums",
    ]);
    let (_, stderr) = text(&dropped);
    assert!(dropped.status.success(), "{stderr}");
    assert!(stderr.contains("the state of `sums` in chk-"), "{stderr}");
    assert!(
        stderr.contains("is not restored (--drop-state)"),
        "{stderr}"
    );

    // A node removed from the spec: dropped only when asked.
    let removed = spec(dir.path(), "removed.yaml", |t| {
        t.replace(
            "key: this, parallelism: 2}",
            "key: this, parallelism: 3}\n  top: {type: max, inputs: [pairs], key: w, field: n}",
        )
        .replace(
            "  sums: {type: sum, inputs: [pairs], key: w, field: n}\n",
            "",
        )
        .replace("inputs: [counts, sums]", "inputs: [counts, top]")
    });
    let checked = dataflow(&["check", arg(&removed), "--against", "latest"]);
    let (stdout, _) = text(&checked);
    assert_eq!(checked.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("sums  "), "{stdout}");
    assert!(
        stdout.contains("would be dropped (sum keyed by `this.w`)"),
        "{stdout}"
    );
    let dropped = dataflow(&[
        "run",
        "-q",
        arg(&removed),
        "--from",
        "latest",
        "--drop-state",
        "sums",
    ]);
    assert!(dropped.status.success(), "{}", text(&dropped).1);
}
