//! Folders a job shares with the user and with other runs (issue 14,
//! item 4): a run removes only what is provably its own and abandoned.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{bin, campaign, dataflow, root, text};
use crate::recovery::Prng;

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

/// Whether `name` has the exact shape of a `file` sink's own files:
/// `part-<i>-<n>.<ext>`, `.part-<i>-<n>.<ext>.pending` or
/// `.part-<i>-<n>[-<k>].<ext>.inprogress`. Anything else is the user's.
fn a_sinks_shape(name: &str) -> bool {
    let numbered = |rest: &str, counts: &[usize]| {
        rest.split_once('.').is_some_and(|(stem, ext)| {
            !ext.is_empty()
                && ext.bytes().all(|b| b.is_ascii_alphanumeric())
                && counts.contains(&stem.split('-').count())
                && stem.split('-').all(|n| {
                    !n.is_empty()
                        && n.bytes().all(|b| b.is_ascii_digit())
                        && n.parse::<u64>().is_ok()
                })
        })
    };
    name.strip_prefix("part-")
        .is_some_and(|r| numbered(r, &[2]))
        || name
            .strip_prefix(".part-")
            .and_then(|r| r.strip_suffix(".pending"))
            .is_some_and(|r| numbered(r, &[2]))
        || name
            .strip_prefix(".part-")
            .and_then(|r| r.strip_suffix(".inprogress"))
            .is_some_and(|r| numbered(r, &[2, 3]))
}

/// Random names built from the pieces the engine's own names are made
/// of, so that many come within a character of them.
fn look_alikes(seed: u64, n: usize) -> Vec<String> {
    const PIECES: &[&str] = &[
        "report",
        "-",
        ".",
        "part",
        "0",
        "1",
        "17",
        "007",
        "-1",
        "x",
        "ab12cd34ef56",
        "json",
        "pending",
        "inprogress",
        "staging",
        "sled",
        "DATAFLOW_RUN",
        "tmp",
        " ",
        "_",
    ];
    let mut rng = Prng(seed);
    let mut next = |m: u64| rng.range(0, m - 1);
    let mut names = std::collections::BTreeSet::new();
    while names.len() < n {
        let mut name: String = (0..1 + next(7))
            .map(|_| PIECES[next(PIECES.len() as u64) as usize])
            .collect();
        if next(3) == 0 {
            name.insert(0, '.');
        }
        if name != "." && name != ".." && !name.contains('/') {
            names.insert(name);
        }
    }
    names.into_iter().collect()
}

/// Issue 14, item 4, as a campaign: a state folder and a sink folder
/// full of random names within a character of the engine's own, through a
/// finished run, a run killed mid-way and a restore: not one is touched.
/// `DATAFLOW_SHARED_TRIALS` sets the trials, `DATAFLOW_SHARED_SEED`
/// replays a set of names.
#[test]
fn random_look_alikes_in_shared_folders_are_never_touched() {
    let (trials, seed) = campaign("SHARED", 1);
    let mut kept = 0;
    for trial in 0..trials {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let out = dir.path().join("out");
        let mut planted = Vec::new();
        for (folder, names) in [
            (&state, look_alikes(seed + trial, 40)),
            (&out, look_alikes(!(seed + trial), 40)),
        ] {
            std::fs::create_dir_all(folder).unwrap();
            for name in names.into_iter().filter(|n| !a_sinks_shape(n)) {
                let path = folder.join(&name);
                // Half folders with a file inside, half files.
                if name.len() % 2 == 0 {
                    std::fs::create_dir_all(&path).unwrap();
                    std::fs::write(path.join("data"), &name).unwrap();
                } else {
                    std::fs::write(&path, &name).unwrap();
                }
                planted.push(path);
            }
        }
        let finished = dataflow(&[
            "run",
            spec(dir.path(), &state, Some(1000)).to_str().unwrap(),
        ]);
        assert!(finished.status.success(), "{}", text(&finished).1);
        let mut killed = Command::new(bin())
            .args(["run", spec(dir.path(), &state, None).to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(700));
        killed.kill().unwrap();
        killed.wait().unwrap();
        // Its restore settles the sink's folder, and is stopped by Ctrl-C.
        let restored = Command::new(bin())
            .args([
                "run",
                spec(dir.path(), &state, None).to_str().unwrap(),
                "--from",
                "latest",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(700));
        let _ = Command::new("kill")
            .args(["-INT", &restored.id().to_string()])
            .status();
        let restored = restored.wait_with_output().unwrap();
        let context = format!("seed {seed}, trial {trial}");
        assert_eq!(
            restored.status.code(),
            Some(130),
            "{context}: {}",
            text(&restored).1
        );
        let last = dataflow(&[
            "run",
            spec(dir.path(), &state, Some(1000)).to_str().unwrap(),
        ]);
        assert!(last.status.success(), "{context}: {}", text(&last).1);
        for path in &planted {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let content = if path.is_dir() {
                std::fs::read_to_string(path.join("data"))
            } else {
                std::fs::read_to_string(path)
            };
            assert_eq!(
                content.ok().as_deref(),
                Some(name.as_str()),
                "{context}: {path:?} was touched"
            );
            kept += 1;
        }
    }
    eprintln!("look-alikes: {trials} trials, {kept} planted names, all kept");
}
