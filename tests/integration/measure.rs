//! What a run measures about itself and reports on stderr: the latency
//! of records from source to sink, and what a restore cost. The figures
//! depend on the machine, so only their presence and their counts are
//! asserted, never a time.

use std::path::{Path, PathBuf};

use crate::harness::{dataflow, text};

fn write_spec(dir: &Path, yaml: &str) -> PathBuf {
    let path = dir.join("spec.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Runs a spec; returns its stderr, after checking it succeeded.
fn run(args: &[&str]) -> String {
    let out = dataflow(args);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    stderr
}

#[test]
fn a_rate_limited_generate_job_reports_latency_percentiles() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        &format!(
            r#"name: latency
parallelism: 2
checkpoint:
  interval: 100ms
  incremental: true
  store: "file://{}"
sources:
  numbers: {{type: generate, count: 20000, rate: 100000, time_field: ts}}
transforms:
  sums: {{type: sum, inputs: [numbers], key: this.value % 100, field: value}}
sinks:
  out: {{type: blackhole, inputs: [sums], latency_field: ts}}
"#,
            dir.path().join("store").display()
        ),
    );
    let stderr = run(&["run", spec.to_str().unwrap()]);
    let summary = stderr.lines().last().unwrap_or_default();
    let latency = summary
        .split(" | ")
        .find_map(|part| part.strip_prefix("latency at out: "))
        .unwrap_or_else(|| panic!("no latency in the summary: {summary}"));
    // p50 ≤ p99 ≤ max, over every record, none untimed.
    let figures: Vec<f64> = ["p50 ", "p99 ", "max "]
        .iter()
        .map(|label| {
            let at = latency
                .find(label)
                .unwrap_or_else(|| panic!("{label}in {latency}"));
            let rest = &latency[at + label.len()..];
            rest[..rest.find(" ms").unwrap()].parse().unwrap()
        })
        .collect();
    assert!(figures.windows(2).all(|w| w[0] <= w[1]), "{latency}");
    assert!(latency.ends_with("over 20000 records"), "{latency}");
}

#[test]
fn records_without_a_source_time_are_counted_not_failed() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        r#"name: untimed
sources:
  numbers: {type: generate, count: 10}
  timed: {type: generate, count: 5, time_field: ts}
sinks:
  out: {type: print, inputs: [numbers, timed], parallelism: 1, latency_field: ts}
  none: {type: blackhole, inputs: [numbers], latency_field: ts}
"#,
    );
    let out = dataflow(&["run", spec.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.lines().count(), 15);
    let summary = stderr.lines().last().unwrap_or_default();
    assert!(
        summary.contains("latency at out: p50 ")
            && summary.contains("over 5 records, 10 without an integer `ts`"),
        "{summary}"
    );
    assert!(
        summary.contains("latency at none: none of 10 records had an integer `ts`"),
        "{summary}"
    );
}

#[test]
fn a_restore_says_what_it_cost() {
    let dir = tempfile::tempdir().unwrap();
    let job = |count: u64| {
        format!(
            r#"name: restore-cost
checkpoint:
  interval: 1s
  store: "file://{}"
sources:
  numbers: {{type: generate, count: {count}}}
transforms:
  sums: {{type: sum, inputs: [numbers], key: this.seq % 1000, field: value}}
sinks:
  out: {{type: blackhole, inputs: [sums]}}
"#,
            dir.path().join("store").display()
        )
    };
    let spec = write_spec(dir.path(), &job(1000));
    run(&["run", spec.to_str().unwrap()]);
    // The same job, 100 records longer: it resumes after record 1000.
    let spec = write_spec(dir.path(), &job(1100));
    let stderr = run(&["run", spec.to_str().unwrap(), "--from", "latest"]);
    let line = stderr
        .lines()
        .find(|l| l.contains("restored chk-"))
        .unwrap_or_else(|| panic!("no restore line in: {stderr}"));
    assert!(
        (line.contains(" file, ") || line.contains(" files, "))
            && line.contains("verified in")
            && line.contains("loaded in"),
        "{line}"
    );
    let summary = stderr.lines().last().unwrap_or_default();
    assert!(summary.contains("numbers 100 out"), "{summary}");
}
