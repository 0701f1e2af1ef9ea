//! The command line's edges, as a new user meets them: output to a reader
//! that has gone, listings that must not write, files that are missing or
//! not text, several `print` sinks.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::{bin, dataflow, root, text};

/// Runs `dataflow args` with standard output (and, with `stderr_too`,
/// standard error) a pipe whose reader is already gone, as for
/// `dataflow … | head -1` once `head` has its line; returns the status and
/// what went to standard error otherwise.
fn to_closed_pipe(args: &[&str], stderr_too: bool) -> (Option<i32>, String) {
    let (reader, writer) = rustix::pipe::pipe().unwrap();
    drop(reader);
    let writer = std::fs::File::from(writer);
    let mut command = Command::new(bin());
    command
        .args(args)
        .current_dir(root())
        .stdout(Stdio::from(writer.try_clone().unwrap()));
    if stderr_too {
        command.stderr(Stdio::from(writer));
    } else {
        command.stderr(Stdio::piped());
    }
    let out = command.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs of `specs/word_count.yaml` share its checkpoint store and job name,
/// and a second run of a running job is refused: tests take turns.
static WORD_COUNT: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn word_count_turn() -> std::sync::MutexGuard<'static, ()> {
    WORD_COUNT.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn every_command_ends_normally_when_its_reader_goes_away() {
    let _turn = word_count_turn();
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "name: x\nsources: {}\nsinks: {}\n").unwrap();
    let broken = broken.to_str().unwrap();
    let store = dir.path().join("store/word-count");
    std::fs::create_dir_all(&store).unwrap();
    let store = store.to_str().unwrap();
    for (args, expected) in [
        (vec!["check", "specs/word_count.yaml"], 0),
        (
            vec!["check", "--format", "json", "specs/word_count.yaml"],
            0,
        ),
        (vec!["check", broken], 1),
        (vec!["schema"], 0),
        (vec!["checkpoints", store], 0),
        (vec!["run", "specs/word_count.yaml"], 0),
        (vec!["--help"], 0),
    ] {
        let (status, stderr) = to_closed_pipe(&args, false);
        assert_eq!(status, Some(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        // Standard error gone as well (`2>&1 | head -1`): no panic either.
        let (status, _) = to_closed_pipe(&args, true);
        assert_eq!(status, Some(expected), "{args:?} with stderr closed");
    }
}

/// Every file and folder under `dir`, for before-and-after comparisons.
fn tree(dir: &Path) -> Vec<String> {
    let mut all = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            all.push(e.path().display().to_string());
            if e.path().is_dir() {
                stack.push(e.path());
            }
        }
    }
    all.sort();
    all
}

#[test]
fn listing_checkpoints_never_writes_and_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().display().to_string();
    // A mistyped store location or folder: an error, and nothing created.
    let out = dataflow(&[
        "checkpoints",
        &format!("file://{base}/no-such-store/word-count"),
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("there is no folder"), "{stderr}");
    let out = dataflow(&["checkpoints", &format!("{base}/no-such-store/word-count")]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(tree(dir.path()).is_empty(), "{:?}", tree(dir.path()));
    // A missing spec file is named as one.
    let out = dataflow(&["checkpoints", "specs/no_such_spec.yaml"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the spec file `specs/no_such_spec.yaml` does not exist"),
        "{stderr}"
    );
    // A spec whose job has not checkpointed yet: no checkpoints, and no
    // folder created.
    let fresh = dir.path().join("fresh.yaml");
    std::fs::write(
        &fresh,
        format!(
            "name: fresh\ncheckpoint: {{interval: 1s, store: \"file://{base}/not-yet\"}}\n\
             sources:\n  n: {{type: generate, count: 3}}\nsinks:\n  out: {{type: print, inputs: [n]}}\n"
        ),
    )
    .unwrap();
    let out = dataflow(&["checkpoints", fresh.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("(none: there is no folder"), "{stdout}");
    assert!(!dir.path().join("not-yet").exists());
    std::fs::remove_file(&fresh).unwrap();
    // A real store, given as a plain folder or a URI, with a checkpoint of
    // one job: listed; a mistyped job name lists none and names the jobs
    // there are; neither writes anything.
    let store = dir.path().join("store");
    let spec = dir.path().join("job.yaml");
    std::fs::write(
        &spec,
        format!(
            "name: counted\ncheckpoint: {{interval: 50ms, store: \"file://{}\"}}\n\
             sources:\n  n: {{type: generate, count: 3000, rate: 10000}}\n\
             sinks:\n  out: {{type: blackhole, inputs: [n]}}\n",
            store.display()
        ),
    )
    .unwrap();
    let out = dataflow(&["run", "-q", spec.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out).1);
    let before = tree(dir.path());
    for target in [
        format!("{}/counted", store.display()),
        format!("file://{}/counted", store.display()),
    ] {
        let out = dataflow(&["checkpoints", &target]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{target}: {stderr}");
        assert!(stdout.contains("(latest)"), "{target}: {stdout}");
    }
    let out = dataflow(&["checkpoints", &format!("file://{}/conted", store.display())]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("(none)"), "{stdout}");
    assert!(
        stdout.contains("the store has checkpoints of: counted"),
        "{stdout}"
    );
    assert_eq!(tree(dir.path()), before, "a listing wrote to the store");
}

#[test]
fn a_spec_that_is_not_utf8_is_an_invalid_spec_at_its_first_bad_byte() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("latin1.yaml");
    // `é` in Latin-1 on line 2, column 10.
    std::fs::write(
        &spec,
        b"name: latin\n# caf\xe9s\nsources:\n  n: {type: generate, count: 3}\nsinks:\n  out: {type: print, inputs: [n]}\n",
    )
    .unwrap();
    let spec = spec.to_str().unwrap();
    let out = dataflow(&["check", spec]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error[not-utf8]"), "{stderr}");
    assert!(
        stderr.contains("byte 0xe9 at line 2, column 6") && stderr.contains("latin1.yaml:2:6"),
        "{stderr}"
    );
    let out = dataflow(&["check", "--format", "json", spec]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &json["files"][0]["diagnostics"][0];
    assert_eq!(
        (d["code"].as_str(), d["line"].as_u64()),
        (Some("not-utf8"), Some(2))
    );
    let out = dataflow(&["run", spec]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    assert!(out.stdout.is_empty());
    // A file that cannot be read at all stays a usage error.
    let out = dataflow(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("is a folder, not a spec file"));
}

#[test]
fn several_print_sinks_are_told_apart_by_their_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("two.yaml");
    std::fs::write(
        &spec,
        "name: two-prints\n\
         sources:\n  n: {type: generate, count: 4}\n\
         transforms:\n  even: {type: filter, inputs: [n], condition: this.seq % 2 == 0}\n\
         \x20 odd: {type: filter, inputs: [n], condition: this.seq % 2 == 1}\n\
         sinks:\n  evens: {type: print, inputs: [even]}\n\
         \x20 odds: {type: print, inputs: [odd], prefix: odd, parallelism: 2}\n\
         \x20 plain: {type: print, inputs: [n], prefix: \"\"}\n",
    )
    .unwrap();
    let out = dataflow(&["run", "-q", spec.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort();
    let with = |p: &str| lines.iter().filter(|l| l.starts_with(p)).count();
    // The sink's own name by default; `odd:<instance>> ` from one of two
    // instances; nothing with `prefix: ""`.
    assert_eq!(with("evens> {\"seq\":"), 2, "{stdout}");
    assert_eq!(with("odd:1> {") + with("odd:2> {"), 2, "{stdout}");
    assert_eq!(with("{\"seq\":"), 4, "{stdout}");
    assert_eq!(lines.len(), 8, "{stdout}");
    // One print sink: no prefix.
    let out = {
        let _turn = word_count_turn();
        dataflow(&["run", "-q", "specs/word_count.yaml"])
    };
    assert!(text(&out).0.lines().all(|l| l.starts_with('{')));
}
