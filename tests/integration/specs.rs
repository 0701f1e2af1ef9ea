//! Every example under `specs/` is valid.

use crate::harness::{dataflow, root, text};

/// The example specs, sorted (not their tests files, `*.tests.yaml`).
pub fn example_specs() -> Vec<String> {
    let mut specs: Vec<String> = std::fs::read_dir(root().join("specs"))
        .expect("specs/ exists")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .filter(|p| !p.to_string_lossy().ends_with(".tests.yaml"))
        .map(|p| format!("specs/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    specs.sort();
    specs
}

/// Each example has a tests file beside it, and passes it.
#[test]
fn every_example_spec_passes_its_tests() {
    for spec in example_specs() {
        let tests = spec.replace(".yaml", ".tests.yaml");
        assert!(root().join(&tests).is_file(), "{spec} has no {tests}");
        let out = dataflow(&["test", &spec]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{spec}: {stderr}");
        assert!(
            stderr.contains(" passed") && !stderr.contains("failed"),
            "{spec}: {stderr}"
        );
    }
}

#[test]
fn check_accepts_every_example_spec() {
    let specs = example_specs();
    assert!(
        specs.len() >= 2,
        "expected the bundled examples, found {specs:?}"
    );
    for spec in specs {
        let out = dataflow(&["check", &spec]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{spec}:\n{stdout}\n{stderr}");
        assert!(stdout.starts_with(&format!("{spec}: valid")), "{stdout}");
        assert!(stderr.is_empty(), "{spec} has warnings:\n{stderr}");
    }
}

/// Bounded examples run to completion; the socket example runs against a
/// local server until it is cancelled; the Kafka ones run in kafka.rs.
#[test]
fn every_example_spec_runs() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    for spec in example_specs() {
        if spec.contains("kafka") {
            // Needs a broker: kafka.rs runs it against the tests' own.
            continue;
        }
        if !spec.contains("socket") {
            let out = dataflow(&["run", &spec]);
            let (_, stderr) = text(&out);
            assert_eq!(out.status.code(), Some(0), "{spec}: {stderr}");
            assert!(stderr.contains(" finished in "), "{spec}: {stderr}");
            continue;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:8888")
            .expect("port 8888 is free for the socket example");
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            conn.write_all(b"to,be,or,not,to,be\n").unwrap();
            // Hold the connection open, as `nc -lk` would, until the job goes away.
            let mut buf = [0u8; 1];
            let _ = std::io::Read::read(&mut conn, &mut buf);
        });
        let child = Command::new(crate::harness::bin())
            .args(["run", &spec])
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Long enough for two of its 10 s checkpoints: retention must keep only the latest.
        std::thread::sleep(std::time::Duration::from_millis(21_000));
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        server.join().unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(130), "{spec}: {stderr}");
        assert!(
            stdout.contains(r#"{"word":"be","count":2}"#),
            "{spec}: {stdout}"
        );
        assert!(
            stderr.contains("checkpoints: 2 completed"),
            "{spec}: {stderr}"
        );
        let listing = dataflow(&["checkpoints", &spec]);
        let (listed, _) = text(&listing);
        assert_eq!(listing.status.code(), Some(0), "{listed}");
        // Earlier runs' checkpoints in the shared store stay; of this
        // run's (the latest), retain: 1 keeps one.
        let run_of = |line: &str| {
            line.split("  run ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_owned)
        };
        let rows: Vec<&str> = listed
            .lines()
            .filter(|l| l.trim_start().starts_with("chk-"))
            .collect();
        let latest = rows
            .iter()
            .find(|l| l.ends_with("(latest)"))
            .unwrap_or_else(|| panic!("no latest checkpoint: {listed}"));
        let this_run = run_of(latest);
        let kept = rows.iter().filter(|l| run_of(l) == this_run).count();
        assert_eq!(kept, 1, "retain: 1 keeps only the latest: {listed}");
    }
}
