//! Folders a job shares with the user and with other runs (issue 14,
//! item 4): a run removes only what is provably its own and abandoned.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{bin, dataflow, root, text};

fn spec(dir: &Path, state: &Path, count: Option<u64>) -> std::path::PathBuf {
    let path = dir.join("job.yaml");
    let count = count.map_or(String::new(), |n| format!(", count: {n}"));
    std::fs::write(
        &path,
        format!(
            r#"name: report
checkpoint: {{interval: 100ms, store: "file://{store}"}}
state: {{backend: sled, dir: "{state}"}}
sources:
  lines: {{type: generate, mode: lines, seed: 1, words_per_line: 4, vocabulary: 100{count}}}
transforms:
  words: {{type: flat_map, inputs: [lines], split: ","}}
  counts: {{type: count, inputs: [words], key: this}}
sinks:
  out: {{type: file, inputs: [counts], path: "{out}", format: json}}
"#,
            store = dir.join("store").display(),
            state = state.display(),
            out = dir.join("out").display(),
        ),
    )
    .unwrap();
    path
}

/// The entries of `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_shared_state_dir_loses_only_dead_runs_working_folders() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // The user's folders, named as a job's working folder once was
    // (`<job>-<pid>`) or is now (`<job>-<run id>`).
    let users = [
        "report-2023",
        "report-1999999",
        "report-0123456789ab",
        "report",
    ];
    for name in users {
        std::fs::create_dir_all(state.join(name)).unwrap();
        std::fs::write(state.join(name).join("data.csv"), "1,2\n").unwrap();
    }
    std::fs::write(state.join(".report-notes"), "mine\n").unwrap();
    std::fs::create_dir_all(dir.path().join("out")).unwrap();

    // A run killed mid-way leaves its working folder behind.
    let mut child = Command::new(bin())
        .args(["run", spec(dir.path(), &state, None).to_str().unwrap()])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let left = loop {
        let new: Vec<String> = entries(&state)
            .into_iter()
            .filter(|n| !users.contains(&n.as_str()) && n != ".report-notes")
            .collect();
        if new.len() == 1 && state.join(&new[0]).join("sled").exists() {
            break new[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "no working folder: {:?}",
            entries(&state)
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(state.join(&left).exists());

    // The next run removes it, and nothing else; its own goes at its end.
    let out = dataflow(&[
        "run",
        spec(dir.path(), &state, Some(1000)).to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let mut expected: Vec<String> = users.iter().map(|s| s.to_string()).collect();
    expected.push(".report-notes".into());
    expected.sort();
    assert_eq!(entries(&state), expected, "{stderr}");
    for name in users {
        assert_eq!(
            std::fs::read_to_string(state.join(name).join("data.csv")).unwrap(),
            "1,2\n"
        );
    }
}

#[test]
fn a_run_leaves_the_users_files_in_its_sinks_folder_alone() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let users = [
        ".x.pending",
        ".part-notes.inprogress",
        ".part-0-5.json.pending.bak",
        "README",
    ];
    for name in users {
        std::fs::write(out.join(name), "mine\n").unwrap();
    }
    for _ in 0..2 {
        let run = dataflow(&[
            "run",
            spec(dir.path(), &state, Some(1000)).to_str().unwrap(),
        ]);
        let (stdout, stderr) = text(&run);
        assert!(run.status.success(), "{stdout}{stderr}");
        for name in users {
            assert_eq!(
                std::fs::read_to_string(out.join(name)).unwrap(),
                "mine\n",
                "{name}: {stderr}"
            );
        }
    }
}
