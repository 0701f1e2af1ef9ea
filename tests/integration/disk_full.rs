//! A checkpoint store on a disk that fills up (issue 14, item 8): a real
//! size-limited tmpfs, mounted in a user and mount namespace of its own
//! (`unshare`), so no privilege is needed and nothing outside is touched.

use std::path::Path;
use std::process::Command;

use crate::harness::{bin, root};

/// Runs `script` with `$STORE` a 256 KiB tmpfs; returns its stdout and stderr.
fn on_a_small_disk(store: &Path, script: &str) -> (String, String) {
    std::fs::create_dir_all(store).unwrap();
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs -o size=256k tmpfs \"$STORE\" || exit 99\n{script}"
        ))
        .env("STORE", store)
        .env("DATAFLOW", bin())
        .current_dir(root())
        .output()
        .expect("unshare runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert_ne!(
        out.status.code(),
        Some(99),
        "cannot mount a tmpfs in a user namespace here: {}",
        text(&out.stderr)
    );
    (text(&out.stdout), text(&out.stderr))
}

#[test]
fn a_full_disk_fails_the_job_clearly_and_stays_no_fuller() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // Memory state that outgrows the disk: a million distinct words. The
    // first spec fails at the first failed checkpoint, the second goes on.
    let spec_with = |tolerated: u32| {
        let spec = dir.path().join(format!("job-{tolerated}.yaml"));
        std::fs::write(
            &spec,
            format!(
                r#"name: fill
checkpoint: {{interval: 100ms, store: "file://{store}", tolerable_failures: {tolerated}}}
restart: {{strategy: none}}
sources:
  lines: {{type: generate, mode: lines, seed: 3, words_per_line: 10, vocabulary: 1000000}}
transforms:
  words: {{type: flat_map, inputs: [lines], split: ","}}
  counts: {{type: count, inputs: [words], key: this}}
sinks:
  out: {{type: blackhole, inputs: [counts]}}
"#,
                store = store.display()
            ),
        )
        .unwrap();
        spec.display().to_string()
    };
    let (spec, going_on) = (spec_with(0), spec_with(1_000_000));
    let (stdout, stderr) = on_a_small_disk(
        &store,
        &format!(
            r#"
"$DATAFLOW" run {spec} 2>&1; echo "first run: exit $?"
echo "staged after the first run:"; find "$STORE/.staging" -type f
# A run killed mid-way leaves its staging folder; the next run sweeps it.
"$DATAFLOW" run {going_on} >/dev/null 2>&1 & pid=$!
sleep 1; kill -9 $pid; wait $pid
echo "folders after the kill: $(ls "$STORE/.staging" | wc -l)"
"$DATAFLOW" run {spec} >/dev/null 2>&1
echo "staged after the next run:"; find "$STORE/.staging" -type f
"#
        ),
    );
    let all = format!("{stdout}{stderr}");
    // A full disk is an outside failure: status 69.
    assert!(all.contains("first run: exit 69"), "{all}");
    assert!(all.contains("No space left on device"), "{all}");
    assert!(all.contains("fill/chk-"), "the error names the file: {all}");
    assert!(!all.contains("panicked"), "{all}");
    let after_first = stdout
        .split("staged after the first run:\n")
        .nth(1)
        .and_then(|s| s.split("folders after the kill").next())
        .unwrap_or("?");
    assert_eq!(after_first.trim(), "", "{all}");
    let killed: usize = stdout
        .split("folders after the kill: ")
        .nth(1)
        .and_then(|s| s.lines().next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(killed > 0, "the killed run left its staging folders: {all}");
    let after_next = stdout
        .split("staged after the next run:\n")
        .nth(1)
        .unwrap_or("?");
    assert_eq!(after_next.trim(), "", "{all}");
}
