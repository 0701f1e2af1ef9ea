//! Random damage to a checkpoint (issue 14's campaign): one bit flipped in
//! one file of a checkpoint, then a restore from it. Every outcome must be
//! a refusal that names the checkpoint, or an output that is exactly-once;
//! a silent wrong output is the one thing that may never happen.
//!
//! CI runs a short form; `DATAFLOW_DAMAGE_TRIALS=500` runs a long one, and
//! `DATAFLOW_DAMAGE_SEED` replays one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{bin, campaign, root};
use crate::recovery::Prng;
use crate::stored::completed;

const TRIALS: u64 = 24;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().is_dir() {
            out.extend(files(&entry.path()));
        } else {
            out.push(entry.path());
        }
    }
    out.sort();
    out
}

/// Each word's committed counts, sorted.
fn committed(out: &Path) -> BTreeMap<String, Vec<u64>> {
    let mut counts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for entry in std::fs::read_dir(out).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        for line in std::fs::read_to_string(entry.path()).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            counts
                .entry(v["word"].as_str().unwrap().to_owned())
                .or_default()
                .push(v["count"].as_u64().unwrap());
        }
    }
    for values in counts.values_mut() {
        values.sort_unstable();
    }
    counts
}

#[test]
fn a_flipped_bit_in_a_checkpoint_is_refused_or_harmless() {
    let (trials, seed) = campaign("DAMAGE", TRIALS);
    let mut rng = Prng(seed | 1);
    let dir = tempfile::tempdir().unwrap();
    let (input, out, store) = (
        dir.path().join("in.txt"),
        dir.path().join("out"),
        dir.path().join("store"),
    );
    let mut truth: BTreeMap<String, u64> = BTreeMap::new();
    let mut text = String::new();
    for i in 0..200_000u64 {
        let word = format!("w{}", (i * 7919) % 97);
        *truth.entry(word.clone()).or_default() += 1;
        text.push_str(&word);
        text.push('\n');
    }
    std::fs::write(&input, text).unwrap();
    let spec = dir.path().join("job.yaml");
    std::fs::write(
        &spec,
        format!(
            r#"name: dmg
checkpoint: {{interval: 20ms, store: "file://{store}", retain: 1000}}
restart: {{strategy: none}}
state: {{backend: sled, dir: "{state}", cache_entries: 16}}
sources:
  lines: {{type: file, path: "{input}"}}
transforms:
  pairs: {{type: map, inputs: [lines], expr: '{{"word": this, "count": 1}}'}}
  counts: {{type: sum, inputs: [pairs], key: word, field: count}}
sinks:
  out: {{type: file, inputs: [counts], path: "{out}", format: json}}
"#,
            store = store.display(),
            state = dir.path().join("state").display(),
            input = input.display(),
            out = out.display(),
        ),
    )
    .unwrap();
    // A first run, killed once a checkpoint has completed: the one damaged.
    let job_dir = store.join("dmg");
    let mut child = Command::new(bin())
        .args(["run", spec.to_str().unwrap()])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while completed(&job_dir).is_empty() {
        assert!(Instant::now() < deadline, "no checkpoint");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the first run ended early"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let id = completed(&job_dir)[0].checkpoint_id;
    let pristine = dir.path().join("pristine");
    copy_dir(&store, &pristine.join("store"));
    copy_dir(&out, &pristine.join("out"));
    let targets = files(&job_dir.join(format!("chk-{id}")));
    assert!(targets.len() >= 2, "{targets:?}");

    let (mut refused, mut harmless) = (0, 0);
    for trial in 0..trials {
        for (name, live) in [("store", &store), ("out", &out)] {
            let _ = std::fs::remove_dir_all(live);
            copy_dir(&pristine.join(name), live);
        }
        let file = &targets[rng.range(0, targets.len() as u64 - 1) as usize];
        let mut bytes = std::fs::read(file).unwrap();
        let at = rng.range(0, bytes.len() as u64 - 1) as usize;
        let bit = rng.range(0, 7);
        bytes[at] ^= 1 << bit;
        std::fs::write(file, bytes).unwrap();
        let what = format!(
            "trial {trial}: bit {bit} of byte {at} of {}",
            file.file_name().unwrap().to_string_lossy()
        );
        let run = Command::new(bin())
            .args([
                "run",
                spec.to_str().unwrap(),
                "--from",
                &format!("chk-{id}"),
            ])
            .current_dir(root())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        if !run.status.success() {
            assert!(
                stderr.contains(&format!("chk-{id}")),
                "{what}: a refusal names the checkpoint: {stderr}"
            );
            refused += 1;
            continue;
        }
        let counts = committed(&out);
        assert_eq!(
            counts.keys().collect::<Vec<_>>(),
            truth.keys().collect::<Vec<_>>(),
            "{what}: restored without a word and words are missing: {stderr}"
        );
        for (word, values) in counts {
            let expected: Vec<u64> = (1..=truth[&word]).collect();
            assert_eq!(
                values, expected,
                "{what}: restored without a word and `{word}` is wrong: {stderr}"
            );
        }
        harmless += 1;
    }
    eprintln!(
        "damage: {trials} single-bit flips in chk-{id}'s {} files: {refused} refused, {harmless} restored exactly-once, 0 silent wrong outputs",
        targets.len()
    );
}
